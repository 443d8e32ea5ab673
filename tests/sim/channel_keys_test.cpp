// Per-channel keys and keyed channel tags (issue 13 item 4; docs/engine.md §20, docs/protocol.md
// §14.4) on the deterministic simulator. Three nodes share the group keys; A and B also hold
// the key of `door/#`, C does not. A publishes `door/front` at QoS 0, 1, 2 and retained: B
// delivers every one; C (subscribed to `#` and to `door/front`) delivers none, answers none and
// counts them as no_channel_key. C cannot forge: its own publish on `door/front` (group keys),
// and datagrams it crafts around a captured channel id, deliver nothing at B. C cannot name:
// no captured channel id is the tag of any candidate name under anything C holds. Given the
// key at run time, C receives the next publishes. Every case runs over seeds; a failure names
// its seed.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nomq/crypto_backend.hpp"
#include "nomq/key_schedule.hpp"
#include "nomq/wire.hpp"
#include "sim/seeded_rng.hpp"
#include "sim/simulator.hpp"

namespace nomq::sim {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kSeeds = 6;
constexpr std::size_t A = 0, B = 1, C = 2, D = 3;

struct Got {
  std::size_t node;
  std::string channel;
  std::string message;
};

struct DoorRun {
  explicit DoorRun(std::uint64_t s) : seed(s), sim(options(s)) {
    SeededRng rng(seed * 7919 + 11);
    rng.random_bytes(door_secret);  // the channel secret A, B (and later C, D) share
    SimHooks h;
    h.on_message = [this](std::size_t n, std::uint32_t, const MessageEvent& m, Instant) {
      got.push_back({n, std::string(m.channel), std::string(as_string_view(m.message))});
    };
    h.on_report = [this](std::size_t n, std::uint32_t, const DeliveryReport& r, Instant) {
      if (n != A || r.channel != "door/front") return;
      for (const Recipient& x : r.recipients) {
        if (x.endpoint == sim.endpoint(B) && x.state == RecipientState::acknowledged) ++door_acked_by_b;
        if (x.endpoint == sim.endpoint(C) && x.state == RecipientState::acknowledged) ++door_acked_by_c;
      }
      ++door_reports;
    };
    h.on_transmit = [this](std::size_t n, const Transmit&, Bytes d, Instant) {
      const auto hv = wire::peek_header(d);
      if (!hv) return;
      const auto type = static_cast<wire::PacketType>(hv->type);
      if (wire::flags_channel_key(type, hv->flags)) {
        keyed_ids.insert(hv->channel_id);
        if (type == wire::PacketType::publish) captured_keyed_publish.assign(d.begin(), d.end());
      }
      if (n == C && counting_c_answers && wire::is_ack_type(type)) ++c_answers;
    };
    sim.set_hooks(h);
  }

  static Simulator::Options options(std::uint64_t seed) {
    Simulator::Options o;
    o.seed = seed;
    o.link.delay = 5ms;
    o.link.jitter = 2ms;
    SeededRng rng(seed * 31 + 5);
    rng.random_bytes(o.encryption_key);
    rng.random_bytes(o.hmac_key);
    return o;
  }

  std::unique_ptr<CryptoRng> door_keys() const {
    return std::move(make_channel_crypto(door_secret, KeyContext{.group_id = "sim", .key_epoch = 0,
                                                                 .wire = WireVersion::v2}))
        .value();
  }

  std::size_t count(std::size_t node, std::string_view channel) const {
    std::size_t n = 0;
    for (const Got& g : got) n += g.node == node && g.channel == channel ? 1 : 0;
    return n;
  }

  bool has(std::size_t node, std::string_view message) const {
    for (const Got& g : got) {
      if (g.node == node && g.message == message) return true;
    }
    return false;
  }

