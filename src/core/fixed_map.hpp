// A fixed-capacity hash map for the engine's tables: every array is sized in the constructor,
// insert/find/erase never allocate. Values live in a slot array whose indices stay stable while
// the entry exists (other tables keep them as handles); an open-addressing index (linear probing,
// backward-shift deletion, load <= 1/2) maps keys to slots. Its arrays come from the engine's
// arena (core/arena.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/arena.hpp"

namespace nomq::detail {

inline constexpr std::uint32_t kNoSlot = 0xFFFFFFFFu;

// A table's capacity from a configured limit: a limit of 0 still gets one slot.
constexpr std::size_t at_least_one(std::size_t n) noexcept { return n == 0 ? 1 : n; }

template <class Key, class Value, class Hash, class Eq>
class FixedMap {
 public:
  FixedMap(Arena& arena, std::size_t capacity) noexcept : capacity_(capacity) {
    const std::size_t n = index_size(capacity);
    mask_ = n - 1;
    index_ = arena.make<std::uint32_t>(n, kNoSlot);
    keys_ = arena.make<Key>(capacity);
    values_ = arena.make<Value>(capacity);
    used_ = arena.make<std::uint8_t>(capacity);
    free_ = arena.make<std::uint32_t>(capacity);
    for (std::size_t i = 0; i < capacity; ++i) {
      free_[i] = static_cast<std::uint32_t>(capacity - 1 - i);
    }
    free_count_ = capacity;
  }

  // The arena bytes of a map of `capacity` entries (what the constructor takes).
  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return arena_bytes<std::uint32_t>(index_size(capacity)) + arena_bytes<Key>(capacity) +
           arena_bytes<Value>(capacity) + arena_bytes<std::uint8_t>(capacity) +
           arena_bytes<std::uint32_t>(capacity);
  }

  std::size_t size() const noexcept { return capacity_ - free_count_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool full() const noexcept { return free_count_ == 0; }
  bool empty() const noexcept { return free_count_ == capacity_; }

  // The slot holding `key`, or kNoSlot.
  std::uint32_t find(const Key& key) const noexcept {
    for (std::size_t pos = Hash{}(key) & mask_;; pos = (pos + 1) & mask_) {
      const std::uint32_t s = index_[pos];
      if (s == kNoSlot) return kNoSlot;
      if (Eq{}(keys_[s], key)) return s;
    }
  }

  // Inserts `key` with a value-initialised Value. Returns the slot, or kNoSlot when full.
  // Precondition: `key` is absent.
  std::uint32_t insert(const Key& key) noexcept {
    if (free_count_ == 0) return kNoSlot;
    const std::uint32_t s = free_[--free_count_];
    keys_[s] = key;
    values_[s] = Value{};
    used_[s] = 1;
    std::size_t pos = Hash{}(key) & mask_;
    while (index_[pos] != kNoSlot) pos = (pos + 1) & mask_;
    index_[pos] = s;
    return s;
  }

  void erase(const Key& key) noexcept {
    const std::uint32_t s = find(key);
    if (s != kNoSlot) erase_slot(s);
  }

  void erase_slot(std::uint32_t s) noexcept {
    if (s >= capacity_ || !used_[s]) return;
    std::size_t pos = Hash{}(keys_[s]) & mask_;
    while (index_[pos] != s) pos = (pos + 1) & mask_;
    // Backward-shift deletion: keeps every probe chain gap-free without tombstones.
    std::size_t hole = pos;
    for (std::size_t next = (hole + 1) & mask_;; next = (next + 1) & mask_) {
      const std::uint32_t t = index_[next];
      if (t == kNoSlot) break;
      const std::size_t home = Hash{}(keys_[t]) & mask_;
      // Move t into the hole if its home is not cyclically within (hole, next].
      const bool stays = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next);
      if (!stays) {
        index_[hole] = t;
        hole = next;
      }
    }
    index_[hole] = kNoSlot;
    used_[s] = 0;
    free_[free_count_++] = s;
  }

  bool used(std::uint32_t s) const noexcept { return s < capacity_ && used_[s] != 0; }
  const Key& key(std::uint32_t s) const noexcept { return keys_[s]; }
  Value& value(std::uint32_t s) noexcept { return values_[s]; }
  const Value& value(std::uint32_t s) const noexcept { return values_[s]; }

  // Calls f(slot) for every used slot. f may erase the slot it is given.
  template <class F>
  void for_each(F&& f) {
    for (std::uint32_t s = 0; s < capacity_; ++s) {
      if (used_[s]) f(s);
    }
  }
  template <class F>
  void for_each(F&& f) const {
    for (std::uint32_t s = 0; s < capacity_; ++s) {
      if (used_[s]) f(s);
    }
  }

  // Calls f(slot) for every used slot, stopping once all of them were seen: slots are handed
  // out lowest first, so a lightly used map is scanned in O(used), not O(capacity). f must not
  // insert or erase (use for_each for that).
  template <class F>
  void scan(F&& f) const {
    std::size_t left = size();
    for (std::uint32_t s = 0; left > 0 && s < capacity_; ++s) {
      if (used_[s]) {
        f(s);
        --left;
      }
    }
  }

  std::size_t state_bytes() const noexcept { return bytes_for(capacity_); }

 private:
  // The index: a power of two at least twice the capacity (load <= 1/2).
  static constexpr std::size_t index_size(std::size_t capacity) noexcept {
    std::size_t n = 2;
    while (n < capacity * 2) n <<= 1;
    return n;
  }

  std::size_t capacity_;
  std::size_t mask_ = 1;
  FixedArray<std::uint32_t> index_;
  FixedArray<Key> keys_;
  FixedArray<Value> values_;
  FixedArray<std::uint8_t> used_;
  FixedArray<std::uint32_t> free_;
  std::size_t free_count_ = 0;
};

// Hashes used by the engine's maps.
struct U32Hash {
  std::size_t operator()(std::uint32_t v) const noexcept {
    std::uint64_t x = v;
    x *= 0x9E3779B97F4A7C15ull;
    return static_cast<std::size_t>(x >> 29);
  }
};
struct U32Eq {
  bool operator()(std::uint32_t a, std::uint32_t b) const noexcept { return a == b; }
};
struct U64Hash {
  std::size_t operator()(std::uint64_t v) const noexcept {
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    return static_cast<std::size_t>(v);
  }
};
struct U64Eq {
  bool operator()(std::uint64_t a, std::uint64_t b) const noexcept { return a == b; }
};

}  // namespace nomq::detail
