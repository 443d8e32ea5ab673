// On the target, with the mbedTLS backend: every v1 vector (tests/vectors/legacy-v1.json
// "packet_vectors") and every v2 known-answer packet (v2-kat.json) decoded at a clock where it
// is fresh to its recorded plaintext, its channel id recomputed from its name, and the decoded
// packet re-encoded byte for byte. The vectors come in as arrays (gen_wire_vectors.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "mcu/target_crypto.hpp"
#include "nomq/wire.hpp"

namespace nomq {
namespace {

struct Span {
  const std::uint8_t* data;
  std::size_t size;
  Bytes bytes() const { return Bytes{data, size}; }
};

struct WireVector {
  const char* name;
  WireVersion version;
  std::uint8_t encryption_key[kKeySize];
  std::uint8_t hmac_key[kKeySize];
  std::int64_t clock_us;
  std::uint32_t epoch_offset;
  Span packet;
  Span plaintext;
  const char* channel;  // nullptr: the packet names no channel
};

#include "wire_vectors.inc"

bool same(Bytes a, Bytes b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

std::array<std::uint8_t, wire::kMaxDatagram> g_scratch;
std::array<std::uint8_t, wire::kMaxDatagram> g_out;

void check_vector(const WireVector& v) {
  auto crypto = mcu_test::make_target_crypto(Bytes{v.encryption_key, kKeySize},
                                            Bytes{v.hmac_key, kKeySize});
  ASSERT_TRUE(crypto != nullptr) << v.name;
  wire::DecodeOptions options;
  options.version = v.version;
  options.wall = WallTime{Duration{v.clock_us}};
  options.epoch_offset = v.epoch_offset;
  const auto decoded = wire::decode(v.packet.bytes(), *crypto, options, g_scratch);
  ASSERT_TRUE(decoded.ok()) << v.name << ": " << decoded.error();
  const wire::Packet& p = *decoded;
  EXPECT_TRUE(same(p.plaintext, v.plaintext.bytes())) << v.name << ": plaintext";
  if (v.channel != nullptr) {
    EXPECT_TRUE(wire::channel_id(*crypto, v.channel) == p.channel_id) << v.name << ": channel id";
  }
  const auto n = wire::encode(p, *crypto, g_out);
  ASSERT_TRUE(n.ok()) << v.name << ": " << n.error();
  EXPECT_TRUE(same(Bytes{g_out.data(), *n}, v.packet.bytes())) << v.name << ": re-encoded";
}

TEST(TargetWireVectors, EveryV1VectorAndV2KnownAnswerPacketRoundTrips) {
  std::size_t v1 = 0, v2 = 0;
  for (const WireVector& v : kWireVectors) {
    check_vector(v);
    ++(v.version == WireVersion::v1 ? v1 : v2);
  }
  EXPECT_EQ(v1, 29u);
  EXPECT_EQ(v2, 19u);
}

}  // namespace
}  // namespace nomq
