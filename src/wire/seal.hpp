// The encode step v1 and v2 share (nomq::detail, not installed): header, body, PKCS#7,
// AES-256-CBC in place, MAC. Each version says only how its frame differs (Frame).
#pragma once

#include <cstddef>
#include <cstdint>

#include "wire/wire_internal.hpp"

namespace nomq::detail::wire {

// Which digest closes the frame. Both cover every byte before the MAC.
enum class MacKind : std::uint8_t {
  keyed_sha256,  // v1: the original's SHA-256(data || hmac_key), for byte-exact interop
  hmac_sha256,   // v2: RFC 2104 HMAC-SHA256
};

// What one wire version does differently when it seals a packet.
struct Frame {
  std::uint8_t version = 0;  // header byte 2
  // v1 repeats the IV between header and ciphertext and counts it in the length field.
  bool iv_before_ciphertext = false;
  MacKind mac = MacKind::hmac_sha256;
  // The body of a PUBLISH, SUBSCRIBE or UNSUBSCRIBE (the types that carry a name): its size
  // before padding, and a writer that fills exactly that many bytes at `plaintext`. The other
  // types' bodies (a 4-byte acked id, or nothing) are the same in every version: seal() does
  // them itself.
  std::size_t (*named_plaintext_size)(const Packet& p) noexcept = nullptr;
  void (*write_named_body)(const Packet& p, std::uint8_t* plaintext) noexcept = nullptr;
};

extern const Frame kV1Frame;
extern const Frame kV2Frame;

// The digest `kind` over `data` (the frame's MAC).
Digest mac_of(Crypto& crypto, MacKind kind, Bytes data) noexcept;

// The full datagram size for `p` in `frame`.
std::size_t sealed_size(const Frame& frame, const Packet& p) noexcept;

// Encodes `p` (already validated by the version's encoder) into `out`, building the plaintext
// at its final offset and encrypting it in place: no staging buffer, no allocation.
// Returns the datagram size; message_too_large or buffer_too_small (nothing useful written:
// the caller gives a bigger buffer or a smaller packet); crypto_failure when the backend fails.
Result<std::size_t> seal(const Packet& p, Crypto& crypto, const Frame& frame,
                         MutableBytes out) noexcept;

}  // namespace nomq::detail::wire
