// libFuzzer target: wire v1 decode with the original's sample keys and a fixed clock, so that
// the seeds (legacy-v1.json packets, negative and quirk vectors) reach every check behind the
// MAC. Property: whatever decodes re-encodes (with the payload IV) into a datagram that decodes
// to the same fields. v1 has no canonical encoding (two IV copies, ignored trailing plaintext),
// so the round trip is checked on the decoded fields, not on the bytes. As in the v2 target,
// each input is decoded as it is, with its keyed hash recomputed, and with the region after the
// payload IV encrypted in place first (the fuzzer then writes v1 plaintexts directly).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_support.hpp"
#include "nomq/wire.hpp"

namespace {

bool same_bytes(nomq::Bytes a, nomq::Bytes b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

using namespace nomq;

Crypto& group_crypto() {
  static fuzz::FuzzCrypto c{fuzz::kV1EncKey, fuzz::kV1HmacKey};
  return c.crypto();
}

void check_one(const std::uint8_t* data, std::size_t size) {
  Crypto& crypto = group_crypto();
  static std::array<std::uint8_t, 65536 + 128> scratch;
  static std::array<std::uint8_t, 65536 + 128> scratch2;
  static std::array<std::uint8_t, wire::kMaxDatagram> out;

  wire::DecodeOptions options;
  options.version = WireVersion::v1;
  options.wall = fuzz::wall_at(fuzz::kFixedNow);
  const Result<wire::Packet> r = wire::decode(Bytes{data, size}, crypto, options, scratch);
  if (!r.ok()) {
    NOMQ_FUZZ_CHECK(r.error() != Errc::ok && r.error() != Errc::crypto_failure &&
                    r.error() != Errc::buffer_too_small);
    return;
  }
  wire::Packet p = *r;
  NOMQ_FUZZ_CHECK(p.version == WireVersion::v1);
  std::memcpy(p.iv.data(), data + wire::kHeaderSize, kIvSize);  // the copy decryption used
  const Result<std::size_t> n = wire::encode(p, crypto, out);
  if (!n.ok()) {
    // Only a message longer than a sender may produce (v1 decode has no size cap of its own;
    // the engine drops datagrams above kMaxDatagram first).
    NOMQ_FUZZ_CHECK(n.error() == Errc::message_too_large && size > wire::kMaxDatagram);
    return;
  }
  const Result<wire::Packet> again =
      wire::decode(Bytes{out.data(), *n}, crypto, options, scratch2);
  NOMQ_FUZZ_CHECK(again.ok());
  const wire::Packet& q = *again;
  NOMQ_FUZZ_CHECK(q.type == p.type && q.flags == p.flags && q.packet_id == p.packet_id &&
                  q.session_id == p.session_id && q.ttl == p.ttl && q.timestamp == p.timestamp &&
                  q.channel_id == p.channel_id);
  switch (p.type) {
    case wire::PacketType::publish:
      NOMQ_FUZZ_CHECK(q.body.message_id == p.body.message_id);
      NOMQ_FUZZ_CHECK(q.body.inner_timestamp == p.body.inner_timestamp);
      NOMQ_FUZZ_CHECK(q.body.v1_layout == p.body.v1_layout);
      NOMQ_FUZZ_CHECK(same_bytes(q.body.message, p.body.message));
      break;
    case wire::PacketType::subscribe:
    case wire::PacketType::unsubscribe:
      NOMQ_FUZZ_CHECK(q.body.channel == p.body.channel);
      break;
    case wire::PacketType::heartbeat:
      break;
    default:
      NOMQ_FUZZ_CHECK(q.body.acked_id == p.body.acked_id);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::vector<std::uint8_t> copy;
  check_one(data, size);
  if (size < wire::kHeaderSize + kIvSize + wire::kMacSize) return 0;
  const std::size_t mac_at = size - wire::kMacSize;
  copy.assign(data, data + size);
  Digest mac = group_crypto().keyed_sha256(Bytes{copy.data(), mac_at});
  std::copy(mac.begin(), mac.end(), copy.begin() + static_cast<std::ptrdiff_t>(mac_at));
  check_one(copy.data(), copy.size());
  const std::size_t ct_at = wire::kHeaderSize + kIvSize;
  const std::size_t body = mac_at - ct_at;
  if (body == 0 || body % kBlockSize != 0) return 0;
  Iv iv;
  std::copy_n(copy.begin() + static_cast<std::ptrdiff_t>(wire::kHeaderSize), kIvSize, iv.begin());
  MutableBytes region{copy.data() + ct_at, body};
  if (!group_crypto().cbc_encrypt(iv, region, region)) return 0;
  mac = group_crypto().keyed_sha256(Bytes{copy.data(), mac_at});
  std::copy(mac.begin(), mac.end(), copy.begin() + static_cast<std::ptrdiff_t>(mac_at));
  check_one(copy.data(), copy.size());
  return 0;
}
