// The wire codec, v1 (byte-exact with the MicroPython original) and v2 (secure, default).
// Bytes <-> structs, no I/O, no allocation, no exceptions, no OS headers. docs/protocol.md is the
// normative byte-level description; this header is its API.
#pragma once

#include "nomq/export.hpp"

#include <array>
#include <optional>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "nomq/bytes.hpp"
#include "nomq/crypto.hpp"
#include "nomq/error.hpp"
#include "nomq/time.hpp"

namespace nomq {

enum class WireVersion : std::uint8_t { v1 = 1, v2 = 2 };

enum class Qos : std::uint8_t { at_most_once = 0, at_least_once = 1, exactly_once = 2 };

NOMQ_EXPORT std::string_view to_string(WireVersion v) noexcept;  // "v1", "v2"

namespace wire {

inline constexpr std::uint16_t kMagic = 0x4E4D;  // "NM"
inline constexpr std::size_t kHeaderSize = 53;    // control 15 + security 20 + data header 18
inline constexpr std::size_t kMacSize = 32;
inline constexpr std::size_t kV1MinDatagram = 85;   // the original receiver's floor
inline constexpr std::size_t kV2MinDatagram = 101;  // header + one cipher block + MAC
inline constexpr std::size_t kMaxDatagram = 2048;   // the original's receive buffer
inline constexpr std::size_t kMaxChannelName = 255; // v2 carries the name with a 1-byte length
inline constexpr std::uint16_t kV1DefaultTtl = 3600;

enum class PacketType : std::uint8_t {
  publish = 0x01,
  subscribe = 0x02,
  ack = 0x03,
  unsubscribe = 0x04,
  heartbeat = 0x05,
  pubrec = 0x06,
  pubrel = 0x07,
  pubcomp = 0x08,
};
NOMQ_EXPORT std::string_view to_string(PacketType t) noexcept;  // "PUBLISH", "SUBSCRIBE", ...
constexpr bool is_ack_type(PacketType t) noexcept {
  return t == PacketType::ack || t == PacketType::pubrec || t == PacketType::pubrel ||
         t == PacketType::pubcomp;
}

using ChannelId = std::array<std::uint8_t, 16>;

// crypto.channel_tag(UTF-8 name)[0:16]: SHA-256(name)[0:16] for v1 and v2 group channels,
// HMAC-SHA256(channel tag key, name)[0:16] under a v2 channel key (docs/protocol.md §14.4).
NOMQ_EXPORT ChannelId channel_id(Crypto& crypto, std::string_view name) noexcept;

// v2 channel keys (docs/protocol.md §14.4): the flags bit that marks a datagram sealed with a
// channel key instead of the group's keys (authenticated with the rest of the header). Bit 3
// (0x08) on PUBLISH, UNSUBSCRIBE, ACK, PUBREC, PUBREL, PUBCOMP; bit 2 (0x04) on SUBSCRIBE,
// whose bit 3 is want-retained; none on HEARTBEAT (always the group's keys). 0 for an
// invalid type.
constexpr std::uint8_t channel_key_flag(PacketType t) noexcept {
  switch (t) {
    case PacketType::subscribe: return 0x04;
    case PacketType::heartbeat: return 0x00;
    case PacketType::publish:
    case PacketType::unsubscribe:
    case PacketType::ack:
    case PacketType::pubrec:
    case PacketType::pubrel:
    case PacketType::pubcomp: return 0x08;
  }
  return 0x00;
}
// Whether a v2 datagram of type `t` with flags `f` says it is sealed with a channel key.
constexpr bool flags_channel_key(PacketType t, std::uint8_t f) noexcept {
  return (f & channel_key_flag(t)) != 0;
}

// --- topic filters (MQTT rules, docs/protocol.md §13): levels separated by '/'; '+' is one
// whole level, '#' the rest (last, whole level; "a/#" also matches "a"); a filter starting
// with a wildcard does not match a name starting with '$'. Channel names for publishing
// contain neither.
// The name contains '+' or '#' (a filter, not a channel to publish on).
NOMQ_EXPORT bool is_filter(std::string_view name) noexcept;
// Non-empty, and every '+'/'#' fills its level; '#' only as the last level.
NOMQ_EXPORT bool valid_filter(std::string_view filter) noexcept;
// `name` (a channel, no wildcards) matches `filter` (valid, or an exact name). O(size), no
// allocation.
NOMQ_EXPORT bool filter_matches(std::string_view filter, std::string_view name) noexcept;

// --- flags byte
constexpr std::uint8_t flags_qos(std::uint8_t f) noexcept { return f & 0x03; }
constexpr bool flags_retain(std::uint8_t f) noexcept { return (f & 0x04) != 0; }
constexpr std::uint8_t flags_priority(std::uint8_t f) noexcept { return f >> 4; }
// v2 SUBSCRIBE: bit 3 asks peers for retained messages (a fresh subscription, not a re-announce).
constexpr bool flags_want_retained(std::uint8_t f) noexcept { return (f & 0x08) != 0; }
inline constexpr std::uint8_t kFlagWantRetained = 0x08;
// v2 HEARTBEAT: bit 3 solicits: every peer that hears it answers with its SUBSCRIBEs, unicast to
// the sender (a freshly started node learns the existing subscribers at once).
constexpr bool flags_solicit(std::uint8_t f) noexcept { return (f & 0x08) != 0; }
inline constexpr std::uint8_t kFlagSolicit = 0x08;
// v2 HEARTBEAT, reachability check (docs/protocol.md §4, the idea of RFC 9175's Echo): bit 2 asks
// the receiver to echo the header's channel_id field (a random token, not a channel) back to
// the sender in a HEARTBEAT with bit 0 set. A node answers only to an endpoint that echoed a
// token it sent there with more than 3x the bytes it received from that endpoint.
inline constexpr std::uint8_t kFlagEchoRequest = 0x04;
inline constexpr std::uint8_t kFlagEchoResponse = 0x01;
constexpr bool flags_echo_request(std::uint8_t f) noexcept { return (f & kFlagEchoRequest) != 0; }
constexpr bool flags_echo_response(std::uint8_t f) noexcept { return (f & kFlagEchoResponse) != 0; }
// The size of a v2 datagram whose body (before padding) is `body` bytes (docs/protocol.md §9).
constexpr std::size_t v2_datagram_size(std::size_t body) noexcept {
  return 85 + 16 * (body / 16 + 1);
}

// PUBLISH flags: (qos & 3) | retain << 2 | clamp(priority, 0, 15) << 4 (both versions; the v2
// SUBSCRIBE uses the same priority position).
constexpr std::uint8_t publish_flags(int qos, bool retain, int priority) noexcept {
  const int p = priority < 0 ? 0 : (priority > 15 ? 15 : priority);
  return static_cast<std::uint8_t>((qos & 3) | (retain ? 0x04 : 0) | (p << 4));
}
// v1 SUBSCRIBE quirk: priority & 0x0F in the LOW nibble, neither clamped nor shifted.
constexpr std::uint8_t v1_subscribe_flags(int priority) noexcept {
  return static_cast<std::uint8_t>(priority & 0x0F);
}

// Which inner layout a v1 PUBLISH uses (LEGACY-WIRE-FORMAT.md §7).
enum class V1Layout : std::uint8_t {
  gap20,     // 16-byte inner header, 4 zero bytes, message at 20: read intact since ea96327
  device16,  // the original sender's layout, message at 16
};
NOMQ_EXPORT std::string_view to_string(V1Layout l) noexcept;  // "gap20", "device16"

// The type-specific content of a packet (the plaintext, parsed). Which fields matter:
//   PUBLISH     v2: message_id, channel (name), message.
//               v1: message_id (= the inner nonce), inner_timestamp, v1_layout, message.
//   SUBSCRIBE, UNSUBSCRIBE: channel (name), both versions.
//   ACK, PUBREC, PUBREL, PUBCOMP: acked_id (v2: the message id; v1: the publish's packet_id).
//   HEARTBEAT: nothing (v2 body is empty; v1 plaintext is empty).
struct Body {
  std::uint32_t message_id = 0;
  std::uint64_t inner_timestamp = 0;
  V1Layout v1_layout = V1Layout::gap20;
  std::string_view channel;
  Bytes message;
  std::uint32_t acked_id = 0;
};

// A whole packet. For encode, the caller fills every field (iv included: the caller draws it,
// which is what makes known-answer tests possible). For decode, views point into the datagram
// and into the caller's scratch buffer and stay valid as long as both do.
struct Packet {
  WireVersion version = WireVersion::v2;
  PacketType type = PacketType::publish;
  std::uint8_t flags = 0;
  std::uint32_t packet_id = 0;   // v2: per-transmission sequence number; v1: as the original
  std::uint32_t session_id = 0;
  std::uint16_t ttl = 0;
  Iv iv{};                       // v1: header copy (decryption uses the payload copy)
  std::uint32_t timestamp = 0;   // wire seconds under the configured epoch
  ChannelId channel_id{};
  Body body;
  Bytes plaintext;               // decode only: the unpadded plaintext

