// Wire v1 inner-nonce replay cache: the original keeps the last 100 PUBLISH nonces for 30 s;
// this one keeps up to `capacity` (config.v1_nonce_cache, default 1024) for `lifetime` (twice
// the timestamp window: a datagram stamped at the far edge of the window stays acceptable for
// that long). A ring in arrival order plus a hash index; when full the oldest is forgotten.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/fixed_map.hpp"
#include "nomq/time.hpp"

namespace nomq::detail {

class NonceCache {
  struct Item {
    std::uint32_t nonce = 0;
    Instant at{};
  };
  using Index = FixedMap<std::uint32_t, std::uint8_t, U32Hash, U32Eq>;

 public:
  NonceCache(Arena& arena, std::size_t capacity, Duration lifetime) noexcept;
  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return Index::bytes_for(at_least_one(capacity)) + arena_bytes<Item>(at_least_one(capacity));
  }

  bool contains(std::uint32_t nonce, Instant now) noexcept;
  // Remembers `nonce` (precondition: not contained).
  void insert(std::uint32_t nonce, Instant now) noexcept;

  std::size_t size() const noexcept { return count_; }
  std::uint64_t forgotten_early() const noexcept { return forgotten_early_; }
  std::size_t state_bytes() const noexcept { return bytes_for(ring_.size()); }

 private:
  void purge(Instant now) noexcept;
  void pop_oldest() noexcept;

  Duration lifetime_;
  Index index_;
  FixedArray<Item> ring_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::uint64_t forgotten_early_ = 0;  // evicted while still inside their lifetime
};

}  // namespace nomq::detail
