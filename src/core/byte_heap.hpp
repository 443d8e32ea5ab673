// Variable-size byte blocks in one fixed buffer, addressed by a handle (a slot index the owner
// chooses: a message pool slot, an inbox node). Holds what is used, not slots × maximum size:
// a 1024-slot inbox of full-size messages was 1.3 MB whatever the traffic; now the owner gives
// a byte budget and messages take what they are.
//
// Allocation bumps at the top of the buffer; a freed block leaves a hole. When the top has no
// room but the holes together do, the live blocks are slid down over the holes (compaction,
// in address order, which is allocation order: a doubly linked list over the handles keeps
// it). Handles stay valid; pointers into the buffer (views) do not survive an allocation, which
// is why views the engine hands out are valid "until the next call". Nothing is allocated
// outside the buffer; a compaction costs one memmove of the live bytes, and happens only
// when holes, not the budget, stop an allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/arena.hpp"

namespace nomq::detail {

class ByteHeap {
 public:
  static constexpr std::uint32_t npos = 0xFFFFFFFFu;

  ByteHeap(Arena& arena, std::size_t handles, std::size_t bytes) noexcept
      : bytes_(arena.make<std::uint8_t>(bytes)),
        off_(arena.make<std::uint32_t>(handles)),
        len_(arena.make<std::uint32_t>(handles)),
        prev_(arena.make<std::uint32_t>(handles, npos)),
        next_(arena.make<std::uint32_t>(handles, npos)) {}

  static constexpr std::size_t bytes_for(std::size_t handles, std::size_t bytes) noexcept {
    return arena_bytes<std::uint8_t>(bytes) + 4 * arena_bytes<std::uint32_t>(handles);
  }

  // Reserves `n` bytes for handle `h` (which must hold no block). false: they do not fit in
  // what is free.
  bool alloc(std::uint32_t h, std::size_t n) noexcept {
    if (n > bytes_.size() - live_) return false;
    if (n > bytes_.size() - top_) compact();
    off_[h] = static_cast<std::uint32_t>(top_);
    len_[h] = static_cast<std::uint32_t>(n);
    prev_[h] = tail_;
    next_[h] = npos;
    if (tail_ != npos) {
      next_[tail_] = h;
    } else {
      head_ = h;
    }
    tail_ = h;
    top_ += n;
    live_ += n;
    return true;
  }

  // Frees the block of `h`. Its bytes stay readable until the next alloc().
  void free(std::uint32_t h) noexcept {
    const std::uint32_t p = prev_[h], n = next_[h];
    if (p != npos) {
      next_[p] = n;
    } else {
      head_ = n;
    }
    if (n != npos) {
      prev_[n] = p;
    } else {
      tail_ = p;
      top_ = p == npos ? 0 : off_[p] + len_[p];  // the top block: its room is free at once
    }
    prev_[h] = next_[h] = npos;
    live_ -= len_[h];
    len_[h] = 0;
  }

  std::uint8_t* data(std::uint32_t h) noexcept { return bytes_.data() + off_[h]; }
  const std::uint8_t* data(std::uint32_t h) const noexcept { return bytes_.data() + off_[h]; }
  std::size_t size(std::uint32_t h) const noexcept { return len_[h]; }

  std::size_t capacity() const noexcept { return bytes_.size(); }
  std::size_t used() const noexcept { return live_; }
  std::size_t state_bytes() const noexcept { return bytes_for(off_.size(), bytes_.size()); }

 private:
  void compact() noexcept {
    std::size_t at = 0;
    for (std::uint32_t h = head_; h != npos; h = next_[h]) {
      if (off_[h] != at) std::memmove(bytes_.data() + at, bytes_.data() + off_[h], len_[h]);
      off_[h] = static_cast<std::uint32_t>(at);
      at += len_[h];
    }
    top_ = at;
  }

  FixedArray<std::uint8_t> bytes_;
  FixedArray<std::uint32_t> off_;
  FixedArray<std::uint32_t> len_;
  FixedArray<std::uint32_t> prev_;
  FixedArray<std::uint32_t> next_;
  std::uint32_t head_ = npos;
  std::uint32_t tail_ = npos;
  std::size_t top_ = 0;
  std::size_t live_ = 0;
};

}  // namespace nomq::detail
