// Helpers shared by the wire codec tests: hex, clocks, a crypto backend with given keys, a
// raw v1/v2 sealer that builds datagrams the codec itself would refuse to build, and a fixture
// for one wire version.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nomq/crypto.hpp"
#include "nomq/crypto_backend.hpp"
#include "nomq/time.hpp"
#include "nomq/wire.hpp"

namespace nomq::test {

inline std::vector<std::uint8_t> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::uint8_t> out;
  if (hex.size() % 2 != 0) return out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return {};
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  return out;
}

inline std::string to_hex(Bytes b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (const std::uint8_t x : b) {
    s.push_back(kDigits[x >> 4]);
    s.push_back(kDigits[x & 15]);
  }
  return s;
}

template <class Array>
Array array_from_hex(std::string_view hex) {
  Array a{};
  const auto v = from_hex(hex);
  for (std::size_t i = 0; i < a.size() && i < v.size(); ++i) a[i] = v[i];
  return a;
}

// A receiver clock given as (possibly fractional) Unix seconds, e.g. 1700000030.5.
inline WallTime clock_at(double unix_seconds) {
  return WallTime{Duration{static_cast<std::int64_t>(std::llround(unix_seconds * 1e6))}};
}

inline std::unique_ptr<CryptoRng> make_crypto(const Key& encryption_key, const Key& hmac_key) {
  auto r = nomq::make_crypto(encryption_key, hmac_key);
  if (!r.ok()) return nullptr;
  return std::move(*r);
}

inline Key key_from_hex(std::string_view hex) { return array_from_hex<Key>(hex); }

// The sample keys of the original's config_gen.py (legacy-v1.json "keys").
inline const Key kSampleEncKey =
    key_from_hex("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
inline const Key kSampleHmacKey =
    key_from_hex("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");

// Builds a datagram around an arbitrary padded plaintext (a multiple of 16, padding included or
// deliberately wrong), with a valid MAC: lets tests reach the checks after the MAC.
inline std::vector<std::uint8_t> seal_raw(Crypto& crypto, WireVersion version,
                                          std::uint8_t type, std::uint32_t timestamp,
                                          const wire::ChannelId& channel,
                                          std::vector<std::uint8_t> padded_plaintext) {
  const Iv iv = array_from_hex<Iv>("000102030405060708090a0b0c0d0e0f");
  std::vector<std::uint8_t> ct(padded_plaintext.size());
  if (!ct.empty()) crypto.cbc_encrypt(iv, padded_plaintext, ct);
  std::vector<std::uint8_t> d(wire::kHeaderSize);
  store_be16(d.data(), wire::kMagic);
  d[2] = static_cast<std::uint8_t>(version);
  d[3] = type;
  store_be32(d.data() + 31, timestamp);
  for (std::size_t i = 0; i < iv.size(); ++i) d[15 + i] = iv[i];
  for (std::size_t i = 0; i < channel.size(); ++i) d[35 + i] = channel[i];
  const bool v1 = version == WireVersion::v1;
  store_be16(d.data() + 51, static_cast<std::uint16_t>(ct.size() + (v1 ? kIvSize : 0)));
  // Sized once and filled (not grown with insert: g++ 12 -O3 reports a false -Warray-bounds on
  // the vector's reallocation there).
  d.resize(wire::kHeaderSize + (v1 ? iv.size() : 0) + ct.size());
  auto body = d.begin() + static_cast<std::ptrdiff_t>(wire::kHeaderSize);
  if (v1) body = std::copy(iv.begin(), iv.end(), body);
  std::copy(ct.begin(), ct.end(), body);
  const Digest mac = v1 ? crypto.keyed_sha256(d) : crypto.hmac_sha256(d);
  d.insert(d.end(), mac.begin(), mac.end());
  return d;
}

// PKCS#7-pads a plaintext.
inline std::vector<std::uint8_t> pkcs7(std::vector<std::uint8_t> pt) {
  const std::size_t pad = kBlockSize - pt.size() % kBlockSize;
  pt.insert(pt.end(), pad, static_cast<std::uint8_t>(pad));
  return pt;
}

}  // namespace nomq::test