  std::uint64_t seed;
  Simulator sim;
  Key door_secret{};
  std::vector<Got> got;
  std::set<wire::ChannelId> keyed_ids;
  std::vector<std::uint8_t> captured_keyed_publish;
  int door_reports = 0;
  int door_acked_by_b = 0;
  int door_acked_by_c = 0;
  bool counting_c_answers = false;
  int c_answers = 0;
};

EngineConfig config() {
  EngineConfig c;
  c.timers.heartbeat_interval = 2s;
  c.max_retries = 3;
  return c;
}

PublishOptions qos(int q, bool retain = false) {
  PublishOptions o;
  o.qos = static_cast<Qos>(q);
  o.retain = retain;
  o.ttl_s = 60;
  return o;
}

// The scenario of the item: returns the channel key sets (alive as long as the engines).
std::vector<std::unique_ptr<CryptoRng>> run_door_scenario(DoorRun& r) {
  Simulator& sim = r.sim;
  for (int i = 0; i < 3; ++i) sim.add_node(config());
  std::vector<std::unique_ptr<CryptoRng>> keys;
  keys.push_back(r.door_keys());
  keys.push_back(r.door_keys());
  EXPECT_TRUE(sim.add_channel_key(A, "door/#", *keys[0]));
  EXPECT_TRUE(sim.add_channel_key(B, "door/#", *keys[1]));
  EXPECT_TRUE(sim.subscribe(B, "door/front"));
  EXPECT_TRUE(sim.subscribe(B, "lobby/#"));
  EXPECT_TRUE(sim.subscribe(C, "#"));
  EXPECT_TRUE(sim.subscribe(C, "door/front"));
  sim.run_until(sim.now() + 6s);

  // Group traffic works for everyone (C answers it).
  EXPECT_TRUE(sim.publish(A, "lobby/light", as_bytes(std::string_view{"on"}), qos(1)));
  sim.run_until(sim.now() + 3s);

  r.counting_c_answers = true;
  EXPECT_TRUE(sim.publish(A, "door/front", as_bytes(std::string_view{"q0"}), qos(0)));
  EXPECT_TRUE(sim.publish(A, "door/front", as_bytes(std::string_view{"q1"}), qos(1)));
  EXPECT_TRUE(sim.publish(A, "door/front", as_bytes(std::string_view{"q2"}), qos(2)));
  EXPECT_TRUE(sim.publish(A, "door/front", as_bytes(std::string_view{"kept"}), qos(1, true)));
  sim.run_until([&] { return r.door_reports == 3; }, sim.now() + 120s);
  return keys;
}

TEST(SimChannelKeys, ANodeWithoutTheKeyNeitherDeliversNorAnswers) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    DoorRun r(seed);
    auto keys = run_door_scenario(r);
    Simulator& sim = r.sim;
    EXPECT_EQ(r.count(B, "lobby/light"), 1u);
    EXPECT_EQ(r.count(C, "lobby/light"), 1u);
    EXPECT_EQ(r.count(B, "door/front"), 4u);
    EXPECT_EQ(r.count(C, "door/front"), 0u);
    EXPECT_EQ(r.door_reports, 3);
    EXPECT_EQ(r.door_acked_by_b, 3);
    EXPECT_EQ(r.door_acked_by_c, 0);
    EXPECT_EQ(r.c_answers, 0);
    EXPECT_GT(sim.engine(C).stats().dropped_by(Errc::no_channel_key), 0u);
    EXPECT_EQ(sim.engine(B).stats().dropped_by(Errc::no_channel_key), 0u);
    EXPECT_EQ(sim.engine(B).stats().dropped_by(Errc::bad_mac), 0u);
    // C's SUBSCRIBE door/front, sealed with the group keys, is refused by the key holders.
    EXPECT_GT(sim.engine(A).stats().dropped_by(Errc::wrong_channel_key), 0u);

    // A late subscriber with the key gets the retained message; one without it does not.
    sim.add_node(config());
    keys.push_back(r.door_keys());
    ASSERT_TRUE(sim.add_channel_key(D, "door/#", *keys.back()));
    ASSERT_TRUE(sim.subscribe(D, "door/#"));
    sim.run_until(sim.now() + 5s);
    EXPECT_EQ(r.count(D, "door/front"), 1u);
    EXPECT_EQ(r.count(C, "door/front"), 0u);
    if (::testing::Test::HasFailure()) return;
  }
}

