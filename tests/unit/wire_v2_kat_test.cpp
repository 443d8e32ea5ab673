// Wire v2 known-answer vectors (tests/vectors/v2-kat.json, made by gen_v2_kat): every packet
// re-encoded byte for byte from its inputs and decoded back to them. check_v2_kat.py checks the
// same file independently of this codec.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "nomq/wire.hpp"
#include "unit/vector_file_support.hpp"
#include "unit/wire_test_support.hpp"

namespace nomq {
namespace {

using nlohmann::json;
using test::from_hex;
using test::to_hex;

const json& kat() { return test::vector_file("v2-kat.json"); }

Crypto& kat_crypto() {
  static const auto c =
      test::make_crypto(test::key_from_hex(kat()["keys"]["encryption_key"].get<std::string>()),
                        test::key_from_hex(kat()["keys"]["hmac_key"].get<std::string>()));
  return *c;
}

TEST(WireV2Kat, CoversEveryTypeQosRetainAndPriority) {
  ASSERT_FALSE(kat().is_discarded()) << "cannot read v2-kat.json";
  std::set<int> types, qos, priorities;
  bool retain = false;
  bool big = false;
  for (const auto& v : kat()["vectors"]) {
    const auto& in = v["inputs"];
    types.insert(in["packet_type"].get<int>());
    if (in["packet_type"] == 1) {
      qos.insert(in["qos"].get<int>());
      priorities.insert(in["priority"].get<int>());
      retain = retain || in["retain"].get<bool>();
      big = big || in["message_hex"].get<std::string>().size() == 2048;
    }
  }
  EXPECT_EQ(types.size(), 8u);
  EXPECT_EQ(qos, (std::set<int>{0, 1, 2}));
  EXPECT_GE(priorities.size(), 4u);
  EXPECT_TRUE(retain);
  EXPECT_TRUE(big) << "no 1024-byte message";
}

class V2Kat : public ::testing::TestWithParam<std::string> {};

wire::Packet packet_from(const json& in, std::vector<std::uint8_t>& msg, std::string& channel) {
  wire::Packet p = test::header_from_inputs(in, WireVersion::v2);
  p.channel_id = test::array_from_hex<wire::ChannelId>(in["channel_id"].get<std::string>());
  channel = in["channel"].get<std::string>();
  if (p.type == wire::PacketType::publish || p.type == wire::PacketType::subscribe ||
      p.type == wire::PacketType::unsubscribe) {
    p.body.channel = channel;
  }
  if (in.contains("message_hex")) {
    msg = from_hex(in["message_hex"].get<std::string>());
    p.body.message = msg;
    p.body.message_id = in["message_id"].get<std::uint32_t>();
  }
  if (in.contains("acked_id")) p.body.acked_id = in["acked_id"].get<std::uint32_t>();
  return p;
}

TEST_P(V2Kat, ReEncodesByteForByte) {
  const json& v = test::find_vector(kat(), "vectors", GetParam());
  ASSERT_FALSE(v.is_null());
  std::vector<std::uint8_t> msg;
  std::string channel;
  const wire::Packet p = packet_from(v["inputs"], msg, channel);
  if (!channel.empty()) {
    EXPECT_EQ(to_hex(wire::channel_id(kat_crypto(), channel)),
              v["inputs"]["channel_id"].get<std::string>());
  }
  std::vector<std::uint8_t> out(wire::kMaxDatagram);
  const auto n = wire::encode(p, kat_crypto(), out);
  ASSERT_TRUE(n.ok()) << n.error();
  EXPECT_EQ(*n, v["length"].get<std::size_t>());
  EXPECT_EQ(to_hex(Bytes{out.data(), *n}), v["packet"].get<std::string>());
}

TEST_P(V2Kat, DecodesToItsInputs) {
  const json& v = test::find_vector(kat(), "vectors", GetParam());
  ASSERT_FALSE(v.is_null());
  const json& in = v["inputs"];
  const auto d = from_hex(v["packet"].get<std::string>());
  std::vector<std::uint8_t> scratch(d.size());
  const std::uint32_t ts = in["timestamp"].get<std::uint32_t>();
  // The epoch-2000 vector is fresh for a receiver configured with that epoch.
  const std::uint32_t epoch = ts < 1000000000u ? kEpoch2000Offset : 0;
  const auto r = wire::decode(d, kat_crypto(), test::options_for(WireVersion::v2, ts, epoch),
                              scratch);
  ASSERT_TRUE(r.ok()) << r.error();
  test::expect_header_matches_inputs(*r, in);
  EXPECT_EQ(r->qos(), in["qos"].get<int>());
  EXPECT_EQ(r->retain(), in["retain"].get<bool>());
  EXPECT_EQ(r->priority(), in["priority"].get<int>());
  EXPECT_EQ(to_hex(r->channel_id), in["channel_id"].get<std::string>());
  EXPECT_EQ(to_hex(r->plaintext), v["plaintext"].get<std::string>());
  if (in.contains("message_hex")) {
    EXPECT_EQ(to_hex(r->body.message), in["message_hex"].get<std::string>());
    EXPECT_EQ(r->body.message_id, in["message_id"].get<std::uint32_t>());
  }
  if (r->type == wire::PacketType::publish || r->type == wire::PacketType::subscribe ||
      r->type == wire::PacketType::unsubscribe) {
    EXPECT_EQ(r->body.channel, in["channel"].get<std::string>());
  }
  if (in.contains("acked_id")) {
    EXPECT_EQ(r->body.acked_id, in["acked_id"].get<std::uint32_t>());
  }
}

TEST_P(V2Kat, AV1NodeRejectsItAsBadVersion) {
  const json& v = test::find_vector(kat(), "vectors", GetParam());
  const auto d = from_hex(v["packet"].get<std::string>());
  std::vector<std::uint8_t> scratch(d.size());
  EXPECT_EQ(wire::decode(d, kat_crypto(), test::options_for(WireVersion::v1), scratch).error(),
            Errc::bad_version);
}

INSTANTIATE_TEST_SUITE_P(Kat, V2Kat, ::testing::ValuesIn(test::vector_names(kat(), "vectors")),
                         test::vector_param_name);

}  // namespace
}  // namespace nomq
