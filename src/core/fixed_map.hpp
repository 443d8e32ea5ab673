// A fixed-capacity hash map for the engine's tables: every array is sized in the constructor,
// insert/find/erase never allocate. Values live in a slot array whose indices stay stable while
// the entry exists (other tables keep them as handles); an open-addressing index (linear probing,
// backward-shift deletion, load <= 1/2) maps keys to slots. Its arrays come from the engine's
// arena (core/arena.hpp). The index and the free list hold slot numbers of type `Slot`: a map
// whose limit is at most kMaxSlot16 (Engine::validate() and the config ranges keep it there)
// uses 16 bits, 6 bytes per entry less than 32-bit slots (docs/embedded.md).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/arena.hpp"

namespace nomq::detail {

inline constexpr std::uint32_t kNoSlot = 0xFFFFFFFFu;
// The most entries a table numbering its slots in 16 bits holds (0xFFFF marks none).
inline constexpr std::size_t kMaxSlot16 = 0xFFFE;

// A table's capacity from a configured limit: a limit of 0 still gets one slot.
constexpr std::size_t at_least_one(std::size_t n) noexcept { return n == 0 ? 1 : n; }

// The part of a FixedMap that does not depend on its key and value types: the open-addressing
// index, the used flags and the free list, over `Slot` slot numbers. Out of line
// (core/fixed_map.cpp, one copy per slot width): with a dozen maps in the engine, a copy per
// map of the construction and of the backward-shift deletion took about 3 KB of flash on a
// Cortex-M4 (docs/embedded.md).
template <class Slot>
class MapSlots {
  static_assert(sizeof(Slot) == 2 || sizeof(Slot) == 4);

 public:
  static constexpr Slot kEmpty = static_cast<Slot>(~Slot{0});  // an index position holding no slot

  MapSlots(Arena& arena, std::size_t capacity) noexcept;

  // The index: a power of two at least twice the capacity (load <= 1/2).
  static constexpr std::size_t index_size(std::size_t capacity) noexcept {
    std::size_t n = 2;
    while (n < capacity * 2) n <<= 1;
    return n;
  }
  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return arena_bytes<Slot>(index_size(capacity)) + arena_bytes<std::uint8_t>(capacity) +
           arena_bytes<Slot>(capacity);
  }

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t free_count() const noexcept { return free_count_; }
  std::size_t mask() const noexcept { return mask_; }
  std::uint32_t at(std::size_t pos) const noexcept { return index_[pos]; }
  bool used(std::uint32_t s) const noexcept { return s < capacity_ && used_[s] != 0; }
  bool used_unchecked(std::uint32_t s) const noexcept { return used_[s] != 0; }

  // Takes a free slot and files it at the first empty position from `home`. Precondition:
  // free_count() > 0.
  std::uint32_t take(std::size_t home) noexcept {
    const std::uint32_t s = free_[--free_count_];
    used_[s] = 1;
    std::size_t pos = home & mask_;
    while (index_[pos] != kEmpty) pos = (pos + 1) & mask_;
    index_[pos] = static_cast<Slot>(s);
    return s;
  }
  // Frees used slot `s` whose key hashes to `home`; `hash(keys, t)` is the hash of slot t's key
  // (for the backward shift). Keeps every probe chain gap-free without tombstones.
  void erase(std::uint32_t s, std::size_t home,
             std::size_t (*hash)(const void* keys, std::uint32_t slot), const void* keys) noexcept;

 private:
  std::size_t capacity_;
  std::size_t mask_;
  FixedArray<Slot> index_;
  FixedArray<std::uint8_t> used_;
  FixedArray<Slot> free_;
  std::size_t free_count_;
};

extern template class MapSlots<std::uint16_t>;
extern template class MapSlots<std::uint32_t>;

template <class Key, class Value, class Hash, class Eq, class Slot = std::uint32_t>
class FixedMap {
 public:
  FixedMap(Arena& arena, std::size_t capacity) noexcept
      : slots_(arena, capacity), keys_(arena.make<Key>(capacity)), values_(arena.make<Value>(capacity)) {}

  // The arena bytes of a map of `capacity` entries (what the constructor takes).
  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return MapSlots<Slot>::bytes_for(capacity) + arena_bytes<Key>(capacity) +
           arena_bytes<Value>(capacity);
  }

  std::size_t size() const noexcept { return slots_.capacity() - slots_.free_count(); }
  std::size_t capacity() const noexcept { return slots_.capacity(); }
  bool full() const noexcept { return slots_.free_count() == 0; }
  bool empty() const noexcept { return slots_.free_count() == slots_.capacity(); }

  // The slot holding `key`, or kNoSlot.
  std::uint32_t find(const Key& key) const noexcept {
    const std::size_t mask = slots_.mask();
    for (std::size_t pos = Hash{}(key) & mask;; pos = (pos + 1) & mask) {
      const std::uint32_t s = slots_.at(pos);
      if (s == MapSlots<Slot>::kEmpty) return kNoSlot;
      if (Eq{}(keys_[s], key)) return s;
    }
  }

  // Inserts `key` with a value-initialised Value. Returns the slot, or kNoSlot when full.
  // Precondition: `key` is absent.
  std::uint32_t insert(const Key& key) noexcept {
    if (slots_.free_count() == 0) return kNoSlot;
    const std::uint32_t s = slots_.take(Hash{}(key));
    keys_[s] = key;
    values_[s] = Value{};
    return s;
  }

  void erase(const Key& key) noexcept {
    const std::uint32_t s = find(key);
    if (s != kNoSlot) erase_slot(s);
  }

  void erase_slot(std::uint32_t s) noexcept {
    if (!slots_.used(s)) return;
    slots_.erase(s, Hash{}(keys_[s]), &hash_at, keys_.data());
  }

  bool used(std::uint32_t s) const noexcept { return slots_.used(s); }
  const Key& key(std::uint32_t s) const noexcept { return keys_[s]; }
  Value& value(std::uint32_t s) noexcept { return values_[s]; }
  const Value& value(std::uint32_t s) const noexcept { return values_[s]; }

  // Calls f(slot) for every used slot. f may erase the slot it is given.
  template <class F>
  void for_each(F&& f) {
    for (std::uint32_t s = 0; s < slots_.capacity(); ++s) {
      if (slots_.used_unchecked(s)) f(s);
    }
  }
  template <class F>
  void for_each(F&& f) const {
    for (std::uint32_t s = 0; s < slots_.capacity(); ++s) {
      if (slots_.used_unchecked(s)) f(s);
    }
  }

  // Calls f(slot) for every used slot, stopping once all of them were seen: slots are handed
  // out lowest first, so a lightly used map is scanned in O(used), not O(capacity). f must not
  // insert or erase (use for_each for that).
  template <class F>
  void scan(F&& f) const {
    std::size_t left = size();
    for (std::uint32_t s = 0; left > 0 && s < slots_.capacity(); ++s) {
      if (slots_.used_unchecked(s)) {
        f(s);
        --left;
      }
    }
  }

  std::size_t state_bytes() const noexcept { return bytes_for(slots_.capacity()); }

 private:
  static std::size_t hash_at(const void* keys, std::uint32_t slot) noexcept {
    return Hash{}(static_cast<const Key*>(keys)[slot]);
  }

  MapSlots<Slot> slots_;
  FixedArray<Key> keys_;
  FixedArray<Value> values_;
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