// A group member without the channel key cannot make B deliver anything on door/front.
TEST(SimChannelKeys, ANodeWithoutTheKeyCannotForge) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    DoorRun r(seed);
    auto keys = run_door_scenario(r);
    Simulator& sim = r.sim;
    ASSERT_FALSE(r.captured_keyed_publish.empty());
    // C stops re-announcing its (refused) door/front subscription, so that the drops below
    // are the forgeries'.
    ASSERT_TRUE(sim.unsubscribe(C, "door/front"));
    sim.run_until(sim.now() + 3s);
    const std::size_t before = r.count(B, "door/front");
    const std::uint64_t wrong0 = sim.engine(B).stats().dropped_by(Errc::wrong_channel_key);

    // 1. C publishes on door/front the ordinary way (its group keys).
    EXPECT_TRUE(sim.publish(C, "door/front", as_bytes(std::string_view{"forged-0"}), qos(0)));
    sim.run_until(sim.now() + 2s);
    EXPECT_EQ(r.count(B, "door/front"), before);
    EXPECT_GT(sim.engine(B).stats().dropped_by(Errc::wrong_channel_key), wrong0);

    // 2. C crafts datagrams around the channel id it captured, sealed with its group keys,
    // with and without the channel-key mark.
    const auto captured = wire::peek_header(r.captured_keyed_publish);
    ASSERT_TRUE(captured);
    auto group = std::move(make_crypto(sim.options().encryption_key, sim.options().hmac_key)).value();
    SeededRng rng(seed + 99);
    for (const bool marked : {false, true}) {
      wire::Packet p;
      p.type = wire::PacketType::publish;
      p.flags = static_cast<std::uint8_t>(wire::publish_flags(0, false, 0) | (marked ? 0x08 : 0));
      p.packet_id = 1;
      p.session_id = wire::tag_session(rng.random_u32(), 0);
      p.ttl = 60;
      rng.random_bytes(p.iv);
      p.timestamp = static_cast<std::uint32_t>(
          std::chrono::duration_cast<std::chrono::seconds>(sim.wall_now(B).time_since_epoch()).count());
      p.channel_id = captured->channel_id;
      p.body.message_id = rng.random_u32();
      p.body.channel = "door/front";
      const std::string msg = marked ? "forged-marked" : "forged-unmarked";
      p.body.message = as_bytes(msg);
      std::array<std::uint8_t, wire::kMaxDatagram> buf{};
      const auto n = wire::encode(p, *group, buf);
      ASSERT_TRUE(n);
      const EngineStats st0 = sim.engine(B).stats();
      sim.inject(B, sim.endpoint(C), Bytes{buf.data(), *n});
      sim.run_until(sim.now() + 1s);
      const EngineStats st1 = sim.engine(B).stats();
      // Unmarked: the group MAC verifies, but door/front is sealed with the door key at B
      // (wrong_channel_key). Marked: the door key's MAC does not verify (no_channel_key).
      const Errc expected = marked ? Errc::no_channel_key : Errc::wrong_channel_key;
      EXPECT_EQ(st1.dropped_by(expected) - st0.dropped_by(expected), 1u) << (marked ? "marked" : "unmarked");
    }
    EXPECT_EQ(r.count(B, "door/front"), before);
    EXPECT_FALSE(r.has(B, "forged-0") || r.has(B, "forged-marked") || r.has(B, "forged-unmarked"));
    // Replaying A's captured publish from C's address is a replay, not a new message.
    sim.inject(B, sim.endpoint(C), r.captured_keyed_publish);
    sim.run_until(sim.now() + 1s);
    EXPECT_EQ(r.count(B, "door/front"), before);
    if (::testing::Test::HasFailure()) return;
  }
}

// No channel id of door traffic is the tag of any candidate name under anything C holds.
TEST(SimChannelKeys, ANodeWithoutTheKeyCannotNameTheChannel) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    DoorRun r(seed);
    auto keys = run_door_scenario(r);
    ASSERT_FALSE(r.keyed_ids.empty());
    const Key& enc = r.sim.options().encryption_key;
    const Key& mac = r.sim.options().hmac_key;
    WireKeys derived;  // what C derives from its raw keys (app signature, channel tag)
    ASSERT_TRUE(raw_wire_keys(backend_hkdf(), enc, mac, WireVersion::v2, derived));
    auto group = std::move(make_crypto(enc, mac)).value();
    const std::vector<std::string> dictionary = {
        "door/front", "door/back", "door", "door/#", "door/+", "#", "front", "door/front/", "Door/Front"};
    std::size_t tried = 0;
    for (const std::string& name : dictionary) {
      std::vector<wire::ChannelId> candidates;
      candidates.push_back(wire::channel_id(*group, name));  // SHA-256(name)[0:16]
      for (const Key* k : std::initializer_list<const Key*>{&enc, &mac, &derived.channel_tag, &derived.app_signature}) {
        Digest d{};
        ASSERT_TRUE(backend_hmac_sha256(*k, as_bytes(name), d));
        wire::ChannelId id{};
        std::copy_n(d.begin(), id.size(), id.begin());
        candidates.push_back(id);
      }
      for (const auto& id : candidates) {
        ++tried;
        EXPECT_EQ(r.keyed_ids.count(id), 0u) << "captured id named as '" << name << "'";
      }
    }
    EXPECT_EQ(tried, dictionary.size() * 5);
    // The control: with the door key, the name is found.
    EXPECT_EQ(r.keyed_ids.count(wire::channel_id(*keys[0], "door/front")), 1u);
    wipe_secret(derived.bytes());
    if (::testing::Test::HasFailure()) return;
  }
}

