// Key epochs and rotation without a flag day (issue 13 item 3; docs/engine.md §19,
// docs/protocol.md §6.1), in the deterministic simulator: three nodes run a QoS 1 and a QoS 2
// stream over lossy links while every node rotates to the next key epoch, in either order
// (receivers first or publishers first), a few seconds apart within the overlap: every message
// is delivered exactly once to every subscriber and every publish is reported acknowledged. A
// node left on the old epoch after the overlap is refused and counted (old_key_epoch); a tag of
// no epoch held is counted apart (unknown_key_epoch); wire v1 refuses rotation. The renewal
// before the 32-bit sequence wrap starts a session the receivers accept with a fresh window.
// Every case runs over seeds; a failure names its seed.
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/engine_testing.hpp"
#include "nomq/crypto_backend.hpp"
#include "nomq/wire.hpp"
#include "sim/simulator.hpp"

namespace nomq::sim {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kSeeds = 8;

Simulator::Options lossy(std::uint64_t seed) {
  Simulator::Options o;
  o.seed = seed;
  o.link.delay = 5ms;
  o.link.jitter = 3ms;
  o.link.loss = 0.1;
  o.link.duplicate = 0.05;
  o.link.reorder = 0.05;
  return o;
}

EngineConfig fast_config() {
  EngineConfig c;
  c.timers.heartbeat_interval = 2s;
  return c;
}

// The keys of epoch 1: fresh random keys, one Crypto object per node (as each process has its
// own), the same keys in all.
struct NextKeys {
  explicit NextKeys(std::uint64_t seed, std::size_t nodes) {
    SeededRng rng(seed * 104729 + 3);
    Key enc{};
    Key mac{};
    rng.random_bytes(enc);
    rng.random_bytes(mac);
    for (std::size_t i = 0; i < nodes; ++i) sets.push_back(std::move(make_crypto(enc, mac)).value());
  }
  std::vector<std::unique_ptr<CryptoRng>> sets;
};

// Node 0 publishes a QoS 1 stream on rot/q1, node 1 a QoS 2 stream on rot/q2; node 2
// subscribes to both, node 0 to rot/q2 and node 1 to rot/q1.
struct Streams {
  static constexpr int kMessages = 150;
  std::map<std::pair<std::size_t, std::string>, int> delivered;  // (node, body) -> count
  std::vector<DeliveryReport> reports;
  int reports_ok = 0;
  int reports_total = 0;
};

enum class Order { receivers_first, senders_first };

void run_rotation(std::uint64_t seed, Order order, Streams& s, Simulator& sim) {
  SimHooks h;
  h.on_message = [&](std::size_t n, std::uint32_t, const MessageEvent& m, Instant) {
    ++s.delivered[{n, std::string(reinterpret_cast<const char*>(m.message.data()), m.message.size())}];
  };
  h.on_report = [&](std::size_t, std::uint32_t, const DeliveryReport& r, Instant) {
    ++s.reports_total;
    if (r.all_acknowledged()) ++s.reports_ok;
  };
  sim.set_hooks(h);
  for (int i = 0; i < 3; ++i) sim.add_node(fast_config());
  ASSERT_TRUE(sim.subscribe(2, "rot/q1"));
  ASSERT_TRUE(sim.subscribe(2, "rot/q2"));
  ASSERT_TRUE(sim.subscribe(1, "rot/q1"));
  ASSERT_TRUE(sim.subscribe(0, "rot/q2"));
  sim.run_until(sim.now() + 10s);

  NextKeys keys(seed, 3);
  const KeyRotation when{.switch_after = 4s, .overlap = 8s};
  const Instant t0 = sim.now();
  // 100 ms apart: 15 s of streams; the rotations at 5, 6.5 and 8 s (in the given order), so
  // that the last is told 3 s after the first, within switch_after and overlap - switch_after.
  for (int i = 0; i < Streams::kMessages; ++i) {
    sim.at(t0 + i * 100ms, [&sim, i] {
      PublishOptions q1;
      q1.qos = Qos::at_least_once;
      q1.ttl_s = 600;
      PublishOptions q2 = q1;
      q2.qos = Qos::exactly_once;
      const std::string b1 = std::string("q1-").append(std::to_string(i));
      const std::string b2 = std::string("q2-").append(std::to_string(i));
      EXPECT_TRUE(sim.publish(0, "rot/q1", as_bytes(b1), q1));
      EXPECT_TRUE(sim.publish(1, "rot/q2", as_bytes(b2), q2));
    });
  }
  const std::array<std::size_t, 3> rx_first{2, 0, 1};
  const std::array<std::size_t, 3> tx_first{0, 1, 2};
  const auto& seq = order == Order::receivers_first ? rx_first : tx_first;
  for (std::size_t k = 0; k < 3; ++k) {
    const std::size_t node = seq[k];
    sim.at(t0 + 5s + k * 1500ms, [&sim, &keys, node, when] {
      const Result<void> r = sim.rotate_keys(node, *keys.sets[node], 1, when);
      EXPECT_TRUE(r) << r.error();
    });
  }
  sim.run_until([&] { return s.reports_total == 2 * Streams::kMessages; }, t0 + 120s);
  sim.run_until(sim.now() + 20s);  // past every overlap
}

class SimKeyRotation : public ::testing::TestWithParam<Order> {};

TEST_P(SimKeyRotation, QosStreamsLoseAndDuplicateNothing) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
    Simulator sim{lossy(seed)};
    Streams s;
    run_rotation(seed, GetParam(), s, sim);
    int lost = 0;
    int duplicated = 0;
    for (int i = 0; i < Streams::kMessages; ++i) {
      for (const auto& [node, body] :
           std::vector<std::pair<std::size_t, std::string>>{{2, "q1-" + std::to_string(i)},
                                                            {1, "q1-" + std::to_string(i)},
                                                            {2, "q2-" + std::to_string(i)},
                                                            {0, "q2-" + std::to_string(i)}}) {
        const auto it = s.delivered.find({node, body});
        const int n = it == s.delivered.end() ? 0 : it->second;
        if (n == 0) ++lost;
        if (n > 1) duplicated += n - 1;
      }
    }
    EXPECT_EQ(lost, 0);
    EXPECT_EQ(duplicated, 0);
    EXPECT_EQ(s.reports_ok, 2 * Streams::kMessages);
    for (std::size_t n = 0; n < 3; ++n) {
      const EngineStats& st = sim.engine(n).stats();
      EXPECT_EQ(sim.engine(n).key_epoch(), 1u) << "node " << n;
      EXPECT_EQ(st.key_epoch_switches, 1u) << "node " << n;
      EXPECT_EQ(st.key_epochs_retired, 1u) << "node " << n;
      EXPECT_EQ(st.dropped_by(Errc::old_key_epoch), 0u) << "node " << n;
      EXPECT_EQ(st.dropped_by(Errc::unknown_key_epoch), 0u) << "node " << n;
      EXPECT_EQ(st.dropped_by(Errc::bad_mac), 0u) << "node " << n;
      EXPECT_EQ(wire::session_epoch_tag(sim.engine(n).session_id()), 1u) << "node " << n;
    }
    if (::testing::Test::HasFailure()) break;
  }
}
INSTANTIATE_TEST_SUITE_P(SimKeyRotation, SimKeyRotation,
                         ::testing::Values(Order::receivers_first, Order::senders_first),
                         [](const auto& i) {
                           return i.param == Order::receivers_first ? "ReceiversFirst"
                                                                    : "SendersFirst";
                         });

