// The OpenSSL 3 backend of nomq::Crypto (Linux). One object per node: EVP contexts and the
// HMAC key are set up once and reused for every packet.
#pragma once

#include <memory>
#include <string_view>

#include "nomq/crypto.hpp"
#include "nomq/error.hpp"

namespace nomq {

// The OpenSSL version string the backend runs on, e.g. "OpenSSL 3.0.19 ...".
std::string_view openssl_version() noexcept;

class OpenSslCrypto final : public Crypto {
 public:
  // Keys are copied. Returns crypto_failure if OpenSSL cannot set up its contexts.
  static Result<std::unique_ptr<OpenSslCrypto>> create(const Key& encryption_key,
                                                      const Key& hmac_key) noexcept;
  ~OpenSslCrypto() override;

  bool cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override;
  bool cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override;
  Digest hmac_sha256(Bytes data) noexcept override;
  Digest keyed_sha256(Bytes data) noexcept override;
  Digest sha256(Bytes data) noexcept override;
  // A per-object CSPRNG: AES-256-CTR keystream keyed from RAND_bytes, re-keyed from RAND_bytes
  // every 1 MiB of output and after fork(); see docs/crypto.md for why and what it costs.
  void random_bytes(MutableBytes out) noexcept override;
  // CRYPTO_memcmp.
  bool mac_equal(Bytes a, Bytes b) noexcept override;

 private:
  OpenSslCrypto();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nomq
