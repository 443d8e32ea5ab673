// Shared helpers for the simulation tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "sim/scenario.hpp"

namespace nomq::sim::testing {

// Seeds per randomized case: 100 in CI; NOMQ_SIM_SEEDS=N runs N for a deeper look by hand.
inline std::uint64_t seed_count() {
  static const std::uint64_t n = [] {
    const char* env = std::getenv("NOMQ_SIM_SEEDS");
    if (env == nullptr || *env == '\0') return std::uint64_t{100};
    const auto v = std::strtoull(env, nullptr, 10);
    return v == 0 ? std::uint64_t{100} : static_cast<std::uint64_t>(v);
  }();
  return n;
}
inline const std::uint64_t kSeeds = seed_count();

// Subscriptions must be known before publishing starts: with heartbeats every 2 s for 60 s
// of virtual time, an announcement fails to reach a publisher 30 times in a row with
// probability 0.3^30 even at 30 % loss.
inline ScenarioOptions lossy_base(std::uint64_t seed) {
  ScenarioOptions o;
  o.seed = seed;
  o.nodes = 3 + seed % 3;       // 3..5 nodes
  o.publishers = 1 + seed % 2;  // 1 or 2 of them publish
  o.messages = 100;
  o.loss = 0.3;
  o.duplicate = 0.1;
  o.reorder = 0.1;
  o.delay = std::chrono::milliseconds(5);
  o.jitter = std::chrono::milliseconds(3);
  o.ttl_s = 300;
  o.rate = 50;
  o.warmup = std::chrono::seconds(60);
  o.heartbeat = std::chrono::seconds(2);
  return o;
}

inline std::string trace(const ScenarioOptions& o) {
  return std::string("seed ").append(std::to_string(o.seed)) + "; replay: " + command_line(o);
}

// Stops a seed loop once a handful of seeds failed, so that one regression does not print a
// hundred near-identical reports.
inline bool too_many_failures(int& failed_seeds) {
  if (::testing::Test::HasFailure()) ++failed_seeds;
  return failed_seeds >= 5;
}

}  // namespace nomq::sim::testing