// Nodes 0 and 1 rotate; node 2 is never told. Within the overlap everybody still hears node 2
// (its epoch is the others' previous one); after it, its datagrams are dropped as
// old_key_epoch (not bad_mac: the tag says why) and its publishes are not delivered.
TEST(SimKeyRotationStale, ANodeOnTheOldEpochAfterTheOverlapIsRefusedByReason) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
    Simulator::Options o;
    o.seed = seed;
    Simulator sim{o};
    std::map<std::size_t, int> got;
    SimHooks h;
    h.on_message = [&](std::size_t n, std::uint32_t, const MessageEvent&, Instant) { ++got[n]; };
    sim.set_hooks(h);
    for (int i = 0; i < 3; ++i) sim.add_node(fast_config());
    ASSERT_TRUE(sim.subscribe(0, "stale"));
    sim.run_until(sim.now() + 5s);
    NextKeys keys(seed, 2);
    const KeyRotation when{.switch_after = 2s, .overlap = 4s};
    ASSERT_TRUE(sim.rotate_keys(0, *keys.sets[0], 1, when));
    ASSERT_TRUE(sim.rotate_keys(1, *keys.sets[1], 1, when));
    sim.run_until(sim.now() + 1s);
    PublishOptions q0;
    ASSERT_TRUE(sim.publish(2, "stale", as_bytes("within the overlap"), q0));
    sim.run_until(sim.now() + 5s);  // the overlap is over
    EXPECT_EQ(got[0], 1) << "within the overlap the old epoch is still accepted";
    const std::uint64_t before = sim.engine(0).stats().dropped_by(Errc::old_key_epoch);
    ASSERT_TRUE(sim.publish(2, "stale", as_bytes("after the overlap"), q0));
    sim.run_until(sim.now() + 5s);
    EXPECT_EQ(got[0], 1) << "after the overlap nothing of the old epoch is delivered";
    EXPECT_GT(sim.engine(0).stats().dropped_by(Errc::old_key_epoch), before);
    EXPECT_GT(sim.engine(1).stats().dropped_by(Errc::old_key_epoch), 0u);
    EXPECT_EQ(sim.engine(0).stats().dropped_by(Errc::bad_mac), 0u);
    EXPECT_EQ(sim.engine(0).stats().key_epochs_retired, 1u);
    EXPECT_FALSE(sim.engine(0).holds_keys(*keys.sets[1]));
    EXPECT_TRUE(sim.engine(0).holds_keys(*keys.sets[0]));

    // A datagram tagged with an epoch neither held nor retired (3 = 1 + 2): its own reason.
    wire::Packet p;
    p.version = WireVersion::v2;
    p.type = wire::PacketType::heartbeat;
    p.session_id = wire::tag_session(0x1234567, 3);
    p.packet_id = 1;
    p.ttl = 60;
    p.timestamp = wire_seconds(sim.wall_now(0), 0);
    std::array<std::uint8_t, wire::kMaxDatagram> out{};
    const auto n = wire::encode(p, *keys.sets[0], out);
    ASSERT_TRUE(n);
    sim.inject(0, Endpoint::v4(192, 0, 2, 200, 4700), Bytes{out.data(), *n});
    EXPECT_EQ(sim.engine(0).stats().dropped_by(Errc::unknown_key_epoch), 1u);
    if (::testing::Test::HasFailure()) break;
  }
}

