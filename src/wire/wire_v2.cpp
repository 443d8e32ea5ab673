// Wire v2: one IV, HMAC-SHA256 over everything before it, names inside the ciphertext
// (docs/protocol.md).
#include <algorithm>
#include <cstring>

#include "wire/seal.hpp"
#include "wire/utf8.hpp"
#include "wire/wire_internal.hpp"

namespace nomq::detail::wire {

using nomq::wire::kHeaderSize;
using nomq::wire::kMacSize;
using nomq::wire::kMaxChannelName;

namespace {

constexpr bool has_name(PacketType t) noexcept {
  return t == PacketType::publish || t == PacketType::subscribe || t == PacketType::unsubscribe;
}

constexpr std::size_t kV2PublishPrefix = 5;  // u32 message_id, u8 name_len

}  // namespace

namespace {

// PUBLISH, SUBSCRIBE, UNSUBSCRIBE: a length-prefixed channel name, then for PUBLISH the
// message; seal() sizes the rest.
std::size_t v2_named_plaintext_size(const Packet& p) noexcept {
  if (p.type != PacketType::publish) return 1 + p.body.channel.size();
  return kV2PublishPrefix + p.body.channel.size() + p.body.message.size();
}

// PUBLISH, SUBSCRIBE, UNSUBSCRIBE: the channel name travels inside the ciphertext.
void write_v2_named_body(const Packet& p, std::uint8_t* pt) noexcept {
  const std::string_view name = p.body.channel;
  if (p.type != PacketType::publish) {
    pt[0] = static_cast<std::uint8_t>(name.size());
    std::memcpy(pt + 1, name.data(), name.size());
    return;
  }
  store_be32(pt, p.body.message_id);
  pt[4] = static_cast<std::uint8_t>(name.size());
  std::memcpy(pt + kV2PublishPrefix, name.data(), name.size());
  if (!p.body.message.empty()) {
    std::memcpy(pt + kV2PublishPrefix + name.size(), p.body.message.data(), p.body.message.size());
  }
}

}  // namespace

// One IV (in the header only), HMAC-SHA256.
constinit const Frame kV2Frame{2, false, MacKind::hmac_sha256, &v2_named_plaintext_size,
                               &write_v2_named_body};

Result<std::size_t> encode_v2(const Packet& p, Crypto& crypto, MutableBytes out) noexcept {
  const std::string_view name = p.body.channel;
  if (has_name(p.type)) {
    if (name.size() > kMaxChannelName) return Errc::channel_name_too_long;
    // Receivers reject these with bad_body; refuse to send what nobody can accept.
    if (name.empty() || !is_valid_utf8(as_bytes(name))) return Errc::invalid_argument;
  }
  return seal(p, crypto, kV2Frame, out);
}

namespace {

// A name read from a body must be non-empty UTF-8 and hash to the header's channel id, so
// that a receiver can trust channel_id without hashing again.
bool name_matches(Crypto& crypto, Bytes name, const nomq::wire::ChannelId& id,
                  std::span<const nomq::wire::KnownChannel> known) noexcept {
  if (name.empty() || !is_valid_utf8(name)) return false;
  // A pair the caller hashed already (its subscriptions): the tag is a third of the cost
  // of opening a small packet, and the answer is the same.
  for (const auto& k : known) {
    if (k.id == id && as_string_view(name) == k.name) return true;
  }
  const Digest h = crypto.channel_tag(name);  // keyed under a channel key (§14.4)
  return std::equal(id.begin(), id.end(), h.begin());
}

Errc parse_v2_body(Crypto& crypto, Bytes pt, Packet& p,
                   std::span<const nomq::wire::KnownChannel> known) noexcept {
  const std::size_t n = pt.size();
  switch (p.type) {
    case PacketType::publish: {
      if (n < kV2PublishPrefix) return Errc::bad_body;
      const std::size_t name_len = pt[4];
      if (n - kV2PublishPrefix < name_len) return Errc::bad_body;
      const Bytes name = pt.subspan(kV2PublishPrefix, name_len);
      if (!name_matches(crypto, name, p.channel_id, known)) return Errc::bad_body;
      p.body.message_id = load_be32(pt.data());
      p.body.channel = as_string_view(name);
      p.body.message = pt.subspan(kV2PublishPrefix + name_len);
      return Errc::ok;
    }
    case PacketType::subscribe:
    case PacketType::unsubscribe: {
      if (n < 1 || n - 1 != pt[0]) return Errc::bad_body;
      const Bytes name = pt.subspan(1);
      if (!name_matches(crypto, name, p.channel_id, known)) return Errc::bad_body;
      p.body.channel = as_string_view(name);
      return Errc::ok;
    }
    case PacketType::ack:
    case PacketType::pubrec:
    case PacketType::pubrel:
    case PacketType::pubcomp:
      if (n != 4) return Errc::bad_body;
      p.body.acked_id = load_be32(pt.data());
      return Errc::ok;
    case PacketType::heartbeat:
      return n == 0 ? Errc::ok : Errc::bad_body;
  }
  return Errc::bad_type;
}

}  // namespace

Result<Packet> decode_v2(Bytes d, Crypto& crypto, const nomq::wire::DecodeOptions& o,
                         MutableBytes scratch) noexcept {
  const std::size_t n = d.size();
  if (n < nomq::wire::kV2MinDatagram) return Errc::too_short;
  // encode never makes a datagram above kMaxDatagram; refusing them here keeps decode the
  // exact inverse and bounds the bytes an unauthenticated sender makes us MAC.
  if (n > nomq::wire::kMaxDatagram) return Errc::bad_length;
  if (load_be16(d.data() + kOffMagic) != nomq::wire::kMagic) return Errc::bad_magic;
  if (d[kOffVersion] != 2) return Errc::bad_version;
  if (!is_valid_type(d[kOffType])) return Errc::bad_type;
  const std::size_t ct_size = load_be16(d.data() + kOffLength);
  if (kHeaderSize + ct_size + kMacSize != n) return Errc::bad_length;
  if (ct_size == 0 || ct_size % kBlockSize != 0) return Errc::bad_block_size;

  // Constant-time MAC check before anything touches the ciphertext.
  const std::size_t mac_at = kHeaderSize + ct_size;
  const Digest mac = crypto.hmac_sha256(d.first(mac_at));
  if (!crypto.mac_equal(Bytes{mac}, d.subspan(mac_at, kMacSize))) return Errc::bad_mac;

  Packet p;
  p.version = WireVersion::v2;
  read_header(d.data(), p);
  if (o.check_timestamp && !timestamp_fresh(p.timestamp, o)) return Errc::stale_timestamp;
  if (scratch.size() < ct_size) return Errc::buffer_too_small;

  if (!crypto.cbc_decrypt(p.iv, d.subspan(kHeaderSize, ct_size), scratch.first(ct_size))) {
    return Errc::crypto_failure;
  }
  const std::size_t pt_size = strip_pkcs7(scratch.first(ct_size));
  if (pt_size > ct_size) return Errc::bad_padding;
  const Bytes pt = scratch.first(pt_size);
  p.plaintext = pt;
  if (const Errc e = parse_v2_body(crypto, pt, p, o.known_channels); e != Errc::ok) return e;
  return p;
}

}  // namespace nomq::detail::wire
