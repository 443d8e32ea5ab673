// libFuzzer target: wire v1 decode with the original's sample keys and a fixed clock, so that
// the seeds (legacy-v1.json packets, negative and quirk vectors) reach every check behind the
// MAC. Property: whatever decodes re-encodes (with the payload IV) into a datagram that decodes
// to the same fields. v1 has no canonical encoding (two IV copies, ignored trailing plaintext),
// so the round trip is checked on the decoded fields, not on the bytes.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_support.hpp"
#include "nomq/wire.hpp"

namespace {

bool same_bytes(nomq::Bytes a, nomq::Bytes b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nomq;
  static fuzz::FuzzCrypto crypto{fuzz::kV1EncKey, fuzz::kV1HmacKey};
  static std::array<std::uint8_t, 65536 + 128> scratch;
  static std::array<std::uint8_t, 65536 + 128> scratch2;
  static std::array<std::uint8_t, wire::kMaxDatagram> out;

  wire::DecodeOptions options;
  options.version = WireVersion::v1;
  options.now = fuzz::kFixedNow;
  const Result<wire::Packet> r = wire::decode(Bytes{data, size}, crypto, options, scratch);
  if (!r.ok()) {
    NOMQ_FUZZ_CHECK(r.error() != Errc::ok && r.error() != Errc::crypto_failure &&
                    r.error() != Errc::buffer_too_small);
    return 0;
  }
  wire::Packet p = *r;
  NOMQ_FUZZ_CHECK(p.version == WireVersion::v1);
  std::memcpy(p.iv.data(), data + wire::kHeaderSize, kIvSize);  // the copy decryption used
  const Result<std::size_t> n = wire::encode(p, crypto, out);
  if (!n.ok()) {
    // Only a message longer than a sender may produce (v1 decode has no size cap of its own;
    // the engine drops datagrams above kMaxDatagram first).
    NOMQ_FUZZ_CHECK(n.error() == Errc::message_too_large && size > wire::kMaxDatagram);
    return 0;
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
  return 0;
}