TEST(SimKeyRotationApi, RefusesV1TheWrongEpochAndASecondRotationBeforeTheSwitch) {
  Simulator sim{Simulator::Options{}};
  EngineConfig v1;
  v1.wire = WireVersion::v1;
  const std::size_t old = sim.add_node(v1);
  const std::size_t v2 = sim.add_node(EngineConfig{});
  NextKeys keys(1, 2);
  const KeyRotation when{.switch_after = 2s, .overlap = 4s};
  const Result<void> r1 = sim.rotate_keys(old, *keys.sets[0], 1, when);
  ASSERT_FALSE(r1);
  EXPECT_EQ(r1.error().code(), Errc::invalid_argument);
  EXPECT_NE(r1.error().message().find("v1"), std::string_view::npos) << r1.error();
  const Result<void> r2 = sim.rotate_keys(v2, *keys.sets[1], 2, when);
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message().find("must be 1"), std::string_view::npos) << r2.error();
  const Result<void> r3 = sim.rotate_keys(v2, *keys.sets[1], 1, KeyRotation{.switch_after = 4s, .overlap = 4s});
  ASSERT_FALSE(r3);
  ASSERT_TRUE(sim.rotate_keys(v2, *keys.sets[1], 1, when));
  const Result<void> r4 = sim.rotate_keys(v2, *keys.sets[1], 2, when);
  ASSERT_FALSE(r4) << "a second rotation before the first switched";
  EXPECT_EQ(sim.engine(v2).key_epoch(), 0u);
  sim.run_until(sim.now() + 3s);
  EXPECT_EQ(sim.engine(v2).key_epoch(), 1u);
  EXPECT_EQ(wire::session_epoch_tag(sim.engine(v2).session_id()), 1u);
}

// Sessions carry the epoch tag from the start (the engine's configured key_epoch).
TEST(SimKeyRotationApi, SessionIdsCarryTheConfiguredEpochTag) {
  for (std::uint32_t epoch = 0; epoch < 8; ++epoch) {
    Simulator sim{Simulator::Options{}};
    EngineConfig c;
    c.key_epoch = epoch;
    const std::size_t n = sim.add_node(c);
    EXPECT_EQ(wire::session_epoch_tag(sim.engine(n).session_id()), epoch % 4);
  }
}

// "Rekey is forced before a sequence number could wrap": a session whose next sequence number
// is near 2^32 renews before it sends (a new session id, numbers from 1); the receiver keeps
// accepting (a fresh replay window for the new session) and nothing is lost.
TEST(SimKeyRotationWrap, TheSessionRenewsBeforeTheSequenceWraps) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
    Simulator::Options o;
    o.seed = seed;
    Simulator sim{o};
    int got = 0;
    SimHooks h;
    h.on_message = [&](std::size_t, std::uint32_t, const MessageEvent&, Instant) { ++got; };
    sim.set_hooks(h);
    const std::size_t pub = sim.add_node(fast_config());
    const std::size_t sub = sim.add_node(fast_config());
    ASSERT_TRUE(sim.subscribe(sub, "wrap"));
    sim.run_until(sim.now() + 3s);
    const std::uint32_t before = sim.engine(pub).session_id();
    detail::EngineTesting::set_next_sequence(sim.engine(pub), 0xFFFFFFF0u);
    PublishOptions q1;
    q1.qos = Qos::at_least_once;
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(sim.publish(pub, "wrap", as_bytes("m"), q1));
    sim.run_until(sim.now() + 5s);
    EXPECT_NE(sim.engine(pub).session_id(), before);
    EXPECT_EQ(wire::session_epoch_tag(sim.engine(pub).session_id()), 0u);
    EXPECT_EQ(got, 40);
    EXPECT_EQ(sim.engine(sub).stats().dropped_by(Errc::replay_window_old), 0u);
    EXPECT_EQ(sim.engine(sub).stats().dropped_by(Errc::replayed), 0u);
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace
}  // namespace nomq::sim
