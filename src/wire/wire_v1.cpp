// Wire v1: byte-exact with the MicroPython original (tests/vectors/LEGACY-WIRE-FORMAT.md).
#include <cstring>

#include "wire/seal.hpp"
#include "wire/utf8.hpp"
#include "wire/wire_internal.hpp"

namespace nomq::detail::wire {

using nomq::wire::kHeaderSize;
using nomq::wire::kMacSize;
using nomq::wire::V1Layout;

namespace {

// PUBLISH (either layout), SUBSCRIBE, UNSUBSCRIBE; seal() sizes the rest.
std::size_t v1_named_plaintext_size(const Packet& p) noexcept {
  if (p.type != PacketType::publish) return p.body.channel.size();
  return (p.body.v1_layout == V1Layout::device16 ? kV1InnerHeader : kV1Gap20Offset) +
         p.body.message.size();
}

// PUBLISH (either layout), SUBSCRIBE, UNSUBSCRIBE; seal() writes the rest.
void write_v1_named_body(const Packet& p, std::uint8_t* pt) noexcept {
  if (p.type != PacketType::publish) {
    if (!p.body.channel.empty()) std::memcpy(pt, p.body.channel.data(), p.body.channel.size());
    return;
  }
  store_be64(pt, p.body.inner_timestamp);
  store_be32(pt + 8, p.body.message_id);
  store_be32(pt + 12, static_cast<std::uint32_t>(p.body.message.size()));
  std::size_t at = kV1InnerHeader;
  if (p.body.v1_layout == V1Layout::gap20) {
    std::memset(pt + at, 0, kV1Gap20Offset - kV1InnerHeader);
    at = kV1Gap20Offset;
  }
  if (!p.body.message.empty()) std::memcpy(pt + at, p.body.message.data(), p.body.message.size());
}

}  // namespace

// The IV is repeated before the ciphertext (L counts it) and the MAC is the original's keyed
// SHA-256.
constinit const Frame kV1Frame{1, true, MacKind::keyed_sha256, &v1_named_plaintext_size,
                               &write_v1_named_body};

Result<std::size_t> encode_v1(const Packet& p, Crypto& crypto, MutableBytes out) noexcept {
  if (p.type == PacketType::publish) {
    // Every original receiver drops a non-UTF-8 message; refuse it here rather than lose it.
    if (!is_valid_utf8(p.body.message)) return Errc::invalid_argument;
    if (p.body.v1_layout != V1Layout::gap20 && p.body.v1_layout != V1Layout::device16) {
      return Errc::invalid_argument;
    }
  }
  return seal(p, crypto, kV1Frame, out);
}

namespace {

// The v1 PUBLISH plaintext, either layout (docs/protocol.md, "v1 PUBLISH").
Errc parse_v1_publish(Bytes pt, Packet& p) noexcept {
  const std::size_t n = pt.size();
  if (n < kV1InnerHeader) return Errc::publish_payload_short;
  const std::uint64_t msg_len = load_be32(pt.data() + 12);
  std::size_t at = 0;
  if (n >= kV1Gap20Offset && msg_len <= n - kV1Gap20Offset) {
    // The layout every receiver since ea96327 reads; bytes after the message are ignored,
    // as the original does.
    at = kV1Gap20Offset;
    p.body.v1_layout = V1Layout::gap20;
  } else if (n == kV1InnerHeader + msg_len) {
    // The original sender's layout; a gap20 plaintext never has this length.
    at = kV1InnerHeader;
    p.body.v1_layout = V1Layout::device16;
  } else if (n < kV1Gap20Offset) {
    return Errc::publish_payload_short;
  } else {
    return Errc::publish_bad_msg_len;
  }
  const Bytes message = pt.subspan(at, static_cast<std::size_t>(msg_len));
  if (!is_valid_utf8(message)) return Errc::publish_bad_utf8;
  p.body.inner_timestamp = load_be64(pt.data());
  p.body.message_id = load_be32(pt.data() + 8);
  p.body.message = message;
  return Errc::ok;
}

}  // namespace

Result<Packet> decode_v1(Bytes d, Crypto& crypto, const nomq::wire::DecodeOptions& o,
                         MutableBytes scratch) noexcept {
  const std::size_t n = d.size();
  if (n < nomq::wire::kV1MinDatagram) return Errc::too_short;
  // The original reads into a 2048-byte buffer: nothing longer is a v1 datagram, and the
  // length field (up to 65535) must not make us MAC 64 KiB of attacker bytes.
  if (n > nomq::wire::kMaxDatagram) return Errc::bad_length;
  if (load_be16(d.data() + kOffMagic) != nomq::wire::kMagic) return Errc::bad_magic;
  if (d[kOffVersion] != 1) return Errc::bad_version;
  const std::size_t payload_len = load_be16(d.data() + kOffLength);
  if (payload_len < kIvSize || n < kHeaderSize + payload_len + kMacSize) return Errc::bad_length;

  // The MAC field is everything after the payload (the original's reading), so any extra
  // byte makes it fail. MAC before timestamp: unauthenticated bytes get no further.
  const std::size_t mac_at = kHeaderSize + payload_len;
  if (n - mac_at != kMacSize) return Errc::bad_mac;
  const Digest mac = crypto.keyed_sha256(d.first(mac_at));
  if (!crypto.mac_equal(Bytes{mac}, d.subspan(mac_at))) return Errc::bad_mac;

  Packet p;
  p.version = WireVersion::v1;
  read_header(d.data(), p);
  if (o.check_timestamp && !timestamp_fresh(p.timestamp, o)) return Errc::stale_timestamp;

  const std::size_t ct_size = payload_len - kIvSize;
  if (ct_size == 0) return Errc::empty_plaintext;
  if (ct_size % kBlockSize != 0) return Errc::bad_block_size;
  if (scratch.size() < ct_size) return Errc::buffer_too_small;

  Iv payload_iv;  // decryption uses the payload copy, as the original does
  std::memcpy(payload_iv.data(), d.data() + kHeaderSize, kIvSize);
  const Bytes ct = d.subspan(kHeaderSize + kIvSize, ct_size);
  if (!crypto.cbc_decrypt(payload_iv, ct, scratch.first(ct_size))) return Errc::crypto_failure;
  const std::size_t pt_size = strip_pkcs7(scratch.first(ct_size));
  if (pt_size > ct_size) return Errc::bad_padding;
  const Bytes pt = scratch.first(pt_size);
  p.plaintext = pt;

  if (!is_valid_type(static_cast<std::uint8_t>(p.type))) return Errc::bad_type;
  switch (p.type) {
    case PacketType::publish:
      if (const Errc e = parse_v1_publish(pt, p); e != Errc::ok) return e;
      break;
    case PacketType::subscribe:
    case PacketType::unsubscribe:
      p.body.channel = as_string_view(pt);
      break;
    case PacketType::ack:
    case PacketType::pubrec:
    case PacketType::pubrel:
    case PacketType::pubcomp:
      if (pt_size < 4) return Errc::bad_body;
      p.body.acked_id = load_be32(pt.data());  // later bytes ignored, as the original
      break;
    case PacketType::heartbeat:
      break;  // the original never reads a heartbeat's plaintext
  }
  return p;
}

}  // namespace nomq::detail::wire
