// The engine's statistics (EngineStats): every component counts through this one object, so the
// counters have one owner and one way in (a drop is always counted in both its Errc slot and the
// total).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/arena.hpp"
#include "core/key_ring.hpp"
#include "nomq/crypto.hpp"
#include "nomq/engine.hpp"

namespace nomq::detail {

class Counters {
 public:
  // A datagram (or reply) the engine does not act on: counted once, by reason.
  void drop(Errc e) noexcept {
    ++stats_.dropped[static_cast<std::size_t>(e)];
    ++stats_.dropped_total;
  }
  // One more of `field` (e.g. &EngineStats::retransmissions).
  void add(std::uint64_t EngineStats::*field) noexcept { ++(stats_.*field); }
  const EngineStats& stats() const noexcept { return stats_; }

 private:
  EngineStats stats_;
};

// What every component shares: the configuration (read only), the crypto backend, the random
// generator, the counters, and the arena the components take their tables from (construction
// only: nothing is taken from it afterwards).
// `crypto` is the key ring (core/key_ring.hpp): it encodes with the current key epoch's set;
// `keys` is the same object, for the receiver to pick a set by a datagram's epoch tag.
struct Context {
  const EngineConfig& cfg;
  Crypto& crypto;
  Rng& rng;
  Counters& counters;
  Arena& arena;
  KeyRing& keys;
};

}  // namespace nomq::detail
