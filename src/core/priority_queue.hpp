// A fixed-capacity priority queue: 16 levels (0..15, higher first), FIFO within a level.
// Intrusive singly linked lists over one node array with a free list: push and pop are O(1)
// and never allocate. Each level's list is circular and known by its tail (the head is the
// tail's next): one array of 16 tails, not heads and tails. Used for the outbox (datagrams to send) and the inbox (received messages).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "core/arena.hpp"

namespace nomq::detail {

inline constexpr std::size_t kPriorityLevels = 16;

template <class T>
class PriorityQueue {
 public:
  static constexpr std::uint32_t npos = 0xFFFFFFFFu;

  PriorityQueue(Arena& arena, std::size_t capacity) noexcept : capacity_(capacity) {
    items_ = arena.make<T>(capacity);
    next_ = arena.make<std::uint32_t>(capacity);
    for (std::size_t i = 0; i < capacity; ++i) {
      next_[i] = i + 1 < capacity ? static_cast<std::uint32_t>(i + 1) : npos;
    }
    free_ = capacity > 0 ? 0 : npos;
    tail_.fill(npos);
  }

  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return arena_bytes<T>(capacity) + arena_bytes<std::uint32_t>(capacity);
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  bool full() const noexcept { return free_ == npos; }

  // Appends at `priority` (clamped to 15). Returns the node index (stable until popped; callers
  // may key side storage by it), or npos when full.
  std::uint32_t push(std::uint8_t priority, const T& item) noexcept {
    if (free_ == npos) return npos;
    const std::uint8_t p = priority > 15 ? 15 : priority;
    const std::uint32_t n = free_;
    free_ = next_[n];
    items_[n] = item;
    if (tail_[p] == npos) {
      next_[n] = n;
    } else {
      next_[n] = next_[tail_[p]];
      next_[tail_[p]] = n;
    }
    tail_[p] = n;
    mask_ |= static_cast<std::uint16_t>(1u << p);
    ++size_;
    return n;
  }

  // The node index the next push() will use, or npos when full (lets a caller reserve side
  // storage keyed by it before pushing).
  std::uint32_t next_free() const noexcept { return free_; }

  // The node index of the highest-priority, oldest item, or npos when empty.
  std::uint32_t front() const noexcept {
    if (mask_ == 0) return npos;
    return next_[tail_[top_level()]];
  }
  std::uint8_t front_priority() const noexcept { return static_cast<std::uint8_t>(top_level()); }

  T& at(std::uint32_t n) noexcept { return items_[n]; }
  const T& at(std::uint32_t n) const noexcept { return items_[n]; }

  // Removes the front item; its node may be reused by the next push.
  void pop() noexcept {
    if (mask_ == 0) return;
    const unsigned p = top_level();
    const std::uint32_t t = tail_[p];
    const std::uint32_t n = next_[t];
    if (n == t) {
      tail_[p] = npos;
      mask_ = static_cast<std::uint16_t>(mask_ & ~(1u << p));
    } else {
      next_[t] = next_[n];
    }
    next_[n] = free_;
    free_ = n;
    --size_;
  }

  std::size_t state_bytes() const noexcept { return bytes_for(capacity_); }

 private:
  // The highest non-empty level (0 when empty): the top set bit of mask_, one instruction
  // where a walk down from 15 took up to 15 steps for the default priority 0.
  unsigned top_level() const noexcept {
    return mask_ == 0 ? 0u : static_cast<unsigned>(std::bit_width(mask_)) - 1u;
  }

  std::size_t capacity_;
  FixedArray<T> items_;
  FixedArray<std::uint32_t> next_;
  std::uint32_t free_ = npos;
  std::array<std::uint32_t, kPriorityLevels> tail_{};  // npos: the level is empty
  std::uint16_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace nomq::detail
