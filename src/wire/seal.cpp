// The encode tail both wire versions share; see seal.hpp.
#include "wire/seal.hpp"

#include <cstring>

namespace nomq::detail::wire {

using nomq::wire::kHeaderSize;
using nomq::wire::kMacSize;

namespace {

std::size_t iv_copy_size(const Frame& frame) noexcept {
  return frame.iv_before_ciphertext ? kIvSize : 0;
}

std::size_t plaintext_size(const Frame& frame, const Packet& p) noexcept {
  switch (p.type) {
    case PacketType::publish:
    case PacketType::subscribe:
    case PacketType::unsubscribe:
      return frame.named_plaintext_size(p);
    case PacketType::ack:
    case PacketType::pubrec:
    case PacketType::pubrel:
    case PacketType::pubcomp:
      return 4;
    case PacketType::heartbeat:
      return 0;
  }
  return 0;
}

void write_body(const Packet& p, const Frame& frame, std::uint8_t* pt) noexcept {
  switch (p.type) {
    case PacketType::publish:
    case PacketType::subscribe:
    case PacketType::unsubscribe:
      frame.write_named_body(p, pt);
      break;
    case PacketType::ack:
    case PacketType::pubrec:
    case PacketType::pubrel:
    case PacketType::pubcomp:
      store_be32(pt, p.body.acked_id);
      break;
    case PacketType::heartbeat:
      break;
  }
}

}  // namespace

Digest mac_of(Crypto& crypto, MacKind kind, Bytes data) noexcept {
  switch (kind) {
    case MacKind::keyed_sha256: return crypto.keyed_sha256(data);
    case MacKind::hmac_sha256: return crypto.hmac_sha256(data);
  }
  return crypto.hmac_sha256(data);
}

std::size_t sealed_size(const Frame& frame, const Packet& p) noexcept {
  return kHeaderSize + iv_copy_size(frame) + padded_size(plaintext_size(frame, p)) + kMacSize;
}

Result<std::size_t> seal(const Packet& p, Crypto& crypto, const Frame& frame,
                         MutableBytes out) noexcept {
  const std::size_t pt_size = plaintext_size(frame, p);
  const std::size_t ct_size = padded_size(pt_size);
  const std::size_t payload_len = iv_copy_size(frame) + ct_size;
  const std::size_t size = kHeaderSize + payload_len + kMacSize;
  if (const Errc e = check_out(size, out.size()); e != Errc::ok) return e;

  std::uint8_t* const o = out.data();
  write_header(p, frame.version, static_cast<std::uint16_t>(payload_len), o);
  if (frame.iv_before_ciphertext) std::memcpy(o + kHeaderSize, p.iv.data(), kIvSize);

  std::uint8_t* const pt = o + kHeaderSize + iv_copy_size(frame);
  write_body(p, frame, pt);
  add_pkcs7(pt, pt_size);
  if (!crypto.cbc_encrypt(p.iv, Bytes{pt, ct_size}, MutableBytes{pt, ct_size})) {
    return Errc::crypto_failure;
  }
  const std::size_t mac_at = kHeaderSize + payload_len;
  const Digest mac = mac_of(crypto, frame.mac, Bytes{o, mac_at});
  std::memcpy(o + mac_at, mac.data(), kMacSize);
  return size;
}

}  // namespace nomq::detail::wire
