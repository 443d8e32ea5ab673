// The mbedTLS backend of nomq::Crypto (microcontrollers; also builds on Linux against Debian's
// libmbedtls-dev 2.28). One object per node: the AES, HMAC and SHA-256 contexts are keyed once
// and reused for every packet; random bytes come from a CTR_DRBG seeded by an entropy source.
// See docs/crypto.md. No OS headers, no exceptions.
#pragma once

#include "nomq/export.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>

#include "nomq/bytes.hpp"
#include "nomq/crypto.hpp"
#include "nomq/error.hpp"

namespace nomq {

// Where the DRBG gets its seed: the platform's entropy (a hardware RNG on a device). `poll`
// has mbedTLS's f_entropy signature: fill `out` with `len` bytes of full entropy and return 0,
// or return non-zero if it cannot. `context` is passed back unchanged and must outlive the
// MbedTlsCrypto object (the DRBG re-seeds from it periodically). A null `poll` selects
// mbedTLS's own entropy collector (the OS source), available where mbedTLS is built with
// MBEDTLS_ENTROPY_C, as Debian's is.
struct EntropySource {
  int (*poll)(void* context, unsigned char* out, std::size_t len) = nullptr;
  void* context = nullptr;
};

// The mbedTLS version the backend runs on, e.g. "mbed TLS 2.28.3".
NOMQ_EXPORT const char* mbedtls_version() noexcept;

// Not thread-safe: one object per node, used by one thread at a time (the engine's).
class NOMQ_EXPORT MbedTlsCrypto final : public CryptoRng {
 public:
  // Keys are copied. `encryption_key` must be exactly 32 bytes (AES-256) and `hmac_key`
  // non-empty, else invalid_argument. Returns crypto_failure if mbedTLS cannot set up a
  // context or the DRBG cannot be seeded from `entropy` (or no entropy source exists: a
  // null `entropy.poll` where mbedTLS has no MBEDTLS_ENTROPY_C); a node cannot run then.
  static Result<std::unique_ptr<MbedTlsCrypto>> create(Bytes encryption_key, Bytes hmac_key,
                                                      EntropySource entropy = {}) noexcept;
  // The usual case: two 32-byte keys from a config file.
  static Result<std::unique_ptr<MbedTlsCrypto>> create(const Key& encryption_key,
                                                      const Key& hmac_key,
                                                      EntropySource entropy = {}) noexcept;
  // Wipes every key-dependent context and the hmac key copy (mbedtls_platform_zeroize).
  // RFC 5869 HKDF-SHA256 (extract, then expand to out.size() bytes, 1..8160), the key
  // schedule's primitive (nomq/key_schedule.hpp). Needs no object. False on a library failure
  // or a bad output length; `out` is zeroed then.
  static bool hkdf_sha256(Bytes salt, Bytes ikm, Bytes info, MutableBytes out) noexcept;
  // One-shot RFC 2104 HMAC-SHA256 under `key` (application signatures, which have a key of
  // their own). False on a library failure.
  static bool hmac_sha256_once(Bytes key, Bytes data, Digest& out) noexcept;
  // Overwrites `bytes` with zeros in a way the compiler may not elide (mbedtls_platform_zeroize).
  static void wipe(MutableBytes bytes) noexcept;
  ~MbedTlsCrypto() override;
  MbedTlsCrypto(const MbedTlsCrypto&) = delete;
  MbedTlsCrypto& operator=(const MbedTlsCrypto&) = delete;

  bool cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override;
  bool cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override;
  // As with OpenSslCrypto: mbedTLS does not fail on a context set up by create(); should it
  // fail anyway, the result is DRBG output (it matches no attacker-chosen MAC) and failures()
  // grows.
  Digest hmac_sha256(Bytes data) noexcept override;
  Digest keyed_sha256(Bytes data) noexcept override;
  Digest sha256(Bytes data) noexcept override;
  // A channel key set (docs/protocol.md §14.4): channel_tag(name) = HMAC-SHA256(tag_key, name)
  // (copied, wiped on destruction); without it, the group's unkeyed SHA-256.
  void set_channel_tag_key(const Key& tag_key) noexcept;
  Digest channel_tag(Bytes name) noexcept override;
  // CTR_DRBG output. If the DRBG's periodic re-seed fails (the entropy source stopped
  // working), the program is aborted: no unpredictable bytes can be returned and the
  // interface has no way to report it.
  void random_bytes(MutableBytes out) noexcept override;
  // mbedtls_ct_memcmp (false if the lengths differ).
  bool mac_equal(Bytes a, Bytes b) noexcept override;

  // How many mbedTLS calls failed after create() (cipher calls return false as well).
  std::uint64_t failures() const noexcept;

 private:
  MbedTlsCrypto() noexcept;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

namespace detail {
class MbedTlsDrbg;
}  // namespace detail

// The mbedTLS CTR_DRBG (detail::MbedTlsDrbg) alone as the engine's Rng: a device's generator,
// seeded from its entropy source, for code that needs randomness without the node's keys.
class NOMQ_EXPORT MbedTlsRng final : public Rng {
 public:
  // Errors: crypto_failure when the DRBG cannot be seeded from `entropy` (see MbedTlsCrypto).
  static Result<std::unique_ptr<MbedTlsRng>> create(EntropySource entropy = {}) noexcept;
  ~MbedTlsRng() override;
  MbedTlsRng(const MbedTlsRng&) = delete;
  MbedTlsRng& operator=(const MbedTlsRng&) = delete;
  // DRBG output; aborts the program if a periodic re-seed fails (as MbedTlsCrypto).
  void random_bytes(MutableBytes out) noexcept override;

 private:
  MbedTlsRng() noexcept;
  std::unique_ptr<detail::MbedTlsDrbg> drbg_;
};

}  // namespace nomq
