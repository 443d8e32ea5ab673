// The hostile-input catalogue (docs/security.md): every kind of bad datagram a node on a shared
// network can be sent, fed to a real Engine (v1 or v2) with the group keys. For each input:
// nothing delivered, no crash, exactly one drop counted under the expected reason in
// stats().dropped. Every class also runs an honest control datagram through the same kind of
// engine first, so a check that could never fail shows up as a failing control.
// The suite prints one summary line: tried, rejected, delivered (must be 0), reasons.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "nomq/crypto_backend.hpp"
#include "nomq/engine.hpp"
#include "nomq/wire.hpp"
#include "unit/vector_file_support.hpp"
#include "unit/wire_test_support.hpp"
#include "sim/same_clock.hpp"

namespace nomq::test {
namespace {

using wire::PacketType;
using sim::wall_at;

// Counts over the whole suite, printed by the environment at the end.
struct Tally {
  std::uint64_t tried = 0;
  std::uint64_t rejected = 0;
  std::uint64_t delivered = 0;
  std::map<std::string, std::uint64_t> by_reason;
};
Tally& tally() {
  static Tally t;
  return t;
}

class SummaryPrinter : public ::testing::Environment {
 public:
  void TearDown() override {
    const Tally& t = tally();
    if (t.tried == 0) return;  // filtered out
    std::string reasons;
    for (const auto& [r, n] : t.by_reason) reasons += " " + r + "=" + std::to_string(n);
    std::printf("hostile-input summary: tried=%llu rejected=%llu delivered=%llu; by reason:%s\n",
                static_cast<unsigned long long>(t.tried),
                static_cast<unsigned long long>(t.rejected),
                static_cast<unsigned long long>(t.delivered), reasons.c_str());
  }
};
const auto* const kSummary = ::testing::AddGlobalTestEnvironment(new SummaryPrinter);

Instant at_seconds(std::int64_t s) { return Instant{std::chrono::seconds(s)}; }

const Endpoint kPeer = Endpoint::v4(127, 0, 0, 2, 40000);

// What feeding one datagram did.
struct Verdict {
  std::uint64_t drops = 0;                  // dropped_total delta
  std::optional<Errc> reason;               // the one counter that moved, if exactly one did
  int messages = 0;                         // MessageEvents polled right after
};

// One engine with the group keys, subscribed to kChannel, clock at kT0 (+1 s for v1 vectors).
class Receiver {
 public:
  explicit Receiver(WireVersion v, const Key& enc = kSampleEncKey, const Key& mac = kSampleHmacKey,
                    Instant now = at_seconds(kT0))
      : crypto_(make_crypto(enc, mac)), now_(now - kUptime) {
    EngineConfig cfg;
    cfg.wire = v;
    engine_ = std::make_unique<Engine>(Engine::create(cfg, *crypto_, *crypto_, now_).value());
    EXPECT_TRUE(engine_->subscribe(kChannel, 0, now_).ok());
    drain();
    now_ = now;
  }
  // The receiver has been running this long when the datagrams arrive: longer than the
  // timestamp window, so the freshness check after a start (docs/engine.md §18) does not
  // withhold the crafted datagrams of sessions it never heard before.
  static constexpr Duration kUptime = std::chrono::seconds(60);
  Engine& engine() { return *engine_; }
  void set_now(Instant t) { now_ = t; }
  Instant now() const { return now_; }

  Verdict feed(Bytes d) {
    const EngineStats before = engine_->stats();
    engine_->handle_datagram(kPeer, d, now_, wall_at(now_));
    const EngineStats& after = engine_->stats();
    Verdict v;
    v.drops = after.dropped_total - before.dropped_total;
    int moved = 0;
    for (std::size_t e = 0; e < kErrcCount; ++e) {
      if (after.dropped[e] != before.dropped[e]) {
        ++moved;
        v.reason = static_cast<Errc>(e);
      }
    }
    if (moved != 1) v.reason.reset();
    v.messages = drain();
    return v;
  }

  int drain() {
    std::array<std::uint8_t, wire::kMaxDatagram> buf{};
    while (engine_->poll_transmit(now_, wall_at(now_), buf)) {
    }
    int messages = 0;
    while (auto ev = engine_->poll_event()) {
      if (std::holds_alternative<MessageEvent>(*ev)) ++messages;
    }
    return messages;
  }

