// A v1 engine against datagrams recorded from the original MicroPython implementation
// (tests/vectors/legacy-v1.json): the engine's verdict on every negative and quirk vector, the
// replies it sends to an original publisher (ACK, PUBREC, PUBCOMP) byte-checked by decoding.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nomq/engine.hpp"
#include "unit/vector_file_support.hpp"
#include "unit/wire_test_support.hpp"
#include "sim/same_clock.hpp"

namespace nomq {
namespace {

using nlohmann::json;
using sim::wall_at;

const json& vectors() { return test::vector_file("legacy-v1.json"); }

const json& find_vector(const char* section, const std::string& name) {
  return test::find_vector(vectors(), section, name);
}

std::optional<Errc> errc_named(const std::string& name) {
  for (std::size_t i = 0; i < kErrcCount; ++i) {
    const auto e = static_cast<Errc>(i);
    if (to_string(e) == name) return e;
  }
  return std::nullopt;
}

const Endpoint kDevice = Endpoint::v4(127, 0, 0, 1, 40001);

// A v1 engine with the sample keys, its clock at `clock`, subscribed as the vector says.
struct V1Receiver {
  V1Receiver(double clock, const json& subscriptions)
      : crypto(test::make_crypto(test::kSampleEncKey, test::kSampleHmacKey)),
        now(test::clock_at(clock).time_since_epoch()),
        engine(Engine::create(config(), *crypto, *crypto, now).value()) {
    for (const auto& s : subscriptions) {
      EXPECT_TRUE(engine.subscribe(s.get<std::string>(), 0, now));
    }
  }
  static EngineConfig config() {
    EngineConfig c;
    c.wire = WireVersion::v1;
    return c;
  }
  void feed(const std::string& hex) {
    const auto d = test::from_hex(hex);
    engine.handle_datagram(kDevice, d, now, wall_at(now));
  }
  std::vector<std::string> delivered() {
    std::vector<std::string> out;
    while (auto ev = engine.poll_event()) {
      if (auto* m = std::get_if<MessageEvent>(&*ev)) {
        out.emplace_back(as_string_view(m->message));
      }
    }
    return out;
  }
  // The replies the engine queued, decoded.
  std::vector<wire::Packet> replies(std::vector<Transmit>* tx_out = nullptr) {
    std::vector<wire::Packet> out;
    while (auto tx = engine.poll_transmit(now, wall_at(now), buf)) {
      if (tx_out) tx_out->push_back(*tx);
      wire::DecodeOptions o;
      o.version = WireVersion::v1;
      o.wall = wall_at(now);
      auto p = wire::decode(Bytes{buf.data(), tx->size}, *crypto, o, scratch);
      EXPECT_TRUE(p) << p.error();
      if (p) out.push_back(*p);
    }
    return out;
  }
  std::unique_ptr<CryptoRng> crypto;
  Instant now;
  Engine engine;
  std::array<std::uint8_t, wire::kMaxDatagram> buf{};
  std::array<std::uint8_t, wire::kMaxDatagram> scratch{};
};

TEST(EngineV1Vectors, VectorsLoaded) {
  ASSERT_FALSE(vectors().is_discarded());
  ASSERT_TRUE(vectors().contains("negative_vectors"));
}

TEST(EngineV1Vectors, NegativeVectorsAreCountedUnderTheirReason) {
  for (const auto& v : vectors()["negative_vectors"]) {
    const auto name = v["name"].get<std::string>();
    const auto reason = v["reason"].get<std::string>();
    SCOPED_TRACE(name);
    V1Receiver r(v["receiver_clock"].get<double>(), v["receiver_subscriptions"]);
    if (name == "replayed_publish") {
      for (const auto& d : v["datagrams_in_order"]) r.feed(d.get<std::string>());
      EXPECT_EQ(r.delivered(), std::vector<std::string>{"21.5 C"});
      EXPECT_EQ(r.engine.stats().dropped_by(Errc::replayed), 1u);
      continue;
    }
    r.feed(v["packet"].get<std::string>());
    if (name == "device_layout_publish") {
      // Accepted by design: we read the original sender's own layout intact.
      EXPECT_EQ(r.delivered().size(), 1u);
      EXPECT_EQ(r.engine.stats().dropped_total, 0u);
      continue;
    }
    auto e = errc_named(reason);
    ASSERT_TRUE(e) << reason;
    // A datagram of the other NoMQ version gets the more specific engine verdict.
    if (name == "bad_version" && test::from_hex(v["packet"].get<std::string>())[2] == 2) {
      e = Errc::wrong_wire_version;
    }
    EXPECT_EQ(r.engine.stats().dropped_by(*e), 1u) << reason;
    EXPECT_EQ(r.engine.stats().dropped_total, 1u);
    EXPECT_TRUE(r.delivered().empty());
    EXPECT_TRUE(r.replies().empty());
  }
}

TEST(EngineV1Vectors, QuirkVectors) {
  for (const auto& v : vectors()["receiver_quirk_vectors"]) {
    const auto name = v["name"].get<std::string>();
    SCOPED_TRACE(name);
    V1Receiver r(v["receiver_clock"].get<double>(), v["receiver_subscriptions"]);
    r.feed(v["packet"].get<std::string>());
    const auto expect = v["expect"].get<std::string>();
    if (expect == "accepted") {
      std::vector<std::string> want;
      for (const auto& d : v["delivered"]) want.push_back(d["message"].get<std::string>());
      EXPECT_EQ(r.delivered(), want);
      EXPECT_EQ(r.engine.stats().dropped_total, 0u);
    } else if (name == "heartbeat_dropped") {
      EXPECT_EQ(r.engine.stats().dropped_by(Errc::unknown_channel), 1u);
      EXPECT_TRUE(r.delivered().empty());
    } else if (name == "ack_not_for_us_ignored") {
      // No effect: nothing delivered, nothing sent; counted as a packet without state.
      EXPECT_TRUE(r.delivered().empty());
      EXPECT_TRUE(r.replies().empty());
      EXPECT_EQ(r.engine.stats().dropped_by(Errc::unexpected_packet), 1u);
    } else {
      ADD_FAILURE() << "unclassified quirk vector";
    }
  }
}

TEST(EngineV1Vectors, AcknowledgesAnOriginalQos1PublishToItsSource) {
  const json& v = find_vector("packet_vectors", "publish_gap20_q1_p5");
  ASSERT_FALSE(v.is_null());
  V1Receiver r(v["head_receiver"]["receiver_clock"].get<double>(), json::array({"sensors/temp"}));
  r.feed(v["packet"].get<std::string>());
  EXPECT_EQ(r.delivered(), std::vector<std::string>{"temperature=21.5"});
  std::vector<Transmit> tx;
  const auto replies = r.replies(&tx);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(tx[0].to_group);
  EXPECT_EQ(tx[0].to, kDevice);
  EXPECT_EQ(replies[0].type, wire::PacketType::ack);
  EXPECT_EQ(replies[0].flags, 1);
  EXPECT_EQ(replies[0].packet_id, 2856741071u);
  EXPECT_EQ(replies[0].body.acked_id, 2856741071u);
  EXPECT_EQ(replies[0].session_id, r.engine.session_id());
  // The same datagram again (the original would call it a replay): acknowledged, not delivered.
  r.feed(v["packet"].get<std::string>());
  EXPECT_TRUE(r.delivered().empty());
  EXPECT_EQ(r.replies().size(), 1u);
  EXPECT_EQ(r.engine.stats().dropped_by(Errc::duplicate), 1u);
}

TEST(EngineV1Vectors, AnswersTheOriginalQos2Exchange) {
  const json& seq = find_vector("sequences", "qos2_exchange");
  ASSERT_FALSE(seq.is_null());
  V1Receiver r(1700000002.0, json::array({"sensors/temp"}));
  r.feed(seq["steps"][0]["datagram"].get<std::string>());
  EXPECT_EQ(r.delivered(), std::vector<std::string>{"valve=closed"});
  auto replies = r.replies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, wire::PacketType::pubrec);
  EXPECT_EQ(replies[0].body.acked_id, 1197795374u);
  r.feed(seq["steps"][2]["datagram"].get<std::string>());  // the original's PUBREL
  replies = r.replies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, wire::PacketType::pubcomp);
  EXPECT_EQ(replies[0].body.acked_id, 1197795374u);
  EXPECT_EQ(replies[0].flags, 0);
}

}  // namespace
}  // namespace nomq
