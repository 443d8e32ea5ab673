// The simulator itself (link model, partitions, restarts) and the engine behaviours that need a
// hand-built script: priority order of a burst, retained messages for a late joiner.
#include "sim/simulator.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim/prng.hpp"
#include "sim_test_support.hpp"

namespace nomq::sim {
namespace {

using namespace std::chrono_literals;
using testing::kSeeds;

struct Delivery {
  std::size_t node;
  std::uint32_t generation;
  std::string channel;
  std::string message;
  std::uint8_t priority;
  bool retain;
  Instant at;
};

struct Recorder {
  std::vector<Delivery> deliveries;
  std::vector<std::pair<std::size_t, Errc>> reports;
  SimHooks hooks() {
    SimHooks h;
    h.on_message = [this](std::size_t n, std::uint32_t g, const MessageEvent& m, Instant t) {
      deliveries.push_back({n, g, std::string(m.channel), std::string(as_string_view(m.message)),
                            m.priority, m.retain, t});
    };
    h.on_report = [this](std::size_t n, std::uint32_t, const DeliveryReport& r, Instant) {
      reports.emplace_back(n, r.reason);
    };
    return h;
  }
  std::vector<Delivery> at_node(std::size_t n) const {
    std::vector<Delivery> out;
    for (const auto& d : deliveries)
      if (d.node == n) out.push_back(d);
    return out;
  }
};

EngineConfig quick_config() {
  EngineConfig c;
  c.timers.heartbeat_interval = 2s;
  return c;
}

Simulator::Options clean_link(std::uint64_t seed, Duration delay = 5ms) {
  Simulator::Options o;
  o.seed = seed;
  o.link.delay = delay;
  return o;
}

// Adds `count` quick-config nodes to `sim`, every delivery and report recorded in `rec`.
void add_recorded_nodes(Simulator& sim, Recorder& rec, std::size_t count) {
  sim.set_hooks(rec.hooks());
  for (std::size_t i = 0; i < count; ++i) sim.add_node(quick_config());
}

// Node 0 publishes "0", "1", ... on "a" (QoS 0), `gap` apart; then the network gets 1 s to
// settle.
void publish_numbered(Simulator& sim, int count, Duration gap) {
  for (int i = 0; i < count; ++i) {
    ASSERT_TRUE(sim.publish(0, "a", as_bytes(std::to_string(i)), {}));
    sim.run_until(sim.now() + gap);
  }
  sim.run_until(sim.now() + 1s);
}

TEST(Simulator, EndpointsAreTestNet1AndMapBack) {
  Simulator sim{clean_link(1)};
  for (int i = 0; i < 3; ++i) sim.add_node(quick_config());
  const Endpoint e = sim.endpoint(2);
  EXPECT_EQ(e.family, Endpoint::Family::ipv4);
  EXPECT_EQ(e.address[0], 192);
  EXPECT_EQ(e.address[1], 0);
  EXPECT_EQ(e.address[2], 2);
  EXPECT_EQ(e.address[3], 3);
  EXPECT_EQ(sim.node_of(e), 2u);
  EXPECT_FALSE(sim.node_of(Endpoint::v4(192, 0, 2, 4, e.port)));
  EXPECT_FALSE(sim.node_of(Endpoint::v4(127, 0, 0, 1, e.port)));
}

TEST(Simulator, DelayIsExactOnACleanLink) {
  Simulator sim{clean_link(3, 7ms)};
  Recorder rec;
  add_recorded_nodes(sim, rec, 2);
  ASSERT_TRUE(sim.subscribe(1, "a"));
  sim.run_until(sim.now() + 1s);
  const Instant sent = sim.now();
  ASSERT_TRUE(sim.publish(0, "a", as_bytes("hello"), {}));
  sim.run_until(sent + 1s);
  ASSERT_EQ(rec.deliveries.size(), 1u);
  EXPECT_EQ(rec.deliveries[0].at, sent + 7ms);
  EXPECT_EQ(rec.deliveries[0].message, "hello");
}

TEST(Simulator, TotalLossDeliversNothingAndCountsEveryCopy) {
  Simulator::Options so = clean_link(4);
  so.link.loss = 1.0;
  Simulator sim{so};
  Recorder rec;
  add_recorded_nodes(sim, rec, 3);
  ASSERT_TRUE(sim.subscribe(1, "a"));
  ASSERT_TRUE(sim.subscribe(2, "a"));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(sim.publish(0, "a", as_bytes("x"), {}));
  sim.run_until(sim.now() + 30s);
  EXPECT_TRUE(rec.deliveries.empty());
  const NetworkStats& n = sim.network_stats();
  EXPECT_EQ(n.copies_delivered, 0u);
  // Nobody hears anything, so nobody answers a solicitation: every send is a group send, to
  // the two other nodes, except the start-up solicitations sent as each node was added (node
  // 0's reached nobody yet, node 1's one node). No duplication configured.
  EXPECT_EQ(n.group_sends, n.datagrams_sent);
  EXPECT_EQ(n.dropped_loss, 2 * n.datagrams_sent - 3);
}

TEST(Simulator, LossRateMatchesTheLinkModel) {
  Simulator::Options so = clean_link(5);
  so.link.loss = 0.25;
  Simulator sim{so};
  for (int i = 0; i < 2; ++i) sim.add_node(quick_config());
  for (int i = 0; i < 4000; ++i) {
    ASSERT_TRUE(sim.publish(0, "a", as_bytes("x"), {}));
    sim.run_until(sim.now() + 1ms);
  }
  sim.run_until(sim.now() + 1s);
  const NetworkStats& n = sim.network_stats();
  const double rate = static_cast<double>(n.dropped_loss) / static_cast<double>(n.datagrams_sent);
  EXPECT_NEAR(rate, 0.25, 0.03);
}

TEST(Simulator, DuplicatedCopiesAreReplaysTheEngineDrops) {
  Simulator::Options so = clean_link(8);
  so.link.duplicate = 1.0;
  so.link.jitter = 2ms;
  Simulator sim{so};
  Recorder rec;
  add_recorded_nodes(sim, rec, 3);
  ASSERT_TRUE(sim.subscribe(1, "a"));
  ASSERT_TRUE(sim.subscribe(2, "a"));
  sim.run_until(sim.now() + 1s);
  publish_numbered(sim, 20, 10ms);
  // Every copy was doubled, yet each subscriber got each message once: v2 gives every
  // transmission its own sequence number and the second copy is a replay.
  EXPECT_EQ(rec.at_node(1).size(), 20u);
  EXPECT_EQ(rec.at_node(2).size(), 20u);
  const NetworkStats& n = sim.network_stats();
  // Group sends reach the two other nodes (but the start-up solicitations sent as nodes 0 and 1
  // were added: 0 and 1 node), unicast sends (solicitation answers) one; all doubled.
  EXPECT_GT(n.datagrams_sent, n.group_sends);
  EXPECT_EQ(n.copies_delivered,
            2 * (2 * n.group_sends - 3 + (n.datagrams_sent - n.group_sends)));
  EXPECT_GE(sim.engine_stats_total().dropped_by(Errc::replayed), 40u);
}

TEST(Simulator, ReorderLetsLaterDatagramsOvertake) {
  Simulator::Options so = clean_link(9, 1ms);
  so.link.reorder = 0.5;
  so.link.reorder_delay = 100ms;
  Simulator sim{so};
  Recorder rec;
  add_recorded_nodes(sim, rec, 2);
  ASSERT_TRUE(sim.subscribe(1, "a"));
  sim.run_until(sim.now() + 1s);
  publish_numbered(sim, 50, 1ms);
  const auto got = rec.at_node(1);
  ASSERT_EQ(got.size(), 50u);  // reordered, not lost: the replay window accepts late arrivals
  int inversions = 0;
  for (std::size_t i = 1; i < got.size(); ++i)
    inversions += std::stoi(got[i].message) < std::stoi(got[i - 1].message) ? 1 : 0;
  EXPECT_GT(inversions, 5);
  EXPECT_GT(sim.network_stats().reordered, 10u);
}

TEST(Simulator, PartitionCutsBothWaysOnlyDuringItsWindow) {
  Simulator sim{clean_link(6)};
  Recorder rec;
  add_recorded_nodes(sim, rec, 3);
  ASSERT_TRUE(sim.subscribe(0, "a"));
  ASSERT_TRUE(sim.subscribe(1, "a"));
  ASSERT_TRUE(sim.subscribe(2, "a"));
  const Instant t0 = sim.now();
  sim.add_partition({t0 + 1s, t0 + 2s, {2}});
  auto publish_all = [&] {
    for (std::size_t n = 0; n < 3; ++n)
      ASSERT_TRUE(sim.publish(n, "a", as_bytes(std::to_string(n)), {}));
  };
  sim.at(t0 + 1500ms, publish_all);  // during: 2 is cut off from 0 and 1
  sim.at(t0 + 2500ms, publish_all);  // after
  sim.run_until(t0 + 3s);
  std::vector<std::string> during, after;
  for (const auto& d : rec.deliveries) {
    auto& v = d.at < t0 + 2s ? during : after;
    v.push_back(std::to_string(d.node) + "<" + d.message);
  }
  std::sort(during.begin(), during.end());
  std::sort(after.begin(), after.end());
  EXPECT_EQ(during, (std::vector<std::string>{"0<1", "1<0"}));
  EXPECT_EQ(after, (std::vector<std::string>{"0<1", "0<2", "1<0", "1<2", "2<0", "2<1"}));
  EXPECT_GT(sim.network_stats().dropped_partition, 0u);
}

TEST(Simulator, RestartStartsANewSession) {
  Simulator sim{clean_link(7)};
  for (int i = 0; i < 2; ++i) sim.add_node(quick_config());
  const std::uint32_t before = sim.engine(1).session_id();
  sim.restart(1);
  EXPECT_EQ(sim.generation(1), 1u);
  EXPECT_NE(sim.engine(1).session_id(), before);
}

TEST(Simulator, SameSeedSameSessionIds) {
  auto ids = [](std::uint64_t seed) {
    Simulator sim{clean_link(seed)};
    std::vector<std::uint32_t> v;
    for (int i = 0; i < 4; ++i) v.push_back(sim.engine(sim.add_node(quick_config())).session_id());
    return v;
  };
  EXPECT_EQ(ids(11), ids(11));
  EXPECT_NE(ids(11), ids(12));
}

// Several publishers send bursts of mixed priorities at one instant; with equal delays and no
// jitter they reach the subscriber at one instant and are fed to it as one batch. The engine
// must hand them to the application highest priority first.
TEST(SimPriority, BurstArrivingTogetherIsDeliveredHighestFirst) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
    Simulator sim{clean_link(seed)};
    Recorder rec;
    const std::size_t nodes = 3 + seed % 3;
    add_recorded_nodes(sim, rec, nodes);
    const std::size_t sub = nodes - 1;
    ASSERT_TRUE(sim.subscribe(sub, "burst"));
    sim.run_until(sim.now() + 10s);
    Prng rng{seed};
    const Qos qos = static_cast<Qos>(seed % 3);
    std::size_t sent = 0;
    for (std::size_t pub = 0; pub < sub; ++pub) {
      for (int k = 0; k < 6; ++k) {
        PublishOptions po;
        po.qos = qos;
        po.priority = static_cast<std::uint8_t>(rng.below(16));
        const std::string text = std::to_string(pub) + ":" + std::to_string(k);
        ASSERT_TRUE(sim.publish(pub, "burst", as_bytes(text), po));
        ++sent;
      }
    }
    sim.run_until(sim.now() + 10s);
    const auto got = rec.at_node(sub);
    ASSERT_EQ(got.size(), sent);
    for (std::size_t i = 1; i < got.size(); ++i) {
      if (got[i].at != got[i - 1].at) continue;
      EXPECT_GE(got[i - 1].priority, got[i].priority)
          << "delivery " << i << " (" << got[i].message << ") at the same instant as "
          << got[i - 1].message;
    }
    // The whole burst came in one instant (one batch) per publisher at least.
    EXPECT_EQ(got.front().at, got.back().at);
    if (::testing::Test::HasFailure()) break;
  }
}

