// FixedMap's type-independent part (core/fixed_map.hpp), one copy per slot width.
#include "core/fixed_map.hpp"

namespace nomq::detail {

template <class Slot>
MapSlots<Slot>::MapSlots(Arena& arena, std::size_t capacity) noexcept
    : capacity_(capacity), mask_(index_size(capacity) - 1), free_count_(capacity) {
  if (capacity >= kEmpty) __builtin_trap();  // Engine::validate() keeps the limits below it
  index_ = arena.make<Slot>(index_size(capacity), kEmpty);
  used_ = arena.make<std::uint8_t>(capacity);
  free_ = arena.make<Slot>(capacity);
  for (std::size_t i = 0; i < capacity; ++i) free_[i] = static_cast<Slot>(capacity - 1 - i);
}

template <class Slot>
void MapSlots<Slot>::erase(std::uint32_t s, std::size_t home,
                           std::size_t (*hash)(const void* keys, std::uint32_t slot),
                           const void* keys) noexcept {
  std::size_t pos = home & mask_;
  while (index_[pos] != s) pos = (pos + 1) & mask_;
  // Backward-shift deletion: keeps every probe chain gap-free without tombstones.
  std::size_t hole = pos;
  for (std::size_t next = (hole + 1) & mask_;; next = (next + 1) & mask_) {
    const std::uint32_t t = index_[next];
    if (t == kEmpty) break;
    const std::size_t h = hash(keys, t) & mask_;
    // Move t into the hole if its home is not cyclically within (hole, next].
    const bool stays = hole <= next ? (h > hole && h <= next) : (h > hole || h <= next);
    if (!stays) {
      index_[hole] = static_cast<Slot>(t);
      hole = next;
    }
  }
  index_[hole] = kEmpty;
  used_[s] = 0;
  free_[free_count_++] = static_cast<Slot>(s);
}

template class MapSlots<std::uint16_t>;
template class MapSlots<std::uint32_t>;

}  // namespace nomq::detail
