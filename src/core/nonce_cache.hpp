// Wire v1 inner-nonce replay cache: the original keeps the last 100 PUBLISH nonces for 30 s;
// this one keeps up to `capacity` (config.v1_nonce_cache, default 1024) for `lifetime` (twice
// the timestamp window: a datagram stamped at the far edge of the window stays acceptable for
// that long). A ring in arrival order plus a hash index; when full the oldest is forgotten.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/fixed_map.hpp"
#include "nomq/time.hpp"

namespace nomq::detail {

class NonceCache {
 public:
  NonceCache(std::size_t capacity, Duration lifetime);

  bool contains(std::uint32_t nonce, Instant now) noexcept;
  // Remembers `nonce` (precondition: not contained).
  void insert(std::uint32_t nonce, Instant now) noexcept;

  std::size_t size() const noexcept { return count_; }
  std::uint64_t forgotten_early() const noexcept { return forgotten_early_; }
  std::size_t state_bytes() const noexcept {
    return index_.state_bytes() + ring_.capacity() * sizeof(Item);
  }

 private:
  struct Item {
    std::uint32_t nonce = 0;
    Instant at{};
  };
  void purge(Instant now) noexcept;
  void pop_oldest() noexcept;

  Duration lifetime_;
  FixedMap<std::uint32_t, std::uint8_t, U32Hash, U32Eq> index_;
  std::vector<Item> ring_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::uint64_t forgotten_early_ = 0;  // evicted while still inside their lifetime
};

}  // namespace nomq::detail