// A retained message published before a subscriber exists reaches it when it subscribes later.
// Whatever arrives must be one of the channel's retained messages, flagged retained, after the
// subscription. On clean links (duplication and reordering only) every late joiner must get the
// newest value. Under loss the engine sends a newcomer its retained messages once, as QoS 0
// datagrams (docs/engine.md §7), so delivery is not guaranteed per seed: returns how many of
// the seeds' late joiners got any retained value, for a rate check.
std::uint64_t late_joiner_gets_retained(double loss, bool publisher_gone, bool require_latest) {
  std::uint64_t served = 0;
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
    Simulator::Options so = clean_link(seed);
    so.link.jitter = 3ms;
    so.link.loss = loss;
    so.link.duplicate = 0.1;
    so.link.reorder = 0.1;
    Simulator sim{so};
    Recorder rec;
    add_recorded_nodes(sim, rec, 3);
    EXPECT_TRUE(sim.subscribe(1, "state"));
    sim.run_until(sim.now() + 5s);
    PublishOptions po;
    po.qos = static_cast<Qos>(seed % 3);
    po.retain = true;
    po.ttl_s = 600;
    EXPECT_TRUE(sim.publish(0, "state", as_bytes("old"), po));
    sim.run_until(sim.now() + 1s);
    EXPECT_TRUE(sim.publish(0, "state", as_bytes("on"), po));
    sim.run_until(sim.now() + 20s);
    if (publisher_gone) sim.close(0);
    const Instant joined = sim.now();
    EXPECT_TRUE(sim.subscribe(2, "state"));
    sim.run_until(sim.now() + 60s);
    const auto got = rec.at_node(2);
    bool found = false;
    for (const auto& d : got) {
      EXPECT_GE(d.at, joined);
      EXPECT_EQ(d.channel, "state");
      EXPECT_TRUE(d.retain);
      EXPECT_TRUE(d.message == "on" || d.message == "old") << d.message;
      if (d.message == "on") found = true;
    }
    if (!got.empty()) ++served;
    if (require_latest) {
      EXPECT_TRUE(found);
    }
    if (::testing::Test::HasFailure()) break;
  }
  return served;
}

TEST(SimRetained, LateJoinerGetsLatestRetainedMessage) {
  EXPECT_EQ(late_joiner_gets_retained(0.0, false, true), kSeeds);
}
// 30 % loss: about 96 % of late joiners get a retained value within 60 s (43 of 1000 seeds get
// none); far fewer would mean the replay to newcomers broke.
TEST(SimRetained, MostLateJoinersGetARetainedMessageUnderLoss) {
  EXPECT_GE(late_joiner_gets_retained(0.3, false, false), kSeeds * 88 / 100);
}
// The publisher has closed: another subscriber that kept the retained value answers.
TEST(SimRetained, LateJoinerGetsRetainedMessageFromAnotherSubscriber) {
  EXPECT_EQ(late_joiner_gets_retained(0.0, true, true), kSeeds);
}

}  // namespace
}  // namespace nomq::sim