 private:
  std::unique_ptr<CryptoRng> crypto_;
  Instant now_;
  std::unique_ptr<Engine> engine_;
};

// Feeds one hostile datagram and checks it is rejected under `expected` (or any reason in
// `allowed` when the exact reason depends on the mutated bits), then tallies it.
void expect_rejected(Receiver& r, Bytes d, std::initializer_list<Errc> allowed,
                     const std::string& what) {
  const Verdict v = r.feed(d);
  ++tally().tried;
  tally().delivered += static_cast<std::uint64_t>(v.messages);
  EXPECT_EQ(v.messages, 0) << what << ": delivered";
  EXPECT_EQ(v.drops, 1u) << what << ": not counted as exactly one drop";
  ASSERT_TRUE(v.reason.has_value()) << what << ": no single reason counted";
  bool ok = false;
  for (const Errc e : allowed) ok = ok || *v.reason == e;
  EXPECT_TRUE(ok) << what << ": counted as " << to_string(*v.reason);
  if (v.drops == 1 && v.messages == 0) ++tally().rejected;
  ++tally().by_reason[std::string{to_string(*v.reason)}];
}

std::vector<std::uint8_t> sample(Crypto& c, WireVersion v, PacketType t) {
  return encode_or_die(sample_packet(c, v, t), c);
}

// --- every negative vector of the original (legacy-v1.json), through a v1 engine (the file
// through test::vector_file: parsed on the host, embedded on the target)

Errc reason_from_tag(const std::string& tag) {
  if (tag == "replay_nonce") return Errc::replayed;
  for (std::size_t e = 0; e < kErrcCount; ++e) {
    if (to_string(static_cast<Errc>(e)) == tag) return static_cast<Errc>(e);
  }
  ADD_FAILURE() << "unknown reason tag " << tag;
  return Errc::ok;
}

TEST(HostileInput, EveryNegativeVectorOfTheOriginal) {
  const nlohmann::json& vectors = vector_file("legacy-v1.json");
  ASSERT_FALSE(vectors.is_discarded()) << "tests/vectors/legacy-v1.json unreadable";
  int run = 0;
  for (const auto& v : vectors["negative_vectors"]) {
    const auto name = v["name"].get<std::string>();
    const auto clock = v["receiver_clock"].is_string()
                           ? std::stod(v["receiver_clock"].get<std::string>())
                           : v["receiver_clock"].get<double>();
    Receiver r{WireVersion::v1, kSampleEncKey, kSampleHmacKey, Instant{clock_at(clock).time_since_epoch()}};
    for (const auto& sub : v["receiver_subscriptions"]) {
      if (sub.get<std::string>() != kChannel) {
        ASSERT_TRUE(r.engine().subscribe(sub.get<std::string>(), 0, r.now()).ok());
      }
    }
    const auto packet = from_hex(v["packet"].get<std::string>());
    if (name == "device_layout_publish") {
      // Accepted by design (DESIGN.md: both v1 PUBLISH layouts are read; the HEAD receiver of
      // the original rejects its own sender's layout). Not hostile: delivered intact.
      EXPECT_EQ(r.feed(packet).messages, 1) << name;
      continue;
    }
    if (v.contains("datagrams_in_order")) {
      const auto& order = v["datagrams_in_order"];
      for (std::size_t i = 0; i + 1 < order.size(); ++i) {
        EXPECT_EQ(r.feed(from_hex(order[i].get<std::string>())).messages, 1) << name << ": control";
      }
      expect_rejected(r, from_hex(order.back().get<std::string>()),
                      {reason_from_tag(v["reason"].get<std::string>())}, name);
    } else if (v["reason"] == "bad_version") {
      // The original's "Unsupported protocol version"; a version byte of 2 is a v2 datagram,
      // which a v1 node counts as wrong_wire_version (configured for the other version).
      expect_rejected(r, packet, {Errc::bad_version, Errc::wrong_wire_version}, name);
    } else {
      expect_rejected(r, packet, {reason_from_tag(v["reason"].get<std::string>())}, name);
    }
    ++run;
  }
  EXPECT_EQ(run, 24);  // 25 vectors, one accepted by design
}

// --- bit flips and truncations of valid packets of every type, both versions

class EveryType : public ::testing::TestWithParam<std::tuple<WireVersion, PacketType>> {};

std::string label(WireVersion v, PacketType t) {
  return std::string{to_string(v)} + " " + std::string{wire::to_string(t)};
}

// The control: the unmodified packet gets past every stateless check of a fresh engine.
void control_accepted(WireVersion v, PacketType t, Bytes packet) {
  Receiver r{v};
  const Verdict verdict = r.feed(packet);
  bool passed = verdict.drops == 0;
  // Without receiver state some valid packets are still dropped for a stateful reason.
  if (verdict.reason == Errc::unexpected_packet || verdict.reason == Errc::unknown_channel) {
    passed = true;
  }
  EXPECT_TRUE(passed) << label(v, t) << ": the unmodified packet was dropped as "
                      << (verdict.reason ? to_string(*verdict.reason) : "?");
  if (t == PacketType::publish) {
    EXPECT_EQ(verdict.messages, 1) << label(v, t) << ": control publish not delivered";
  }
}

TEST_P(EveryType, BitFlipAtEveryBitIsRejected) {
  const auto [v, t] = GetParam();
  auto crypto = make_crypto(kSampleEncKey, kSampleHmacKey);
  const auto packet = sample(*crypto, v, t);
  ASSERT_FALSE(packet.empty());
  control_accepted(v, t, packet);
  Receiver r{v};
  for (std::size_t pos = 0; pos < packet.size(); ++pos) {
    for (int bit = 0; bit < 8; ++bit) {
      auto d = packet;
      d[pos] = static_cast<std::uint8_t>(d[pos] ^ (1u << bit));
      const std::string what = label(v, t) + " byte " + std::to_string(pos) + " bit " +
                               std::to_string(bit);
      if (pos < 2) {
        expect_rejected(r, d, {Errc::bad_magic}, what);
      } else if (pos == 2) {
        expect_rejected(r, d, {Errc::bad_version}, what);
      } else if (pos == 3 && v == WireVersion::v2) {
        expect_rejected(r, d, {Errc::bad_type, Errc::bad_mac}, what);
      } else if (pos == 51 || pos == 52) {
        expect_rejected(r, d, {Errc::bad_length, Errc::bad_mac}, what);
      } else if (pos == 4 && v == WireVersion::v2 &&
                 (1u << bit) == wire::channel_key_flag(static_cast<wire::PacketType>(t))) {
        // The channel-key mark (docs/protocol.md §14.4): now opened with the channel keys,
        // and this receiver holds none.
        expect_rejected(r, d, {Errc::no_channel_key}, what);
      } else {
        expect_rejected(r, d, {Errc::bad_mac}, what);
      }
    }
  }
}

TEST_P(EveryType, TruncationAtEveryLengthIsRejected) {
  const auto [v, t] = GetParam();
  auto crypto = make_crypto(kSampleEncKey, kSampleHmacKey);
  const auto packet = sample(*crypto, v, t);
  Receiver r{v};
  const std::size_t min = v == WireVersion::v2 ? wire::kV2MinDatagram : wire::kV1MinDatagram;
  for (std::size_t len = 0; len < packet.size(); ++len) {
    const Bytes d{packet.data(), len};
    const std::string what = label(v, t) + " truncated to " + std::to_string(len);
    if (len < min) {
      expect_rejected(r, d, {Errc::too_short}, what);
    } else {
      expect_rejected(r, d, {Errc::bad_length}, what);
    }
  }
}

TEST_P(EveryType, WrongKeysAreRejected) {
  const auto [v, t] = GetParam();
  Receiver r{v};
  Key other_enc = kSampleEncKey;
  Key other_mac = kSampleHmacKey;
  other_mac[0] ^= 1;
  auto wrong_mac_key = make_crypto(kSampleEncKey, other_mac);
  expect_rejected(r, sample(*wrong_mac_key, v, t), {Errc::bad_mac}, label(v, t) + " hmac key");
  other_enc[31] ^= 0x80;
  other_mac = kSampleHmacKey;
  other_mac[31] ^= 0x80;
  auto both_wrong = make_crypto(other_enc, other_mac);
  expect_rejected(r, sample(*both_wrong, v, t), {Errc::bad_mac}, label(v, t) + " both keys");
}

TEST_P(EveryType, WrongVersionIsRejected) {
  const auto [v, t] = GetParam();
  auto crypto = make_crypto(kSampleEncKey, kSampleHmacKey);
  const WireVersion other = v == WireVersion::v1 ? WireVersion::v2 : WireVersion::v1;
  Receiver r{v};
  // The other version, authentic with the same keys: a node speaks one version only.
  expect_rejected(r, sample(*crypto, other, t), {Errc::wrong_wire_version},
                  label(other, t) + " at a " + std::string{to_string(v)} + " node");
  for (const int version : {0, 3, 0x7f, 0xff}) {
    auto d = sample(*crypto, v, t);
    d[2] = static_cast<std::uint8_t>(version);
    expect_rejected(r, d, {Errc::bad_version}, label(v, t) + " version " + std::to_string(version));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Catalogue, EveryType,
    ::testing::Combine(::testing::Values(WireVersion::v1, WireVersion::v2),
                       ::testing::ValuesIn(kAllTypes)),
    [](const auto& param_info) {
      std::string s = label(std::get<0>(param_info.param), std::get<1>(param_info.param));
      for (auto& c : s) {
        if (c == ' ') c = '_';
      }
      return s;
    });

// --- oversized datagrams, up to the largest UDP payload over IPv4

TEST(HostileInput, OversizedDatagramsAreRejected) {
  for (const WireVersion v : {WireVersion::v1, WireVersion::v2}) {
    auto crypto = make_crypto(kSampleEncKey, kSampleHmacKey);
    const auto packet = sample(*crypto, v, PacketType::publish);
    Receiver r{v};
    for (const std::size_t size : {wire::kMaxDatagram + 1, std::size_t{4096}, std::size_t{9000},
                                   std::size_t{65507}}) {
      // A valid packet followed by zeros, and the same size of random garbage.
      std::vector<std::uint8_t> d(size, 0);
      std::copy(packet.begin(), packet.end(), d.begin());
      expect_rejected(r, d, {Errc::bad_length}, std::string("oversized ").append(std::to_string(size)));
      std::mt19937_64 rng{size};  // seeded: the same garbage every run
      for (auto& b : d) b = static_cast<std::uint8_t>(rng());
      expect_rejected(r, d, {Errc::bad_length}, std::string("oversized garbage ").append(std::to_string(size)));
    }
    // Control: the packet itself (well under the cap) is delivered.
    EXPECT_EQ(Receiver{v}.feed(packet).messages, 1);
  }
}

// --- timestamps outside the receiver's window (default 30 s), both versions

TEST(HostileInput, TimestampsOutsideTheWindowAreRejected) {
  for (const WireVersion v : {WireVersion::v1, WireVersion::v2}) {
    auto crypto = make_crypto(kSampleEncKey, kSampleHmacKey);
    Receiver r{v};
    std::uint32_t id = 100;
    auto stamped = [&](std::uint32_t ts) {
      wire::Packet p = sample_packet(*crypto, v, PacketType::publish);
      p.flags = wire::publish_flags(0, false, 0);
      p.timestamp = ts;
      p.packet_id = ++id;  // a fresh sequence number: only the timestamp is wrong
      p.body.message_id = id;
      store_be32(p.iv.data(), id);  // a distinct IV per packet, deterministic
      return encode_or_die(p, *crypto);
    };
    // Controls at the window's edges are accepted: 30 s back; ahead, 30 s in v1 and
    // timestamp_future_s (5 s) in v2, where 6 to 30 s ahead is future_timestamp (issue 13 M3).
    EXPECT_EQ(r.feed(stamped(kT0 - 30)).messages, 1);
    if (v == WireVersion::v1) {
      EXPECT_EQ(r.feed(stamped(kT0 + 30)).messages, 1);
    } else {
      EXPECT_EQ(r.feed(stamped(kT0 + 5)).messages, 1);
      for (const std::int64_t off : {6, 30}) {
        expect_rejected(r, stamped(static_cast<std::uint32_t>(kT0 + off)), {Errc::future_timestamp},
                        std::string("v2 timestamp offset ").append(std::to_string(off)));
      }
    }
    for (const std::int64_t off : {-31, 31, -3600, 3600, -86400 * 365}) {
      expect_rejected(r, stamped(static_cast<std::uint32_t>(kT0 + off)), {Errc::stale_timestamp},
                      std::string{to_string(v)} + " timestamp offset " + std::to_string(off));
    }
    for (const std::uint32_t ts : {0u, 1u, 0x7fffffffu, 0xffffffffu}) {
      expect_rejected(r, stamped(ts), {Errc::stale_timestamp},
                      std::string{to_string(v)} + " timestamp " + std::to_string(ts));
    }
  }
}

// --- replays at a v2 node: immediately, after 1000 newer packets, after the sliding window,
// after the timestamp window; and a QoS 1 retransmission (new sequence number, same message)

TEST(HostileInput, ReplaysAreRejectedInAndAfterTheWindow) {
  auto crypto = make_crypto(kSampleEncKey, kSampleHmacKey);
  Receiver r{WireVersion::v2};
  auto publish = [&](std::uint32_t seq, std::uint32_t message_id, int qos) {
    wire::Packet p = sample_packet(*crypto, WireVersion::v2, PacketType::publish);
    p.flags = wire::publish_flags(qos, false, 0);
    p.packet_id = seq;
    p.body.message_id = message_id;
    store_be32(p.iv.data(), seq);  // a distinct IV per packet, deterministic
    return encode_or_die(p, *crypto);
  };
  const auto first = publish(1, 1, 0);
  ASSERT_EQ(r.feed(first).messages, 1);  // control: delivered once
  expect_rejected(r, first, {Errc::replayed}, "replay immediately");

  for (std::uint32_t seq = 2; seq <= 1001; ++seq) {
    ASSERT_EQ(r.feed(publish(seq, seq, 0)).messages, 1) << seq;
  }
  // Sequence 1 is 1000 behind the newest: still inside the 1024-wide window, remembered.
  expect_rejected(r, first, {Errc::replayed}, "replay after 1000 newer packets");
  // A new datagram (other message id) reusing a sequence number already seen: still a replay.
  const auto p1001 = publish(1001, 9999, 0);
  expect_rejected(r, p1001, {Errc::replayed}, "same sequence number re-sealed");

  for (std::uint32_t seq = 1002; seq <= 1100; ++seq) {
    ASSERT_EQ(r.feed(publish(seq, seq, 0)).messages, 1) << seq;
  }
  expect_rejected(r, first, {Errc::replay_window_old}, "replay left of the sliding window");

  // QoS 1: the retransmission of a delivered message (new sequence number, same message id) is
  // acknowledged again but not delivered twice.
  ASSERT_EQ(r.feed(publish(1101, 5000, 1)).messages, 1);
  expect_rejected(r, publish(1102, 5000, 1), {Errc::duplicate}, "QoS 1 retransmission");

  // After the timestamp window the replay is stale before the sequence number is looked at.
  const auto recent = publish(1103, 1103, 0);
  ASSERT_EQ(r.feed(recent).messages, 1);
  r.set_now(at_seconds(kT0 + 31));
  expect_rejected(r, recent, {Errc::stale_timestamp}, "replay after the timestamp window");
  expect_rejected(r, first, {Errc::stale_timestamp}, "old replay after the timestamp window");
}

// A v1 node (the original's replay defence: timestamp window and an inner-nonce cache).
TEST(HostileInput, V1ReplaysAreRejected) {
  auto crypto = make_crypto(kSampleEncKey, kSampleHmacKey);
  Receiver r{WireVersion::v1};
  wire::Packet p = sample_packet(*crypto, WireVersion::v1, PacketType::publish);
  p.flags = wire::publish_flags(0, false, 0);
  const auto d = encode_or_die(p, *crypto);
  ASSERT_EQ(r.feed(d).messages, 1);
  expect_rejected(r, d, {Errc::replayed}, "v1 replay immediately");
  r.set_now(at_seconds(kT0 + 31));
  expect_rejected(r, d, {Errc::stale_timestamp}, "v1 replay after the timestamp window");
}

// --- random garbage: never delivered, each counted once

TEST(HostileInput, RandomGarbageIsCountedAndDropped) {
  constexpr std::uint64_t kSeed = 0x6E6F6D71;
  SCOPED_TRACE(std::string("garbage seed ").append(std::to_string(kSeed)));
  std::mt19937_64 rng{kSeed};
  for (const WireVersion v : {WireVersion::v1, WireVersion::v2}) {
    Receiver r{v};
    std::vector<std::uint8_t> d;
    for (int i = 0; i < 2000; ++i) {
      d.resize(static_cast<std::size_t>(rng() % 2049));
      for (auto& b : d) b = static_cast<std::uint8_t>(rng());
      // Half of them wear a valid magic and version so they reach the later checks.
      if (i % 2 == 0 && d.size() >= 3) {
        d[0] = 'N';
        d[1] = 'M';
        d[2] = static_cast<std::uint8_t>(v);
      }
      const Verdict verdict = r.feed(d);
      ++tally().tried;
      EXPECT_EQ(verdict.messages, 0);
      EXPECT_EQ(verdict.drops, 1u);
      if (verdict.drops == 1 && verdict.messages == 0) ++tally().rejected;
      if (verdict.reason) ++tally().by_reason[std::string{to_string(*verdict.reason)}];
    }
  }
}

}  // namespace
}  // namespace nomq::test