// Given the key at run time (no restart), C receives the next publishes, and answers them.
TEST(SimChannelKeys, AddingTheKeyAtRunTimeLetsTheNextPublishesIn) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    DoorRun r(seed);
    auto keys = run_door_scenario(r);
    Simulator& sim = r.sim;
    ASSERT_EQ(r.count(C, "door/front"), 0u);
    keys.push_back(r.door_keys());
    ASSERT_TRUE(sim.add_channel_key(C, "door/#", *keys.back()));
    EXPECT_EQ(sim.engine(C).channel_key_count(), 1u);
    sim.run_until(sim.now() + 5s);  // C's door/front subscription is re-announced under the key
    // ... with want-retained: the retained door message arrives at once.
    EXPECT_EQ(r.count(C, "door/front"), 1u);
    EXPECT_TRUE(r.has(C, "kept"));
    const int reports = r.door_reports;
    const int acked_by_c = r.door_acked_by_c;
    EXPECT_TRUE(sim.publish(A, "door/front", as_bytes(std::string_view{"after"}), qos(1)));
    EXPECT_TRUE(sim.publish(A, "door/front", as_bytes(std::string_view{"after-2"}), qos(2)));
    sim.run_until([&] { return r.door_reports == reports + 2; }, sim.now() + 60s);
    EXPECT_EQ(r.count(C, "door/front"), 3u);
    EXPECT_TRUE(r.has(C, "after"));
    EXPECT_TRUE(r.has(C, "after-2"));
    EXPECT_EQ(r.door_acked_by_c - acked_by_c, 2);
    EXPECT_EQ(r.count(B, "door/front"), 6u);

    // Removing it again: the following publish is C's no longer.
    ASSERT_TRUE(sim.engine(C).remove_channel_key("door/#", sim.now()));
    EXPECT_FALSE(sim.engine(C).holds_channel_key(*keys.back()));
    EXPECT_TRUE(sim.publish(A, "door/front", as_bytes(std::string_view{"gone"}), qos(0)));
    sim.run_until(sim.now() + 2s);
    EXPECT_EQ(r.count(C, "door/front"), 3u);
    EXPECT_FALSE(r.has(C, "gone"));
    EXPECT_TRUE(r.has(B, "gone"));
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(SimChannelKeys, RefusedWhereTheyCannotWork) {
  DoorRun r(1);
  Simulator& sim = r.sim;
  EngineConfig v1 = config();
  v1.wire = WireVersion::v1;
  sim.add_node(config());
  sim.add_node(v1);
  auto k = r.door_keys();
  EXPECT_EQ(sim.engine(1).add_channel_key("door/#", *k, sim.now()).error().code(),
            Errc::invalid_argument);
  EXPECT_EQ(sim.engine(0).add_channel_key("door/#/x", *k, sim.now()).error().code(),
            Errc::invalid_argument);
  EXPECT_EQ(sim.engine(0).add_channel_key("", *k, sim.now()).error().code(), Errc::invalid_argument);
  std::vector<std::unique_ptr<CryptoRng>> held;
  for (std::size_t i = 0; i < kMaxChannelKeys; ++i) {
    held.push_back(r.door_keys());
    std::string pattern = "k";  // appended: "k" + to_string(i) trips g++ 12's -Wrestrict at -O3
    pattern += std::to_string(i);
    pattern += "/#";
    EXPECT_TRUE(sim.engine(0).add_channel_key(pattern, *held.back(), sim.now()));
  }
  EXPECT_EQ(sim.engine(0).add_channel_key("more/#", *k, sim.now()).error().code(),
            Errc::too_many_channels);
  // The same pattern again replaces its set.
  EXPECT_TRUE(sim.engine(0).add_channel_key("k0/#", *k, sim.now()));
  EXPECT_TRUE(sim.engine(0).holds_channel_key(*k));
  EXPECT_FALSE(sim.engine(0).holds_channel_key(*held[0]));
  EXPECT_EQ(sim.engine(0).remove_channel_key("none", sim.now()).error().code(), Errc::not_subscribed);
}

}  // namespace
}  // namespace nomq::sim
