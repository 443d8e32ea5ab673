// Pieces shared by the v1 and v2 codecs (nomq::detail, not installed).
#pragma once

#include <cstddef>
#include <cstdint>

#include "nomq/wire.hpp"

namespace nomq::detail::wire {

using nomq::wire::Packet;
using nomq::wire::PacketType;

// Header offsets, identical in both versions (docs/protocol.md §2).
inline constexpr std::size_t kOffMagic = 0;
inline constexpr std::size_t kOffVersion = 2;
inline constexpr std::size_t kOffType = 3;
inline constexpr std::size_t kOffFlags = 4;
inline constexpr std::size_t kOffPacketId = 5;
inline constexpr std::size_t kOffSessionId = 9;
inline constexpr std::size_t kOffTtl = 13;
inline constexpr std::size_t kOffIv = 15;
inline constexpr std::size_t kOffTimestamp = 31;
inline constexpr std::size_t kOffChannelId = 35;
inline constexpr std::size_t kOffLength = 51;

// v1 PUBLISH inner header: u64 timestamp, u32 nonce, u32 msg_len; gap20 adds 4 zero bytes.
inline constexpr std::size_t kV1InnerHeader = 16;
inline constexpr std::size_t kV1Gap20Offset = 20;

constexpr bool is_valid_type(std::uint8_t t) noexcept { return t >= 1 && t <= 8; }

// PKCS#7 always adds 1..16 bytes.
constexpr std::size_t padded_size(std::size_t plaintext_size) noexcept {
  return (plaintext_size / kBlockSize + 1) * kBlockSize;
}

// Writes the 53-byte header. `length` is the payload length field (v1: 16 + ciphertext).
void write_header(const Packet& p, std::uint8_t version, std::uint16_t length,
                  std::uint8_t* out) noexcept;

// Reads the header fields every version shares into `p` (not the length field).
void read_header(const std::uint8_t* d, Packet& p) noexcept;

// Pads the `plaintext_size` bytes at `buf` in place to `padded_size(plaintext_size)`.
void add_pkcs7(std::uint8_t* buf, std::size_t plaintext_size) noexcept;

// Checks PKCS#7 on `padded` (non-empty, a multiple of 16). Returns the unpadded size, or
// padded.size() + 1 when the padding is invalid.
std::size_t strip_pkcs7(Bytes padded) noexcept;

// |now - (timestamp + epoch_offset)| <= window, in microseconds (the receiver's clock is
// fractional: the original compares against a float time.time()).
bool timestamp_fresh(std::uint32_t timestamp, const nomq::wire::DecodeOptions& o) noexcept;

// Errors shared by both encoders before any byte is written.
Errc check_out(std::size_t size, std::size_t out_size) noexcept;

Result<std::size_t> encode_v1(const Packet& p, Crypto& crypto, MutableBytes out) noexcept;
Result<std::size_t> encode_v2(const Packet& p, Crypto& crypto, MutableBytes out) noexcept;
Result<Packet> decode_v1(Bytes d, Crypto& crypto, const nomq::wire::DecodeOptions& o,
                         MutableBytes scratch) noexcept;
Result<Packet> decode_v2(Bytes d, Crypto& crypto, const nomq::wire::DecodeOptions& o,
                         MutableBytes scratch) noexcept;

}  // namespace nomq::detail::wire
