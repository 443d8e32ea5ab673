// Wire v2 codec: round trips, body rules, tampering, truncation, keys, window, caller errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "nomq/wire.hpp"
#include "unit/counting_crypto.hpp"
#include "unit/wire_test_support.hpp"

namespace nomq {
namespace {

using test::kT0;
using wire::PacketType;

class WireV2 : public test::WireCodecTest<WireVersion::v2> {};

TEST_F(WireV2, EveryTypeRoundTrips) {
  for (const PacketType type : test::kAllTypes) {
    SCOPED_TRACE(std::string(wire::to_string(type)));
    wire::Packet p = sample(type);
    if (type == PacketType::subscribe) p.flags = wire::kFlagWantRetained | (7 << 4);
    const auto r = round_trip(p);  // header, and the HEARTBEAT and ACK-family bodies
    ASSERT_TRUE(r);
    switch (type) {
      case PacketType::publish:
        EXPECT_EQ(r->body.message_id, p.body.message_id);
        EXPECT_EQ(r->body.channel, test::kChannel);
        EXPECT_EQ(as_string_view(r->body.message), test::kMessage);
        EXPECT_EQ(r->qos(), 1);
        EXPECT_TRUE(r->retain());
        EXPECT_EQ(r->priority(), 5);
        break;
      case PacketType::subscribe:
        EXPECT_TRUE(wire::flags_want_retained(r->flags));
        EXPECT_EQ(r->priority(), 7);
        [[fallthrough]];
      case PacketType::unsubscribe:
        EXPECT_EQ(r->body.channel, test::kChannel);
        break;
      default:
        break;
    }
  }
}

TEST_F(WireV2, LayoutIsHeaderCiphertextMac) {
  const wire::Packet p = sample(PacketType::publish);
  const auto d = test::encode_or_die(p, *crypto_);
  // 4 + 1 + 12 + 16 = 33 plaintext bytes -> 48 ciphertext bytes; no repeated IV.
  ASSERT_EQ(d.size(), 53u + 48u + 32u);
  EXPECT_EQ(load_be16(d.data() + 51), 48);
  EXPECT_EQ(test::to_hex(Bytes{d}.subspan(15, 16)), test::to_hex(p.iv));
  const Digest mac = crypto_->hmac_sha256(Bytes{d}.first(53 + 48));
  EXPECT_EQ(test::to_hex(Bytes{d}.last(32)), test::to_hex(mac));
}

TEST_F(WireV2, MessagesOfEverySizeAndBinaryContentRoundTrip) {
  wire::Packet p = sample(PacketType::publish);
  std::vector<std::uint8_t> msg;
  for (std::size_t len = 0; len <= 1024; len += (len < 40 ? 1 : 97)) {
    msg.resize(len);
    for (std::size_t i = 0; i < len; ++i) msg[i] = static_cast<std::uint8_t>(i * 7 + 0x80);
    p.body.message = msg;
    const auto d = test::encode_or_die(p, *crypto_);
    ASSERT_FALSE(d.empty()) << len;
    const auto r = decode(d);
    ASSERT_TRUE(r.ok()) << len << ": " << r.error();
    EXPECT_EQ(std::vector<std::uint8_t>(r->body.message.begin(), r->body.message.end()), msg);
  }
}

TEST_F(WireV2, ChannelNamesUpTo255BytesIncludingUtf8) {
  wire::Packet p = sample(PacketType::subscribe);
  for (const std::string& name : {std::string("capteurs/temp\xC3\xA9rature"), std::string(255, 'n'),
                                 std::string("a")}) {
    p.body.channel = name;
    p.channel_id = wire::channel_id(*crypto_, name);
    const auto d = test::encode_or_die(p, *crypto_);
    const auto r = decode(d);
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r->body.channel, name);
  }
  const std::string too_long(256, 'n');
  p.body.channel = too_long;
  std::vector<std::uint8_t> out(wire::kMaxDatagram);
  EXPECT_EQ(wire::encode(p, *crypto_, out).error(), Errc::channel_name_too_long);
  p.type = PacketType::publish;
  EXPECT_EQ(wire::encode(p, *crypto_, out).error(), Errc::channel_name_too_long);
  p.body.channel = "";
  EXPECT_EQ(wire::encode(p, *crypto_, out).error(), Errc::invalid_argument);
  p.body.channel = "\xC3\x28";
  EXPECT_EQ(wire::encode(p, *crypto_, out).error(), Errc::invalid_argument);
}

TEST_F(WireV2, ChannelIdMustMatchTheNameInside) {
  wire::Packet p = sample(PacketType::publish);
  p.channel_id = wire::channel_id(*crypto_, "other/channel");
  EXPECT_EQ(decode(test::encode_or_die(p, *crypto_)).error(), Errc::bad_body);
  p.type = PacketType::subscribe;
  EXPECT_EQ(decode(test::encode_or_die(p, *crypto_)).error(), Errc::bad_body);
}

TEST_F(WireV2, MalformedBodiesAreBadBody) {
  const std::vector<std::uint8_t> name(test::kChannel.begin(), test::kChannel.end());
  auto with = [](std::vector<std::uint8_t> a, const std::vector<std::uint8_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const std::uint8_t n = static_cast<std::uint8_t>(name.size());
  // PUBLISH: shorter than the 5-byte prefix, name_len 0, name_len beyond the plaintext.
  EXPECT_EQ(decode(seal(1, test::pkcs7({0, 0, 0, 1}))).error(), Errc::bad_body);
  EXPECT_EQ(decode(seal(1, test::pkcs7({0, 0, 0, 1, 0, 'x'}))).error(), Errc::bad_body);
  EXPECT_EQ(decode(seal(1, test::pkcs7(with({0, 0, 0, 1, static_cast<std::uint8_t>(n + 1)}, name))))
                .error(),
            Errc::bad_body);
  EXPECT_TRUE(decode(seal(1, test::pkcs7(with({0, 0, 0, 1, n}, name)))).ok());  // empty message
  // SUBSCRIBE/UNSUBSCRIBE: the name must fill the body exactly.
  EXPECT_EQ(decode(seal(2, test::pkcs7({}))).error(), Errc::bad_body);
  EXPECT_EQ(decode(seal(2, test::pkcs7({0}))).error(), Errc::bad_body);
  EXPECT_EQ(decode(seal(2, test::pkcs7(with(with({n}, name), {'!'})))).error(), Errc::bad_body);
  EXPECT_EQ(decode(seal(4, test::pkcs7(with({static_cast<std::uint8_t>(n - 1)}, name)))).error(),
            Errc::bad_body);
  EXPECT_TRUE(decode(seal(4, test::pkcs7(with({n}, name)))).ok());
  // Names that are not UTF-8 never decode, whatever the channel id.
  EXPECT_EQ(decode(seal(2, test::pkcs7({2, 0xC3, 0x28}), "\xC3\x28")).error(), Errc::bad_body);
  // ACK family: exactly 4 bytes.
  for (const int t : {3, 6, 7, 8}) {
    const auto type = static_cast<std::uint8_t>(t);
    EXPECT_EQ(decode(seal(type, test::pkcs7({1, 2, 3}))).error(), Errc::bad_body);
    EXPECT_EQ(decode(seal(type, test::pkcs7({1, 2, 3, 4, 5}))).error(), Errc::bad_body);
    const auto ok = decode(seal(type, test::pkcs7({1, 2, 3, 4})));
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok->body.acked_id, 0x01020304u);
  }
  // HEARTBEAT: empty.
  EXPECT_EQ(decode(seal(5, test::pkcs7({0}))).error(), Errc::bad_body);
  EXPECT_TRUE(decode(seal(5, test::pkcs7({}))).ok());
}

TEST_F(WireV2, PaddingIsCheckedAfterTheMac) {
  EXPECT_EQ(decode(seal(5, std::vector<std::uint8_t>(16, 0))).error(), Errc::bad_padding);
  EXPECT_EQ(decode(seal(5, std::vector<std::uint8_t>(16, 17))).error(), Errc::bad_padding);
  std::vector<std::uint8_t> mixed(16, 4);
  mixed[13] = 3;
  EXPECT_EQ(decode(seal(5, mixed)).error(), Errc::bad_padding);
}

TEST_F(WireV2, CheckOrder) {
  const auto good = encode_sample(PacketType::ack);
  auto bad = good;
  bad[0] = 0;
  EXPECT_EQ(decode(bad).error(), Errc::bad_magic);
  bad = good;
  bad[2] = 1;
  EXPECT_EQ(decode(bad).error(), Errc::bad_version);
  bad = good;
  bad[3] = 9;
  EXPECT_EQ(decode(bad).error(), Errc::bad_type);
  bad[3] = 0;
  EXPECT_EQ(decode(bad).error(), Errc::bad_type);
  bad = good;
  store_be16(bad.data() + 51, 32);
  EXPECT_EQ(decode(bad).error(), Errc::bad_length);
  // A consistent length that is not a whole number of blocks: bad_block_size, before the MAC.
  bad = good;
  bad.push_back(0);
  store_be16(bad.data() + 51, 17);
  EXPECT_EQ(decode(bad).error(), Errc::bad_block_size);
  // Stale and forged: the MAC is checked first.
  bad = good;
  bad[31] ^= 0x80;
  EXPECT_EQ(decode(bad).error(), Errc::bad_mac);
}

// encode never exceeds kMaxDatagram; decode refuses anything longer, even authentic, so the
// two stay exact inverses and no sender makes us MAC more than kMaxDatagram bytes.
TEST_F(WireV2, DatagramsAboveTheMaxAreBadLength) {
  const auto ch = wire::channel_id(*crypto_, test::kChannel);
  // An authentic PUBLISH whose plaintext is 123 blocks: 53 + 1968 + 32 = 2053 bytes
  // (message_id, name_len, name, then 1950 message bytes).
  std::vector<std::uint8_t> body(1967, 'x');
  body[0] = body[1] = body[2] = 0;
  body[3] = 7;
  body[4] = static_cast<std::uint8_t>(test::kChannel.size());
  std::copy(test::kChannel.begin(), test::kChannel.end(), body.begin() + 5);
  const auto big = test::seal_raw(*crypto_, WireVersion::v2, 1, test::kT0, ch, test::pkcs7(body));
  ASSERT_EQ(big.size(), 2053u);
  std::vector<std::uint8_t> big_scratch(big.size());
  EXPECT_EQ(wire::decode(big, *crypto_, test::options_for(WireVersion::v2), big_scratch).error(),
            Errc::bad_length);
  std::vector<std::uint8_t> garbage(wire::kMaxDatagram, 0xA5);
  EXPECT_EQ(decode(garbage).error(), Errc::bad_magic);
  garbage.push_back(0xA5);
  EXPECT_EQ(decode(garbage).error(), Errc::bad_length);
}

TEST_F(WireV2, EveryFlippedByteIsRejected) { expect_every_flipped_byte_rejected(); }

TEST_F(WireV2, EveryTruncationAndExtensionIsRejected) {
  for_each_sample_datagram([&](const std::vector<std::uint8_t>& good) {
    for (std::size_t len = 0; len < good.size(); ++len) {
      const auto r = decode(Bytes{good.data(), len});
      ASSERT_FALSE(r.ok()) << "truncated to " << len;
      EXPECT_EQ(r.error(), len < wire::kV2MinDatagram ? Errc::too_short : Errc::bad_length) << len;
    }
    auto longer = good;
    longer.push_back(0);
    EXPECT_EQ(decode(longer).error(), Errc::bad_length);
  });
}

TEST_F(WireV2, WrongKeysAreBadMac) {
  const auto d = encode_sample(PacketType::publish);
  const Key other = test::key_from_hex(std::string(64, '7'));
  EXPECT_EQ(decode_with_keys(d, test::kSampleEncKey, other).error(), Errc::bad_mac);
  // v2 has no repeated IV and the same MAC: a wrong encryption key gets past the MAC only.
  const auto r = decode_with_keys(d, other, test::kSampleHmacKey);
  EXPECT_FALSE(r.ok());
}

TEST_F(WireV2, StaleAndFutureTimestamps) {
  const auto d = encode_sample(PacketType::heartbeat);
  auto at = [&](double clock, std::uint32_t epoch = 0) {
    wire::DecodeOptions o = options_at(clock);
    o.epoch_offset = epoch;
    return decode(d, o).error();
  };
  EXPECT_EQ(at(kT0 + 30.0), Errc::ok);
  EXPECT_EQ(at(kT0 - 30.0), Errc::ok);
  EXPECT_EQ(at(kT0 + 30.5), Errc::stale_timestamp);
  EXPECT_EQ(at(kT0 - 31.0), Errc::stale_timestamp);
  EXPECT_EQ(at(kT0 + 946684800.0, kEpoch2000Offset), Errc::ok);
  EXPECT_EQ(at(kT0, kEpoch2000Offset), Errc::stale_timestamp);
}

TEST_F(WireV2, CallerErrors) {
  wire::Packet p = sample(PacketType::publish);
  const std::size_t size = wire::encoded_size(p);
  std::vector<std::uint8_t> out(size);
  EXPECT_EQ(wire::encode(p, *crypto_, MutableBytes{out.data(), size - 1}).error(),
            Errc::buffer_too_small);
  ASSERT_TRUE(wire::encode(p, *crypto_, out).ok());
  std::vector<std::uint8_t> small(size - 60);  // below the 48-byte ciphertext
  EXPECT_EQ(wire::decode(out, *crypto_, test::options_for(WireVersion::v2),
                         MutableBytes{small.data(), 47}).error(),
            Errc::buffer_too_small);

  // 85 + padded(5 + 12 + m) <= 2048: m = 1934 gives 2037 bytes, 1935 adds a block (2053).
  std::vector<std::uint8_t> big(2 * wire::kMaxDatagram);
  const std::string fits(1934, 'x');
  p.body.message = as_bytes(fits);
  EXPECT_EQ(wire::encoded_size(p), 2037u);
  const auto n = wire::encode(p, *crypto_, big);
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(decode(Bytes{big.data(), *n}).ok());
  const std::string too_big(1935, 'x');
  p.body.message = as_bytes(too_big);
  EXPECT_EQ(wire::encode(p, *crypto_, big).error(), Errc::message_too_large);
}

}  // namespace
}  // namespace nomq