namespace nomq::test {

inline constexpr std::uint32_t kT0 = 1700000000;  // a wire timestamp (Unix epoch)
inline constexpr std::string_view kChannel = "sensors/temp";
inline constexpr std::string_view kMessage = "temperature=21.5";

inline constexpr wire::PacketType kAllTypes[] = {
    wire::PacketType::publish,   wire::PacketType::subscribe, wire::PacketType::ack,
    wire::PacketType::unsubscribe, wire::PacketType::heartbeat, wire::PacketType::pubrec,
    wire::PacketType::pubrel,    wire::PacketType::pubcomp};

// A valid packet of `type` for `version`; views point to static storage.
inline wire::Packet sample_packet(Crypto& crypto, WireVersion version, wire::PacketType type) {
  wire::Packet p;
  p.version = version;
  p.type = type;
  p.packet_id = 0x01020304;
  p.session_id = 0xA1B2C3D4;
  p.ttl = wire::kV1DefaultTtl;
  p.iv = array_from_hex<Iv>("628a92814655afdac82bf62075fce018");
  p.timestamp = kT0;
  p.channel_id = wire::channel_id(crypto, kChannel);
  switch (type) {
    case wire::PacketType::publish:
      p.flags = wire::publish_flags(1, true, 5);
      p.body.message_id = 0x20f48b26;
      p.body.inner_timestamp = kT0;
      p.body.channel = kChannel;
      p.body.message = as_bytes(kMessage);
      break;
    case wire::PacketType::subscribe:
    case wire::PacketType::unsubscribe:
      p.body.channel = kChannel;
      break;
    case wire::PacketType::heartbeat:
      p.channel_id = {};
      break;
    default:
      p.body.acked_id = 0xaa4668cf;
      break;
  }
  return p;
}

inline std::vector<std::uint8_t> encode_or_die(const wire::Packet& p, Crypto& crypto) {
  std::vector<std::uint8_t> out(wire::encoded_size(p));
  const auto n = wire::encode(p, crypto, out);
  if (!n.ok()) return {};
  out.resize(*n);
  return out;
}

inline wire::DecodeOptions options_for(WireVersion v, std::uint32_t ts = kT0,
                                       std::uint32_t epoch_offset = 0) {
  wire::DecodeOptions o;
  o.version = v;
  o.wall = WallTime{std::chrono::seconds(static_cast<std::int64_t>(ts) + epoch_offset)};
  o.epoch_offset = epoch_offset;
  return o;
}

// Checks the header fields both versions carry (the version itself is the caller's).
inline void expect_same_header(const wire::Packet& got, const wire::Packet& sent) {
  EXPECT_EQ(got.type, sent.type);
  EXPECT_EQ(got.flags, sent.flags);
  EXPECT_EQ(got.packet_id, sent.packet_id);
  EXPECT_EQ(got.session_id, sent.session_id);
  EXPECT_EQ(got.ttl, sent.ttl);
  EXPECT_EQ(got.iv, sent.iv);
  EXPECT_EQ(got.timestamp, sent.timestamp);
  EXPECT_EQ(got.channel_id, sent.channel_id);
}

// A fixture for one wire version: a backend with the sample keys, a decode scratch buffer, and
// shorthands for the sample packets and raw datagrams of that version.
template <WireVersion V>
class WireCodecTest : public ::testing::Test {
 protected:
  std::unique_ptr<Crypto> crypto_ = make_crypto(kSampleEncKey, kSampleHmacKey);
  std::vector<std::uint8_t> scratch_ = std::vector<std::uint8_t>(wire::kMaxDatagram);

  Result<wire::Packet> decode(Bytes d, const wire::DecodeOptions& o) {
    return wire::decode(d, *crypto_, o, scratch_);
  }
  Result<wire::Packet> decode(Bytes d) { return decode(d, options_for(V)); }

  // Decodes with another backend, e.g. one with a wrong key.
  Result<wire::Packet> decode_with_keys(Bytes d, const Key& encryption_key, const Key& hmac_key) {
    const auto other = make_crypto(encryption_key, hmac_key);
    return wire::decode(d, *other, options_for(V), scratch_);
  }

  // This version's decode options with the receiver clock at `unix_seconds`.
  static wire::DecodeOptions options_at(double unix_seconds) {
    wire::DecodeOptions o = options_for(V);
    o.wall = clock_at(unix_seconds);
    return o;
  }

  wire::Packet sample(wire::PacketType type) { return sample_packet(*crypto_, V, type); }
  std::vector<std::uint8_t> encode_sample(wire::PacketType type) {
    return encode_or_die(sample(type), *crypto_);
  }

  // A datagram around `padded` with a valid MAC (seal_raw), on `channel`'s id.
  std::vector<std::uint8_t> seal(std::uint8_t type, std::vector<std::uint8_t> padded,
                                 std::string_view channel = kChannel) {
    return seal_raw(*crypto_, V, type, kT0, wire::channel_id(*crypto_, channel),
                    std::move(padded));
  }

  // Calls `check(datagram)` with a valid datagram of every packet type, traced with its name.
  template <class Check>
  void for_each_sample_datagram(Check check) {
    for (const wire::PacketType type : kAllTypes) {
      SCOPED_TRACE(std::string(wire::to_string(type)));
      const auto good = encode_sample(type);
      ASSERT_FALSE(good.empty());
      check(good);
    }
  }

  // Encodes `p` and decodes it again, checking on the way the size, the version and every
  // header field, and the bodies that are the same in both versions (HEARTBEAT: empty; the
  // ACK family: the acked id). Returns the decoded packet for the caller's body checks, or
  // nothing after a failure. Its views point into this fixture's buffers.
  std::optional<wire::Packet> round_trip(const wire::Packet& p) {
    datagram_ = encode_or_die(p, *crypto_);
    EXPECT_EQ(datagram_.size(), wire::encoded_size(p));
    EXPECT_EQ(wire::peek_version(datagram_), static_cast<std::uint8_t>(V));
    const auto r = decode(datagram_);
    EXPECT_TRUE(r.ok()) << r.error();
    if (!r.ok()) return std::nullopt;
    EXPECT_EQ(r->version, V);
    expect_same_header(*r, p);
    if (p.type == wire::PacketType::heartbeat) {
      EXPECT_TRUE(r->plaintext.empty());
    } else if (p.type == wire::PacketType::ack || p.type == wire::PacketType::pubrec ||
               p.type == wire::PacketType::pubrel || p.type == wire::PacketType::pubcomp) {
      EXPECT_EQ(r->body.acked_id, p.body.acked_id);
    }
    return *r;
  }

  // No single-bit change anywhere in a datagram of any type may decode.
  void expect_every_flipped_byte_rejected() {
    for_each_sample_datagram([&](const std::vector<std::uint8_t>& good) {
      for (std::size_t i = 0; i < good.size(); ++i) {
        auto bad = good;
        bad[i] ^= 0x01;
        EXPECT_FALSE(decode(bad).ok()) << "byte " << i << " flipped was accepted";
      }
    });
  }

 private:
  std::vector<std::uint8_t> datagram_;  // round_trip's, which its result may point into
};

}  // namespace nomq::test
