// The crypto interface: the only way the codec and the engine touch cryptography or randomness.
// One object per node, created once with the node's keys and reused for every packet (per-packet
// context creation costs 2-4x here). Backends: nomq::OpenSslCrypto (Linux); tests may supply a
// deterministic one. No OS headers, no exceptions.
#pragma once

#include "nomq/export.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

#include "nomq/bytes.hpp"

namespace nomq {

inline constexpr std::size_t kKeySize = 32;
inline constexpr std::size_t kBlockSize = 16;
inline constexpr std::size_t kIvSize = 16;
inline constexpr std::size_t kDigestSize = 32;

using Key = std::array<std::uint8_t, kKeySize>;
using Iv = std::array<std::uint8_t, kIvSize>;
using Digest = std::array<std::uint8_t, kDigestSize>;

// Constant-time equality of two equal-length byte strings. The codec compares MACs with this
// and nothing else (backends route it to CRYPTO_memcmp or an equivalent).
NOMQ_EXPORT bool constant_time_equal(Bytes a, Bytes b) noexcept;

class NOMQ_EXPORT Crypto {
 public:
  virtual ~Crypto() = default;

  // AES-256-CBC with the node's encryption key, NO padding: `in.size()` must be a non-zero
  // multiple of 16 and `out.size() >= in.size()`; `out` may alias `in` exactly (in place).
  // The codec adds and checks PKCS#7 itself so that it can name each failure.
  // Returns false only on a backend failure or a precondition violation.
  virtual bool cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept = 0;
  virtual bool cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept = 0;

  // RFC 2104 HMAC-SHA256 keyed with the node's hmac key (wire v2).
  virtual Digest hmac_sha256(Bytes data) noexcept = 0;

  // The original's keyed hash: SHA-256(data || hmac_key) (wire v1). Not an HMAC.
  virtual Digest keyed_sha256(Bytes data) noexcept = 0;

  // Plain SHA-256.
  virtual Digest sha256(Bytes data) noexcept = 0;

  // The channel tag of `name` (docs/protocol.md §14.4); its first 16 bytes are the wire's
  // channel id. This default is the unkeyed SHA-256(name) of the group's channels (v1, and v2
  // channels without a channel key). A channel key set (a backend given a channel-tag key with
  // set_channel_tag_key) returns HMAC-SHA256(tag key, name) instead, which nobody without that
  // key can compute, or reverse with a dictionary.
  virtual Digest channel_tag(Bytes name) noexcept { return sha256(name); }

  // Compares two MACs in constant time. The default routes to constant_time_equal(); a
  // backend may override it with its library's own routine (OpenSSL: CRYPTO_memcmp).
  virtual bool mac_equal(Bytes a, Bytes b) noexcept { return constant_time_equal(a, b); }
};

// The engine's randomness (IVs, session ids, message ids, jitter), apart from Crypto: a
// generator needs no key of the node, a device seeds it from its hardware RNG, and a test or
// simulation substitutes a seeded one without wrapping the ciphers. Backends: OpenSslRng,
// MbedTlsRng (standalone), and OpenSslCrypto / MbedTlsCrypto, which are an Rng as well (their
// own generator, see docs/crypto.md). Test code uses sim::SeededRng.
class NOMQ_EXPORT Rng {
 public:
  virtual ~Rng() = default;

  // Unpredictable bytes. Production generators are CSPRNGs; test generators may be seeded and
  // deterministic.
  virtual void random_bytes(MutableBytes out) noexcept = 0;

  // Four bytes, big-endian.
  std::uint32_t random_u32() noexcept {
    std::array<std::uint8_t, 4> b{};
    random_bytes(b);
    return load_be32(b.data());
  }
};

// A backend object that is both: OpenSslCrypto and MbedTlsCrypto, whose generator also covers
// their own needs (a digest that failed is replaced by random bytes). make_crypto() returns one.
class NOMQ_EXPORT CryptoRng : public Crypto, public Rng {};

}  // namespace nomq
