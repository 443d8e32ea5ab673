// The codec's public entry points and the pieces v1 and v2 share.
#include "nomq/wire.hpp"

#include <algorithm>
#include <cstring>

#include "wire/seal.hpp"
#include "wire/wire_internal.hpp"

namespace nomq {

std::string_view to_string(WireVersion v) noexcept {
  switch (v) {
    case WireVersion::v1: return "v1";
    case WireVersion::v2: return "v2";
  }
  return "unknown";
}

namespace wire {

std::string_view to_string(PacketType t) noexcept {
  switch (t) {
    case PacketType::publish: return "PUBLISH";
    case PacketType::subscribe: return "SUBSCRIBE";
    case PacketType::ack: return "ACK";
    case PacketType::unsubscribe: return "UNSUBSCRIBE";
    case PacketType::heartbeat: return "HEARTBEAT";
    case PacketType::pubrec: return "PUBREC";
    case PacketType::pubrel: return "PUBREL";
    case PacketType::pubcomp: return "PUBCOMP";
  }
  return "UNKNOWN";
}

std::string_view to_string(V1Layout l) noexcept {
  switch (l) {
    case V1Layout::gap20: return "gap20";
    case V1Layout::device16: return "device16";
  }
  return "unknown";
}

ChannelId channel_id(Crypto& crypto, std::string_view name) noexcept {
  const Digest d = crypto.channel_tag(as_bytes(name));
  ChannelId id{};
  std::copy_n(d.begin(), id.size(), id.begin());
  return id;
}

std::size_t encoded_size(const Packet& p) noexcept {
  if (!detail::wire::is_valid_type(static_cast<std::uint8_t>(p.type))) return 0;
  switch (p.version) {
    case WireVersion::v1: return detail::wire::sealed_size(detail::wire::kV1Frame, p);
    case WireVersion::v2: return detail::wire::sealed_size(detail::wire::kV2Frame, p);
  }
  return 0;
}

Result<std::size_t> encode(const Packet& p, Crypto& crypto, MutableBytes out) noexcept {
  if (!detail::wire::is_valid_type(static_cast<std::uint8_t>(p.type))) return Errc::invalid_argument;
  switch (p.version) {
    case WireVersion::v1: return detail::wire::encode_v1(p, crypto, out);
    case WireVersion::v2: return detail::wire::encode_v2(p, crypto, out);
  }
  return Errc::invalid_argument;
}

Result<Packet> decode(Bytes datagram, Crypto& crypto, const DecodeOptions& options,
                      MutableBytes scratch) noexcept {
  switch (options.version) {
    case WireVersion::v1: return detail::wire::decode_v1(datagram, crypto, options, scratch);
    case WireVersion::v2: return detail::wire::decode_v2(datagram, crypto, options, scratch);
  }
  return Errc::invalid_argument;
}

std::uint8_t peek_version(Bytes datagram) noexcept {
  if (datagram.size() < 3 || load_be16(datagram.data()) != kMagic) return 0;
  return datagram[detail::wire::kOffVersion];
}

std::optional<HeaderView> peek_header(Bytes datagram) noexcept {
  using namespace detail::wire;
  if (datagram.size() < kOffChannelId + std::tuple_size_v<ChannelId> || load_be16(datagram.data()) != kMagic) {
    return std::nullopt;
  }
  const std::uint8_t* d = datagram.data();
  HeaderView h;
  h.version = d[kOffVersion];
  h.type = d[kOffType];
  h.flags = d[kOffFlags];
  h.packet_id = load_be32(d + kOffPacketId);
  h.session_id = load_be32(d + kOffSessionId);
  h.ttl = load_be16(d + kOffTtl);
  h.timestamp = load_be32(d + kOffTimestamp);
  std::copy_n(d + kOffChannelId, h.channel_id.size(), h.channel_id.begin());
  return h;
}

std::optional<std::uint32_t> peek_session_id(Bytes datagram) noexcept {
  using namespace detail::wire;
  if (datagram.size() < kOffSessionId + 4 || load_be16(datagram.data()) != kMagic) return std::nullopt;
  return load_be32(datagram.data() + kOffSessionId);
}

std::optional<ChannelId> peek_channel_id(Bytes datagram) noexcept {
  ChannelId id{};
  if (datagram.size() < detail::wire::kOffChannelId + id.size()) return std::nullopt;
  std::memcpy(id.data(), datagram.data() + detail::wire::kOffChannelId, id.size());
  return id;
}

}  // namespace wire

namespace detail::wire {

void write_header(const Packet& p, std::uint8_t version, std::uint16_t length,
                  std::uint8_t* out) noexcept {
  store_be16(out + kOffMagic, nomq::wire::kMagic);
  out[kOffVersion] = version;
  out[kOffType] = static_cast<std::uint8_t>(p.type);
  out[kOffFlags] = p.flags;
  store_be32(out + kOffPacketId, p.packet_id);
  store_be32(out + kOffSessionId, p.session_id);
  store_be16(out + kOffTtl, p.ttl);
  std::memcpy(out + kOffIv, p.iv.data(), kIvSize);
  store_be32(out + kOffTimestamp, p.timestamp);
  std::memcpy(out + kOffChannelId, p.channel_id.data(), p.channel_id.size());
  store_be16(out + kOffLength, length);
}

void read_header(const std::uint8_t* d, Packet& p) noexcept {
  p.type = static_cast<PacketType>(d[kOffType]);
  p.flags = d[kOffFlags];
  p.packet_id = load_be32(d + kOffPacketId);
  p.session_id = load_be32(d + kOffSessionId);
  p.ttl = load_be16(d + kOffTtl);
  std::memcpy(p.iv.data(), d + kOffIv, kIvSize);
  p.timestamp = load_be32(d + kOffTimestamp);
  std::memcpy(p.channel_id.data(), d + kOffChannelId, p.channel_id.size());
}

void add_pkcs7(std::uint8_t* buf, std::size_t plaintext_size) noexcept {
  const std::size_t pad = kBlockSize - plaintext_size % kBlockSize;
  std::memset(buf + plaintext_size, static_cast<int>(pad), pad);
}

std::size_t strip_pkcs7(Bytes padded) noexcept {
  const std::size_t n = padded.size();
  const std::uint8_t pad = padded[n - 1];
  if (pad == 0 || pad > kBlockSize) return n + 1;
  for (std::size_t i = n - pad; i < n; ++i) {
    if (padded[i] != pad) return n + 1;
  }
  return n - pad;
}

bool timestamp_fresh(std::uint32_t timestamp, const nomq::wire::DecodeOptions& o) noexcept {
  constexpr std::int64_t kUs = 1'000'000;
  const std::int64_t sent_us =
      (static_cast<std::int64_t>(timestamp) + static_cast<std::int64_t>(o.epoch_offset)) * kUs;
  const std::int64_t now_us = o.wall.time_since_epoch().count();
  // Unsigned difference: cannot overflow whatever clock the caller passes.
  const std::uint64_t diff = now_us >= sent_us
                                 ? static_cast<std::uint64_t>(now_us) - static_cast<std::uint64_t>(sent_us)
                                 : static_cast<std::uint64_t>(sent_us) - static_cast<std::uint64_t>(now_us);
  return diff <= static_cast<std::uint64_t>(o.timestamp_window_s) * static_cast<std::uint64_t>(kUs);
}

Errc check_out(std::size_t size, std::size_t out_size) noexcept {
  if (size > nomq::wire::kMaxDatagram) return Errc::message_too_large;
  if (out_size < size) return Errc::buffer_too_small;
  return Errc::ok;
}

}  // namespace detail::wire
}  // namespace nomq
