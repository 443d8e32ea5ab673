// The OpenSSL 3 backend of nomq::Crypto (Linux). One object per node: EVP contexts and the
// HMAC key are set up once and reused for every packet. See docs/crypto.md.
#pragma once

#include "nomq/export.hpp"

#include <cstdint>
#include <memory>
#include <string_view>

#include "nomq/bytes.hpp"
#include "nomq/crypto.hpp"
#include "nomq/error.hpp"

namespace nomq {

// The OpenSSL version string the backend runs on, e.g. "OpenSSL 3.0.19 ...".
NOMQ_EXPORT std::string_view openssl_version() noexcept;

// Not thread-safe: one object per node, used by one thread at a time (the engine's), as the
// EVP contexts and the CSPRNG state are shared by every call.
class NOMQ_EXPORT OpenSslCrypto final : public CryptoRng {
 public:
  // Keys are copied. `encryption_key` must be exactly 32 bytes (AES-256) and `hmac_key`
  // non-empty (any length: HMAC hashes long keys; the v1 keyed hash appends it as is), else
  // invalid_argument. Returns crypto_failure if OpenSSL cannot fetch its algorithms, set up
  // its contexts or seed the CSPRNG from RAND_bytes; the caller cannot run a node then.
  static Result<std::unique_ptr<OpenSslCrypto>> create(Bytes encryption_key,
                                                      Bytes hmac_key) noexcept;
  // The usual case: two 32-byte keys from a config file.
  static Result<std::unique_ptr<OpenSslCrypto>> create(const Key& encryption_key,
                                                      const Key& hmac_key) noexcept;
  // RFC 5869 HKDF-SHA256 (extract, then expand to out.size() bytes, 1..8160), the key
  // schedule's primitive (nomq/key_schedule.hpp). Needs no object. False on a library failure
  // or a bad output length; `out` is zeroed then.
  static bool hkdf_sha256(Bytes salt, Bytes ikm, Bytes info, MutableBytes out) noexcept;
  // One-shot RFC 2104 HMAC-SHA256 under `key` (application signatures, which have a key of
  // their own). False on a library failure.
  static bool hmac_sha256_once(Bytes key, Bytes data, Digest& out) noexcept;
  // Overwrites `bytes` with zeros in a way the compiler may not elide (OPENSSL_cleanse).
  static void wipe(MutableBytes bytes) noexcept;
  ~OpenSslCrypto() override;
  OpenSslCrypto(const OpenSslCrypto&) = delete;
  OpenSslCrypto& operator=(const OpenSslCrypto&) = delete;

  bool cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override;
  bool cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override;
  // The digest calls cannot report failure through the interface. OpenSSL does not fail on a
  // context set up by create() short of memory corruption; should it fail anyway, the result
  // is filled with CSPRNG bytes (so it matches no attacker-chosen MAC) and failures() grows.
  Digest hmac_sha256(Bytes data) noexcept override;
  Digest keyed_sha256(Bytes data) noexcept override;
  Digest sha256(Bytes data) noexcept override;
  // Makes this object a channel key set (docs/protocol.md §14.4): channel_tag(name) becomes
  // HMAC-SHA256(tag_key, name) (the key is copied, and cleansed on destruction). Without it,
  // channel_tag is the group's unkeyed SHA-256.
  void set_channel_tag_key(const Key& tag_key) noexcept;
  Digest channel_tag(Bytes name) noexcept override;
  // A per-object CSPRNG: AES-256-CTR keystream keyed from RAND_bytes, re-keyed from RAND_bytes
  // every 1 MiB of output and in a fork()ed child (its state page is MADV_WIPEONFORK; where
  // the kernel lacks that, getpid() is compared per call); see docs/crypto.md for why and
  // what it costs. If RAND_bytes fails when re-keying (the OS entropy source is gone) the
  // process is aborted with a message on stderr: no unpredictable bytes can be returned and
  // the interface has no way to report it.
  void random_bytes(MutableBytes out) noexcept override;
  // CRYPTO_memcmp (false if the lengths differ).
  bool mac_equal(Bytes a, Bytes b) noexcept override;

  // How many OpenSSL calls failed after create() (cipher calls return false as well). Zero
  // in a healthy process; anything else is worth a log line.
  std::uint64_t failures() const noexcept;

 private:
  OpenSslCrypto() noexcept;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The OS-seeded OpenSSL generator (RAND_bytes: OpenSSL 3's DRBG, fork- and thread-safe) as
// the engine's Rng, for code that needs randomness without the node's keys. OpenSslCrypto is
// an Rng as well, with its own faster per-object generator (docs/crypto.md).
class NOMQ_EXPORT OpenSslRng final : public Rng {
 public:
  // Aborts the process (message on stderr) if RAND_bytes fails: the OS entropy source is gone
  // and the interface cannot report it.
  void random_bytes(MutableBytes out) noexcept override;
};

}  // namespace nomq
