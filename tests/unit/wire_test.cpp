// Version-independent codec properties: seeded random mutations of valid datagrams are never
// accepted (and never crash), and peek_version / peek_channel_id read only their header field.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "nomq/wire.hpp"
#include "unit/wire_test_support.hpp"

namespace nomq {
namespace {

TEST(Wire, RandomMutationsAreNeverAccepted) {
  const std::uint32_t seed = 20261125;
  SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
  std::mt19937 rng(seed);
  auto crypto = test::make_crypto(test::kSampleEncKey, test::kSampleHmacKey);
  std::vector<std::uint8_t> scratch(4 * wire::kMaxDatagram);
  for (const WireVersion v : {WireVersion::v1, WireVersion::v2}) {
    for (const wire::PacketType type : test::kAllTypes) {
      const auto good = test::encode_or_die(test::sample_packet(*crypto, v, type), *crypto);
      ASSERT_FALSE(good.empty());
      for (int round = 0; round < 300; ++round) {
        auto bad = good;
        // 1-4 random byte changes, sometimes a random new length as well.
        const int changes = 1 + static_cast<int>(rng() % 4);
        for (int c = 0; c < changes; ++c) {
          bad[rng() % bad.size()] = static_cast<std::uint8_t>(rng());
        }
        if (rng() % 4 == 0) bad.resize(rng() % (good.size() + 40), 0xA5);
        const auto r = wire::decode(bad, *crypto, test::options_for(v), scratch);
        if (r.ok()) {
          EXPECT_EQ(bad, good) << to_string(v) << " " << wire::to_string(type) << " round "
                               << round << ": a modified datagram was accepted";
        }
      }
    }
  }
}

TEST(Wire, PeekVersion) {
  EXPECT_EQ(wire::peek_version({}), 0);
  const std::uint8_t short_v1[] = {0x4E, 0x4D};
  EXPECT_EQ(wire::peek_version(short_v1), 0);
  const std::uint8_t v1[] = {0x4E, 0x4D, 0x01};
  EXPECT_EQ(wire::peek_version(v1), 1);
  const std::uint8_t v7[] = {0x4E, 0x4D, 0x07, 0x00};
  EXPECT_EQ(wire::peek_version(v7), 7);
  const std::uint8_t no_magic[] = {0x4E, 0x4E, 0x02, 0x00};
  EXPECT_EQ(wire::peek_version(no_magic), 0);
}

TEST(Wire, PeekChannelIdReadsTheHeaderFieldOfBothVersions) {
  auto crypto = test::make_crypto(test::kSampleEncKey, test::kSampleHmacKey);
  for (const WireVersion v : {WireVersion::v1, WireVersion::v2}) {
    const wire::Packet p = test::sample_packet(*crypto, v, wire::PacketType::publish);
    const auto d = test::encode_or_die(p, *crypto);
    const auto id = wire::peek_channel_id(d);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(*id, p.channel_id);
    // One byte short of the field: nothing to read.
    const Bytes cut{d.data(), 35 + p.channel_id.size() - 1};
    EXPECT_FALSE(wire::peek_channel_id(cut).has_value());
    EXPECT_TRUE(wire::peek_channel_id(Bytes{d.data(), 35 + p.channel_id.size()}).has_value());
  }
  EXPECT_FALSE(wire::peek_channel_id({}).has_value());
}

TEST(Wire, DecodeWithAnUnknownConfiguredVersionIsACallerError) {
  auto crypto = test::make_crypto(test::kSampleEncKey, test::kSampleHmacKey);
  const auto d = test::encode_or_die(
      test::sample_packet(*crypto, WireVersion::v2, wire::PacketType::ack), *crypto);
  wire::DecodeOptions o = test::options_for(WireVersion::v2);
  o.version = static_cast<WireVersion>(0);
  std::vector<std::uint8_t> scratch(d.size());
  EXPECT_EQ(wire::decode(d, *crypto, o, scratch).error(), Errc::invalid_argument);
}

TEST(Wire, ChannelIdIsTheFirst16BytesOfSha256) {
  auto crypto = test::make_crypto(test::kSampleEncKey, test::kSampleHmacKey);
  // legacy-v1.json: SHA-256("sensors/temp")[0:16].
  EXPECT_EQ(test::to_hex(wire::channel_id(*crypto, "sensors/temp")),
            "8319b0611f824d7eb28af150143b48eb");
}

}  // namespace
}  // namespace nomq
