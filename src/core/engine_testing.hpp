// Test hooks of the engine (tests only; no application sets these).
#pragma once

#include <cstdint>

namespace nomq::detail {

// When set, Engine::next_deadline() also computes the earliest retransmission deadline of every
// open publish by a full scan of its recipients and counts how often the cached value
// (Pending::track_min in engine.cpp) disagrees. Debug builds assert the same on every call.
extern bool engine_check_deadline_cache;
extern std::uint64_t engine_deadline_checks;
extern std::uint64_t engine_deadline_mismatches;

// Turns the check on, from zeroed counters, for as long as it lives (one per test).
struct DeadlineCacheCheck {
  DeadlineCacheCheck() noexcept {
    engine_deadline_checks = 0;
    engine_deadline_mismatches = 0;
    engine_check_deadline_cache = true;
  }
  ~DeadlineCacheCheck() { engine_check_deadline_cache = false; }
  DeadlineCacheCheck(const DeadlineCacheCheck&) = delete;
  DeadlineCacheCheck& operator=(const DeadlineCacheCheck&) = delete;
};

}  // namespace nomq::detail
