// Engine::next_deadline() keeps each open publish's earliest retransmission deadline cached
// (Publisher::Pending::min in src/core/publisher.hpp). With the engine's test hook on (per
// engine, detail::EngineTesting), every call also
// scans the recipients and counts disagreements. Here next_deadline() is also called in the
// middle of draining (from the network's loss filter, between one poll_transmit and the next),
// where a deadline moved by a transmission is visible before the engine is asked again.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/engine_testing.hpp"
#include "test_support.hpp"

namespace nomq::engine_test {
namespace {

using namespace std::chrono_literals;

TEST(EngineDeadline, CachedRetransmitDeadlinesAgreeWithAFullScan) {
  detail::DeadlineCacheCounts total;
  for (std::uint32_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng{seed};
    TestNet net;
    EngineConfig cfg;
    cfg.max_retries = 5;
    for (std::uint64_t n = 0; n < 4; ++n) {
      detail::EngineTesting::check_deadline_cache(net.add(cfg, 100 * seed + n).engine, true);
    }
    for (std::size_t n = 1; n < 4; ++n) ASSERT_TRUE(net.nodes[n]->engine.subscribe("a", 0, net.now));
    net.run_for(2s);
    net.filter = [&](const Datagram&) {
      for (auto& n : net.nodes) (void)n->engine.next_deadline();
      return rng() % 4 != 0;  // 25 % loss
    };
    net.duplicate = [&](const Datagram&) { return rng() % 10 == 0; };
    for (int k = 0; k < 60; ++k) {
      PublishOptions po;
      po.qos = rng() % 2 == 0 ? Qos::at_least_once : Qos::exactly_once;
      po.ttl_s = static_cast<std::uint16_t>(1 + rng() % 5);
      (void)net.nodes[0]->engine.publish("a", bytes_of(std::to_string(k)), po, net.now);
      net.run_for(Duration{static_cast<std::int64_t>(rng() % 300'000)}, 5ms);
    }
    net.run_for(10s, 20ms);
    for (auto& n : net.nodes) {
      const auto c = detail::EngineTesting::deadline_cache_counts(n->engine);
      total.checks += c.checks;
      total.mismatches += c.mismatches;
    }
  }
  EXPECT_GT(total.checks, 1000u);
  EXPECT_EQ(total.mismatches, 0u);
}

// The hook belongs to one engine: turning it on for one leaves another (which may run on another
// thread) untouched.
TEST(EngineDeadline, TheCheckIsPerEngine) {
  TestNet net;
  EngineConfig cfg;
  Node& pub = net.add(cfg, 1);
  Node& sub = net.add(cfg, 2);
  detail::EngineTesting::check_deadline_cache(pub.engine, true);
  ASSERT_TRUE(sub.engine.subscribe("a", 0, net.now));
  net.run_for(2s);
  PublishOptions po;
  po.qos = Qos::exactly_once;
  ASSERT_TRUE(pub.engine.publish("a", bytes_of("x"), po, net.now));
  // Asked while the publish is open (a loss-free exchange ends within one pump).
  (void)pub.engine.next_deadline();
  (void)sub.engine.next_deadline();
  net.run_for(1s, 5ms);
  EXPECT_GT(detail::EngineTesting::deadline_cache_counts(pub.engine).checks, 0u);
  EXPECT_EQ(detail::EngineTesting::deadline_cache_counts(pub.engine).mismatches, 0u);
  EXPECT_EQ(detail::EngineTesting::deadline_cache_counts(sub.engine).checks, 0u);
}

}  // namespace
}  // namespace nomq::engine_test
