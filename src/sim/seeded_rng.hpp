// The one seeded random generator of the tests, the simulator, the fuzz targets and the
// benchmarks: an nomq::Rng whose bytes are a xoshiro256** stream (sim/prng.hpp), so IVs,
// session ids, message ids and jitter, and hence a whole run, repeat exactly for a seed.
// Header-only, so that every test target can use it without linking the simulator. Never use
// it outside tests and simulations: its "randomness" is predictable by design.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nomq/crypto.hpp"
#include "sim/prng.hpp"

namespace nomq::sim {

class SeededRng final : public Rng {
 public:
  explicit SeededRng(std::uint64_t seed) noexcept : prng_(seed), start_(seed) {}

  // Little-endian bytes of each 64-bit draw, the same bytes on every host. A draw's unused
  // bytes are discarded: each call starts on a fresh draw (the simulator's streams were
  // recorded that way).
  void random_bytes(MutableBytes out) noexcept override {
    std::size_t i = 0;
    while (i < out.size()) {
      if (period_ != 0 && produced_ % period_ == 0) prng_ = start_;
      std::uint64_t v = prng_.next();
      for (int k = 0; k < 8 && i < out.size(); ++k, ++i) {
        out[i] = static_cast<std::uint8_t>(v);
        v >>= 8;
      }
      ++produced_;
    }
  }

  // Restarts the stream from `seed` (a restarted node gets a fresh, still seeded, stream).
  void reseed(std::uint64_t seed) noexcept {
    prng_ = Prng{seed};
    start_ = prng_;
    produced_ = 0;
  }

  // From now on the stream restarts from where it is now every `draws` 64-bit draws: a
  // deliberately weak source, for tests of what the engine must not leave to chance (0: the
  // normal stream again).
  void repeat_randomness_every(std::size_t draws) noexcept {
    period_ = draws;
    start_ = prng_;
    produced_ = 0;
  }

 private:
  Prng prng_;
  Prng start_;  // where a repeating stream restarts
  std::size_t period_ = 0;
  std::size_t produced_ = 0;
};

}  // namespace nomq::sim
