// Part of nomq::crypto, which links exactly one backend: the one named by NOMQ_CRYPTO.
#include "nomq/crypto_backend.hpp"

#if defined(NOMQ_CRYPTO_MBEDTLS)
#include "nomq/mbedtls_crypto.hpp"
#else
#include "nomq/openssl_crypto.hpp"
#endif

#include <new>

namespace nomq {

#if defined(NOMQ_CRYPTO_MBEDTLS)
using BackendCrypto = MbedTlsCrypto;
std::string_view crypto_backend_name() noexcept { return "mbedtls"; }
std::string_view crypto_backend_version() noexcept { return mbedtls_version(); }
#else
using BackendCrypto = OpenSslCrypto;
std::string_view crypto_backend_name() noexcept { return "openssl"; }
std::string_view crypto_backend_version() noexcept { return openssl_version(); }
#endif

Result<std::unique_ptr<CryptoRng>> make_crypto(const Key& encryption_key,
                                               const Key& hmac_key) noexcept {
  auto made = BackendCrypto::create(encryption_key, hmac_key);
  if (!made) return made.error();
  return std::unique_ptr<CryptoRng>(std::move(made).value());
}

Result<std::unique_ptr<CryptoRng>> make_channel_crypto(Bytes channel_secret,
                                                       const KeyContext& context) noexcept {
  WireKeys keys;
  if (!derive_wire_keys(backend_hkdf(), channel_secret, context, keys)) {
    wipe_secret(keys.bytes());
    return Error{Errc::crypto_failure, "cannot derive the channel key (HKDF-SHA256 failed",
                 context.group_id.size() > kMaxGroupId ? ", group_id longer than 64 bytes" : "",
                 ")"};
  }
  auto made = BackendCrypto::create(keys.encryption, keys.mac);
  if (made) (*made)->set_channel_tag_key(keys.channel_tag);
  wipe_secret(keys.bytes());
  if (!made) return made.error();
  return std::unique_ptr<CryptoRng>(std::move(made).value());
}

Result<std::unique_ptr<Rng>> make_rng() noexcept {
#if defined(NOMQ_CRYPTO_MBEDTLS)
  auto made = MbedTlsRng::create();
  if (!made) return made.error();
  return std::unique_ptr<Rng>(std::move(made).value());
#else
  std::unique_ptr<Rng> r(new (std::nothrow) OpenSslRng());
  if (!r) return Error{Errc::crypto_failure, "out of memory"};
  return r;
#endif
}

HkdfSha256 backend_hkdf() noexcept { return &BackendCrypto::hkdf_sha256; }

bool backend_hmac_sha256(Bytes key, Bytes data, Digest& out) noexcept {
  return BackendCrypto::hmac_sha256_once(key, data, out);
}

void wipe_secret(MutableBytes secret) noexcept { BackendCrypto::wipe(secret); }

}  // namespace nomq
