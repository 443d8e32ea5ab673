// Wire v1 codec beyond the legacy vectors: round trips, epochs, the window edges, tampering,
// truncation and the caller-error paths.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nomq/wire.hpp"
#include "unit/wire_test_support.hpp"

namespace nomq {
namespace {

using test::kT0;
using wire::PacketType;

class WireV1 : public test::WireCodecTest<WireVersion::v1> {};

TEST_F(WireV1, EveryTypeRoundTrips) {
  for (const PacketType type : test::kAllTypes) {
    SCOPED_TRACE(std::string(wire::to_string(type)));
    const wire::Packet p = sample(type);
    const auto r = round_trip(p);  // header, and the HEARTBEAT and ACK-family bodies
    ASSERT_TRUE(r);
    switch (type) {
      case PacketType::publish:
        EXPECT_EQ(r->body.message_id, p.body.message_id);
        EXPECT_EQ(r->body.inner_timestamp, p.body.inner_timestamp);
        EXPECT_EQ(r->body.v1_layout, wire::V1Layout::gap20);
        EXPECT_EQ(as_string_view(r->body.message), test::kMessage);
        EXPECT_TRUE(r->retain());
        EXPECT_EQ(r->qos(), 1);
        EXPECT_EQ(r->priority(), 5);
        break;
      case PacketType::subscribe:
      case PacketType::unsubscribe:
        EXPECT_EQ(r->body.channel, test::kChannel);
        break;
      default:
        break;
    }
  }
}

TEST_F(WireV1, BothPublishLayoutsRoundTripAndDifferByFourBytes) {
  wire::Packet p = sample(PacketType::publish);
  for (std::size_t len : {0u, 1u, 3u, 4u, 11u, 12u, 16u, 27u, 28u, 1024u}) {
    const std::string msg(len, 'x');
    p.body.message = as_bytes(msg);
    for (const auto layout : {wire::V1Layout::gap20, wire::V1Layout::device16}) {
      SCOPED_TRACE(std::string(wire::to_string(layout)) + " " + std::to_string(len));
      p.body.v1_layout = layout;
      const auto d = test::encode_or_die(p, *crypto_);
      ASSERT_FALSE(d.empty());
      const auto r = decode(d);
      ASSERT_TRUE(r.ok()) << r.error();
      EXPECT_EQ(r->body.v1_layout, layout);
      EXPECT_EQ(as_string_view(r->body.message), msg);
      EXPECT_EQ(r->plaintext.size(), (layout == wire::V1Layout::gap20 ? 20u : 16u) + len);
    }
  }
}

TEST_F(WireV1, Epoch2000TimestampsAreCheckedAgainstTheShiftedClock) {
  wire::Packet p = sample(PacketType::publish);
  const WallTime now = test::clock_at(1700000000.75);
  p.timestamp = wire_seconds(now, kEpoch2000Offset);
  EXPECT_EQ(p.timestamp, 753315200u);  // the legacy vector publish_q1_epoch2000
  const auto d = test::encode_or_die(p, *crypto_);
  wire::DecodeOptions o = test::options_for(WireVersion::v1);
  o.wall = now;
  o.epoch_offset = kEpoch2000Offset;
  EXPECT_TRUE(decode(d, o).ok());
  o.epoch_offset = 0;  // a Unix-epoch receiver sees a 30-year-old packet
  EXPECT_EQ(decode(d, o).error(), Errc::stale_timestamp);
}

TEST_F(WireV1, TimestampWindowEdges) {
  const auto d = encode_sample(PacketType::ack);
  auto at = [&](double clock, std::uint32_t window = 30) {
    wire::DecodeOptions o = options_at(clock);
    o.timestamp_window_s = window;
    return decode(d, o).error();
  };
  EXPECT_EQ(at(kT0 + 30.0), Errc::ok);
  EXPECT_EQ(at(kT0 - 30.0), Errc::ok);
  EXPECT_EQ(at(kT0 + 30.000001), Errc::stale_timestamp);
  EXPECT_EQ(at(kT0 - 30.000001), Errc::stale_timestamp);
  EXPECT_EQ(at(kT0 + 30.5), Errc::stale_timestamp);
  EXPECT_EQ(at(kT0 + 5.0, 5), Errc::ok);
  EXPECT_EQ(at(kT0 + 6.0, 5), Errc::stale_timestamp);
  EXPECT_EQ(at(0.0), Errc::stale_timestamp);
  wire::DecodeOptions off = test::options_for(WireVersion::v1);
  off.wall = WallTime{};
  off.check_timestamp = false;
  EXPECT_TRUE(decode(d, off).ok());
}

TEST_F(WireV1, EveryFlippedByteIsRejected) { expect_every_flipped_byte_rejected(); }

TEST_F(WireV1, EveryTruncationAndExtensionIsRejected) {
  for_each_sample_datagram([&](const std::vector<std::uint8_t>& good) {
    for (std::size_t len = 0; len < good.size(); ++len) {
      const auto r = decode(Bytes{good.data(), len});
      ASSERT_FALSE(r.ok()) << "truncated to " << len;
      if (len < wire::kV1MinDatagram) {
        EXPECT_EQ(r.error(), Errc::too_short) << len;
      }
    }
    auto longer = good;
    longer.push_back(0);
    EXPECT_EQ(decode(longer).error(), Errc::bad_mac);  // as the legacy vector trailing_byte
  });
}

TEST_F(WireV1, WrongKeysAreRejected) {
  const auto d = encode_sample(PacketType::publish);
  const Key other = test::key_from_hex(std::string(64, '7'));
  EXPECT_EQ(decode_with_keys(d, test::kSampleEncKey, other).error(), Errc::bad_mac);
  // The v1 MAC does not cover the plaintext, so a wrong encryption key shows up after it.
  const auto r = decode_with_keys(d, other, test::kSampleHmacKey);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error(), Errc::bad_mac);
}

TEST_F(WireV1, ChecksAfterTheMacHaveTheirOwnReasons) {
  EXPECT_EQ(decode(seal(1, {})).error(), Errc::empty_plaintext);
  EXPECT_EQ(decode(seal(1, std::vector<std::uint8_t>(16, 0))).error(), Errc::bad_padding);
  EXPECT_EQ(decode(seal(9, test::pkcs7({1, 2, 3, 4}))).error(), Errc::bad_type);
  EXPECT_EQ(decode(seal(0, test::pkcs7({1, 2, 3, 4}))).error(), Errc::bad_type);
  EXPECT_EQ(decode(seal(3, test::pkcs7({1, 2, 3}))).error(), Errc::bad_body);
  EXPECT_TRUE(decode(seal(3, test::pkcs7({1, 2, 3, 4, 5}))).ok());  // later bytes ignored
  EXPECT_EQ(decode(seal(1, test::pkcs7(std::vector<std::uint8_t>(15, 0)))).error(),
            Errc::publish_payload_short);
  // 16-byte inner header, msg_len 0: a device16 publish of the empty message.
  const auto empty_device16 = decode(seal(1, test::pkcs7(std::vector<std::uint8_t>(16, 0))));
  ASSERT_TRUE(empty_device16.ok());
  EXPECT_EQ(empty_device16->body.v1_layout, wire::V1Layout::device16);
  // msg_len = 0xFFFFFFFF must not overflow the length arithmetic.
  std::vector<std::uint8_t> huge(24, 0);
  huge[12] = huge[13] = huge[14] = huge[15] = 0xFF;
  EXPECT_EQ(decode(seal(1, test::pkcs7(huge))).error(), Errc::publish_bad_msg_len);
  huge.resize(17);
  EXPECT_EQ(decode(seal(1, test::pkcs7(huge))).error(), Errc::publish_payload_short);
}

TEST_F(WireV1, BadLengthField) {
  auto d = encode_sample(PacketType::ack);
  store_be16(d.data() + 51, 15);  // L below the IV's 16 bytes
  EXPECT_EQ(decode(d).error(), Errc::bad_length);
  store_be16(d.data() + 51, 0xFFFF);
  EXPECT_EQ(decode(d).error(), Errc::bad_length);
}

// The original's receive buffer is kMaxDatagram bytes: a longer datagram is bad_length even
// when its length field and MAC are right (found while hardening: v1 had no size cap), and it
// is refused before the MAC is computed over it.
TEST_F(WireV1, DatagramsAboveTheMaxAreBadLength) {
  const auto ch = wire::channel_id(*crypto_, test::kChannel);
  // An authentic ACK whose plaintext is 123 blocks: 53 + 16 + 1968 + 32 = 2069 bytes.
  std::vector<std::uint8_t> body(1967, 0);
  const auto big = test::seal_raw(*crypto_, WireVersion::v1, 3, kT0, ch, test::pkcs7(body));
  ASSERT_EQ(big.size(), 2069u);
  std::vector<std::uint8_t> big_scratch(big.size());
  EXPECT_EQ(wire::decode(big, *crypto_, test::options_for(WireVersion::v1), big_scratch).error(),
            Errc::bad_length);
  // The largest that fits: 121 blocks, 2037 bytes.
  body.resize(1935);
  const auto fits = test::seal_raw(*crypto_, WireVersion::v1, 3, kT0, ch, test::pkcs7(body));
  ASSERT_EQ(fits.size(), 2037u);
  EXPECT_TRUE(decode(fits).ok());
  // Garbage at kMaxDatagram is judged by the header (magic); one byte more by the cap.
  std::vector<std::uint8_t> garbage(wire::kMaxDatagram, 0xA5);
  EXPECT_EQ(decode(garbage).error(), Errc::bad_magic);
  garbage.push_back(0xA5);
  EXPECT_EQ(decode(garbage).error(), Errc::bad_length);
  // A valid packet followed by zeros up to the largest UDP payload.
  auto padded = test::encode_or_die(
      test::sample_packet(*crypto_, WireVersion::v1, PacketType::publish), *crypto_);
  padded.resize(65507, 0);
  EXPECT_EQ(decode(padded).error(), Errc::bad_length);
}

TEST_F(WireV1, HeaderChecksComeFirst) {
  auto d = encode_sample(PacketType::ack);
  auto bad = d;
  bad[0] = 0x4E;
  bad[1] = 0x4E;
  EXPECT_EQ(decode(bad).error(), Errc::bad_magic);
  EXPECT_EQ(wire::peek_version(bad), 0);
  bad = d;
  bad[2] = 3;
  EXPECT_EQ(decode(bad).error(), Errc::bad_version);
}

TEST_F(WireV1, AV2NodeRejectsV1AndAV1NodeRejectsV2) {
  const auto v1 = encode_sample(PacketType::publish);
  const auto v2 = test::encode_or_die(
      test::sample_packet(*crypto_, WireVersion::v2, PacketType::publish), *crypto_);
  EXPECT_EQ(decode(v2).error(), Errc::bad_version);
  EXPECT_EQ(decode(v1, test::options_for(WireVersion::v2)).error(), Errc::bad_version);
  EXPECT_EQ(wire::peek_version(v1), 1);
  EXPECT_EQ(wire::peek_version(v2), 2);
}

TEST_F(WireV1, CallerErrors) {
  wire::Packet p = sample(PacketType::publish);
  const std::size_t size = wire::encoded_size(p);
  std::vector<std::uint8_t> out(size);
  EXPECT_EQ(wire::encode(p, *crypto_, MutableBytes{out.data(), size - 1}).error(),
            Errc::buffer_too_small);
  EXPECT_EQ(wire::encode(p, *crypto_, MutableBytes{}).error(), Errc::buffer_too_small);

  const std::string big(wire::kMaxDatagram, 'x');
  p.body.message = as_bytes(big);
  std::vector<std::uint8_t> huge(2 * wire::kMaxDatagram);
  EXPECT_EQ(wire::encode(p, *crypto_, huge).error(), Errc::message_too_large);
  // The largest message that fits: 101 + padded(20 + 1915) = 2037; one byte more adds a block.
  const std::string fits(1915, 'x');
  p.body.message = as_bytes(fits);
  EXPECT_EQ(wire::encoded_size(p), 2037u);
  EXPECT_TRUE(wire::encode(p, *crypto_, huge).ok());
  const std::string too_big(1916, 'x');  // 2053 bytes
  p.body.message = as_bytes(too_big);
  EXPECT_EQ(wire::encode(p, *crypto_, huge).error(), Errc::message_too_large);

  const std::string not_utf8 = "\xC3\x28";
  p.body.message = as_bytes(not_utf8);
  EXPECT_EQ(wire::encode(p, *crypto_, huge).error(), Errc::invalid_argument);

  p = sample(PacketType::publish);
  p.type = static_cast<PacketType>(9);
  EXPECT_EQ(wire::encode(p, *crypto_, huge).error(), Errc::invalid_argument);
  EXPECT_EQ(wire::encoded_size(p), 0u);
  p = sample(PacketType::publish);
  p.version = static_cast<WireVersion>(3);
  EXPECT_EQ(wire::encode(p, *crypto_, huge).error(), Errc::invalid_argument);

  // Scratch smaller than the ciphertext.
  const auto d = encode_sample(PacketType::publish);
  std::vector<std::uint8_t> small(16);
  EXPECT_EQ(wire::decode(d, *crypto_, test::options_for(WireVersion::v1), small).error(),
            Errc::buffer_too_small);
}

TEST_F(WireV1, NamesOfTypesVersionsAndLayouts) {
  EXPECT_EQ(to_string(WireVersion::v1), "v1");
  EXPECT_EQ(to_string(WireVersion::v2), "v2");
  EXPECT_EQ(wire::to_string(PacketType::publish), "PUBLISH");
  EXPECT_EQ(wire::to_string(PacketType::pubcomp), "PUBCOMP");
  EXPECT_EQ(wire::to_string(wire::V1Layout::gap20), "gap20");
  EXPECT_EQ(wire::to_string(wire::V1Layout::device16), "device16");
}

}  // namespace
}  // namespace nomq