namespace nomq {
namespace {

TEST_F(WireV2, KnownChannelsSkipTheHashWithoutChangingVerdicts) {
  test::Sha256CountingCrypto counting(*crypto_);
  const wire::Packet p = sample(PacketType::publish);
  const auto d = test::encode_or_die(p, *crypto_);
  wire::DecodeOptions o = test::options_for(WireVersion::v2);

  ASSERT_TRUE(wire::decode(d, counting, o, scratch_).ok());
  EXPECT_EQ(counting.sha256_calls, 1);

  const wire::KnownChannel known[] = {{wire::channel_id(*crypto_, "other"), "other"},
                                      {p.channel_id, test::kChannel}};
  o.known_channels = known;
  counting.sha256_calls = 0;
  const auto r = wire::decode(d, counting, o, scratch_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body.channel, test::kChannel);
  EXPECT_EQ(counting.sha256_calls, 0);

  // A body name that differs from the known name with the same id is hashed, and rejected.
  wire::Packet forged = p;
  forged.body.channel = "sensors/tamp";
  counting.sha256_calls = 0;
  EXPECT_EQ(wire::decode(test::encode_or_die(forged, *crypto_), counting, o, scratch_).error(),
            Errc::bad_body);
  EXPECT_EQ(counting.sha256_calls, 1);
}

}  // namespace
}  // namespace nomq