  std::uint8_t qos() const noexcept { return flags_qos(flags); }
  bool retain() const noexcept { return flags_retain(flags); }
  std::uint8_t priority() const noexcept { return flags_priority(flags); }
};

// Upper bound of the encoded size of `p` (exact for v1 and v2). Use it to size buffers.
NOMQ_EXPORT std::size_t encoded_size(const Packet& p) noexcept;

// Encodes, encrypts and MACs `p` into `out`. Returns the datagram length. `p.iv` is used as
// given: draw it from crypto.random_bytes() for every packet. v2: for PUBLISH, SUBSCRIBE and
// UNSUBSCRIBE, `p.channel_id` must be channel_id(crypto, p.body.channel), or every receiver
// rejects the packet (bad_body); encode does not re-hash to check.
// Errors: buffer_too_small (out too small: grow it), channel_name_too_long (v2 name > 255 bytes),
// message_too_large (datagram would exceed kMaxDatagram: shorten the message),
// invalid_argument (unknown type or version; v2 name empty or not UTF-8; v1 PUBLISH message not
// UTF-8, which every original receiver drops), crypto_failure (backend failed: log, drop).
NOMQ_EXPORT Result<std::size_t> encode(const Packet& p, Crypto& crypto, MutableBytes out) noexcept;

// A channel whose id the caller has already computed (typically one of its subscriptions).
struct KnownChannel {
  ChannelId id{};
  std::string_view name;
};

struct DecodeOptions {
  WireVersion version = WireVersion::v2;  // the version this node speaks; the other is bad_version
  WallTime wall{};                         // receiver wall clock for the timestamp window
  std::uint32_t epoch_offset = 0;          // 0 (Unix) or kEpoch2000Offset
  std::uint32_t timestamp_window_s = 30;   // |wall - timestamp| > window -> stale_timestamp
  bool check_timestamp = true;
  // Optional, v2 only, a speed-up with no effect on verdicts: when the header's channel id and
  // the body's name equal one of these pairs, decode skips the SHA-256 of the name. Each pair
  // must be correct (id == channel_id(name)); the caller keeps the names alive during decode.
  std::span<const KnownChannel> known_channels{};
};

// Verifies and decodes one datagram. `scratch` receives the plaintext; datagram.size() bytes
// always suffice (precisely: the ciphertext size, else buffer_too_small after the MAC check).
// Stateless: verdicts that need receiver state (unknown channel, replay) belong to the engine.
// Every error but buffer_too_small, invalid_argument (unknown options.version) and
// crypto_failure names why a hostile or foreign datagram was dropped: count it, drop it.
// Both versions: a datagram longer than kMaxDatagram is bad_length, checked right after
// too_short (before the magic), so oversized garbage and oversized valid-looking packets are
// counted alike.
// v2 check order: too_short, bad_length (size cap), bad_magic, bad_version, bad_type, bad_length, bad_block_size,
//   bad_mac (constant time, before any decryption), stale_timestamp, bad_padding, bad_body.
// v1 check order (the original's verdicts; docs/protocol.md): too_short, bad_length (size
//   cap), bad_magic, bad_version,
//   bad_length, bad_mac, stale_timestamp, bad_block_size, empty_plaintext, bad_padding, bad_type,
//   then publish_payload_short / publish_bad_msg_len / publish_bad_utf8, bad_body.
NOMQ_EXPORT Result<Packet> decode(Bytes datagram, Crypto& crypto, const DecodeOptions& options,
                      MutableBytes scratch) noexcept;

// Reads the version byte of a datagram without verifying anything (0 if too short or no magic).
NOMQ_EXPORT std::uint8_t peek_version(Bytes datagram) noexcept;

// The fixed header fields every version shares (magic through channel id), read without
// verifying anything. They are authentic only after decode() has checked the MAC: a verdict of
// stale_timestamp (checked after the MAC in both versions) means the header is genuine and only
// the sender's clock disagrees. nullopt when the datagram is shorter than the header or lacks
// the magic.
struct HeaderView {
  std::uint8_t version = 0;
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint32_t packet_id = 0;
  std::uint32_t session_id = 0;
  std::uint16_t ttl = 0;
  std::uint32_t timestamp = 0;
  ChannelId channel_id{};
};
NOMQ_EXPORT std::optional<HeaderView> peek_header(Bytes datagram) noexcept;
// Reads the header's channel id without verifying anything (nullopt if the datagram is too
// short to hold it). Unauthenticated: use it only to pick what decode() compares against
// (DecodeOptions::known_channels).
NOMQ_EXPORT std::optional<ChannelId> peek_channel_id(Bytes datagram) noexcept;
// Reads the header's session id without verifying anything (nullopt if too short or no magic).
NOMQ_EXPORT std::optional<std::uint32_t> peek_session_id(Bytes datagram) noexcept;

// v2 key epochs (docs/protocol.md §6.1): the top two bits of a v2 session id carry the sender's
// key epoch mod 4 (the epoch tag); the other 30 bits are random. The session id is under the
// MAC, so the tag is authenticated once the MAC verifies; a receiver picks the key set by the
// tag before verifying (no trial decryption). The byte layout is unchanged.
inline constexpr unsigned kEpochTagShift = 30;
inline constexpr std::uint32_t kSessionRandomMask = (1u << kEpochTagShift) - 1;
constexpr std::uint8_t epoch_tag(std::uint32_t key_epoch) noexcept {
  return static_cast<std::uint8_t>(key_epoch & 3u);
}
constexpr std::uint8_t session_epoch_tag(std::uint32_t session_id) noexcept {
  return static_cast<std::uint8_t>(session_id >> kEpochTagShift);
}
// `random` with its top two bits replaced by the tag of `key_epoch`.
constexpr std::uint32_t tag_session(std::uint32_t random, std::uint32_t key_epoch) noexcept {
  return (random & kSessionRandomMask) | (std::uint32_t{epoch_tag(key_epoch)} << kEpochTagShift);
}

}  // namespace wire
}  // namespace nomq
