// Engine::next_deadline() keeps the earliest retransmission deadline of each open publish
// cached (Publisher::Pending::min in src/core/publisher.hpp) instead of visiting every recipient
// on each call. With the engine's test hook on (per engine, detail::EngineTesting), every call
// also computes it by a full scan and counts
// disagreements: group publishes at QoS 1 and 2 to several subscribers over a lossy,
// duplicating, reordering network, with crashes, drive every path that moves a recipient's
// deadline (transmission, retransmission, PUBREC, answers, expiry, late subscribers).
#include <gtest/gtest.h>

#include <string>

#include "core/engine_testing.hpp"
#include "sim/prng.hpp"
#include "sim/simulator.hpp"

namespace nomq::sim {
namespace {

using namespace std::chrono_literals;

TEST(DeadlineCache, AgreesWithAFullScanUnderLossAndCrashes) {
  detail::DeadlineCacheCounts total;
  auto collect = [&total](const Engine& e) {
    const auto c = detail::EngineTesting::deadline_cache_counts(e);
    total.checks += c.checks;
    total.mismatches += c.mismatches;
  };
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    Simulator::Options o;
    o.seed = seed;
    o.link.delay = 5ms;
    o.link.jitter = 3ms;
    o.link.loss = 0.25;
    o.link.duplicate = 0.1;
    o.link.reorder = 0.1;
    Simulator sim(o);
    EngineConfig c;
    c.timers.heartbeat_interval = 2s;
    c.max_retries = 6;
    for (int i = 0; i < 5; ++i) {
      detail::EngineTesting::check_deadline_cache(sim.engine(sim.add_node(c)), true);
    }
    for (std::size_t n = 1; n < 5; ++n) ASSERT_TRUE(sim.subscribe(n, "a"));
    Prng rng(seed);
    sim.run_until(sim.now() + 3s);
    for (int k = 0; k < 150; ++k) {
      PublishOptions po;
      po.qos = rng.below(2) == 0 ? Qos::at_least_once : Qos::exactly_once;
      po.ttl_s = static_cast<std::uint16_t>(2 + rng.below(20));
      (void)sim.publish(0, "a", as_bytes(std::to_string(k)), po);
      if (rng.below(40) == 0) {
        const std::size_t n = 1 + rng.below(4);
        collect(sim.engine(n));
        sim.restart(n);
        detail::EngineTesting::check_deadline_cache(sim.engine(n), true);
      }
      if (rng.below(60) == 0) (void)sim.subscribe(1 + rng.below(4), "a");
      sim.run_until(sim.now() + Duration{static_cast<std::int64_t>(rng.below(200'000))});
    }
    sim.run_until(sim.now() + 60s);
    for (std::size_t n = 0; n < 5; ++n) collect(sim.engine(n));
  }
  EXPECT_GT(total.checks, 10000u);
  EXPECT_EQ(total.mismatches, 0u);
}

}  // namespace
}  // namespace nomq::sim
