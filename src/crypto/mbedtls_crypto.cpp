// The mbedTLS backend of nomq::Crypto. Every context is set up and keyed once in create(); a
// per-packet call copies an IV or resets a keyed HMAC context, nothing more.
#include "nomq/mbedtls_crypto.hpp"

#include <mbedtls/aes.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>
// 2.28's constant_time.h, unlike its other headers, has no extern "C" block of its own.
extern "C" {
#include <mbedtls/constant_time.h>
}

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "crypto/cbc_arguments.hpp"
#include "crypto/mbedtls_drbg.hpp"

namespace nomq {

namespace {

// Mixed into the DRBG seed so that its stream is bound to this use.
constexpr char kPersonalization[] = "nomq mbedtls crypto";

[[noreturn]] void die_no_entropy() noexcept {
  // As in the OpenSSL backend: without entropy there are no unpredictable IVs or ids, and
  // Crypto::random_bytes has no way to say so. Continuing would be worse.
  std::fputs("nomq: the mbedTLS DRBG could not re-seed: entropy source failed; aborting\n",
             stderr);
  std::abort();
}

}  // namespace

const char* mbedtls_version() noexcept { return MBEDTLS_VERSION_STRING_FULL; }

struct MbedTlsCrypto::Impl {
  mbedtls_aes_context enc;
  mbedtls_aes_context dec;
  mbedtls_md_context_t hmac;    // HMAC-SHA256, keyed once; reset per call
  mbedtls_sha256_context sha;   // sha256 and the v1 keyed hash
  // The v1 keyed hash appends the key itself, so a copy is kept (wiped on destruction).
  std::unique_ptr<std::uint8_t[]> hmac_key;
  std::size_t hmac_key_size = 0;
  // A channel key set's channel-tag key (set_channel_tag_key; wiped on destruction).
  Key tag_key{};
  bool tag_keyed = false;
  detail::MbedTlsDrbg drbg;
  std::uint64_t failures = 0;

  Impl() noexcept {
    mbedtls_aes_init(&enc);
    mbedtls_aes_init(&dec);
    mbedtls_md_init(&hmac);
    mbedtls_sha256_init(&sha);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // The mbedTLS free functions zeroize their contexts (round keys, HMAC pads, hash state).
  ~Impl() {
    mbedtls_sha256_free(&sha);
    mbedtls_md_free(&hmac);
    mbedtls_aes_free(&dec);
    mbedtls_aes_free(&enc);
    if (hmac_key) mbedtls_platform_zeroize(hmac_key.get(), hmac_key_size);
    mbedtls_platform_zeroize(tag_key.data(), tag_key.size());
  }

  bool setup(Bytes encryption_key, Bytes key, EntropySource entropy) noexcept {
    hmac_key.reset(new (std::nothrow) std::uint8_t[key.size()]);
    if (!hmac_key) return false;
    std::memcpy(hmac_key.get(), key.data(), key.size());
    hmac_key_size = key.size();
    const mbedtls_md_info_t* sha256_info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    return sha256_info != nullptr &&
           mbedtls_aes_setkey_enc(&enc, encryption_key.data(), kKeySize * 8) == 0 &&
           mbedtls_aes_setkey_dec(&dec, encryption_key.data(), kKeySize * 8) == 0 &&
           mbedtls_md_setup(&hmac, sha256_info, 1) == 0 &&
           mbedtls_md_hmac_starts(&hmac, key.data(), key.size()) == 0 &&
           drbg.seed(entropy, Bytes{reinterpret_cast<const std::uint8_t*>(kPersonalization),
                                    sizeof kPersonalization - 1});
  }

  // mbedTLS takes the IV by pointer and advances it, so each call works on a copy: every call
  // starts a fresh chain from its own IV. mbedtls_aes_crypt_cbc handles out == in.
  bool run_cbc(mbedtls_aes_context* ctx, int mode, const Iv& iv, Bytes in,
               MutableBytes out) noexcept {
    if (!detail::cbc_arguments_valid(in, out)) return false;
    Iv chain = iv;
    if (mbedtls_aes_crypt_cbc(ctx, mode, in.size(), chain.data(), in.data(), out.data()) != 0) {
      ++failures;
      return false;
    }
    return true;
  }

  // A digest that cannot be computed must not come out as a predictable value (all zeros
  // would be a MAC an attacker can forge), so it is replaced by DRBG bytes.
  Digest failed_digest() noexcept {
    ++failures;
    Digest d{};
    if (!drbg.generate(d)) die_no_entropy();
    return d;
  }

  Digest sha256(Bytes data, Bytes suffix) noexcept {
    Digest d{};
    if (mbedtls_sha256_starts_ret(&sha, 0) != 0 ||
        mbedtls_sha256_update_ret(&sha, data.data(), data.size()) != 0 ||
        (!suffix.empty() && mbedtls_sha256_update_ret(&sha, suffix.data(), suffix.size()) != 0) ||
        mbedtls_sha256_finish_ret(&sha, d.data()) != 0) {
      return failed_digest();
    }
    return d;
  }
};

MbedTlsCrypto::MbedTlsCrypto() noexcept = default;
MbedTlsCrypto::~MbedTlsCrypto() = default;

Result<std::unique_ptr<MbedTlsCrypto>> MbedTlsCrypto::create(Bytes encryption_key,
                                                             Bytes hmac_key,
                                                             EntropySource entropy) noexcept {
  if (encryption_key.size() != kKeySize || hmac_key.empty()) return Errc::invalid_argument;
  std::unique_ptr<MbedTlsCrypto> crypto(new (std::nothrow) MbedTlsCrypto());
  if (!crypto) return Errc::crypto_failure;
  crypto->impl_.reset(new (std::nothrow) Impl());
  if (!crypto->impl_ || !crypto->impl_->setup(encryption_key, hmac_key, entropy)) {
    return Errc::crypto_failure;
  }
  return crypto;
}

Result<std::unique_ptr<MbedTlsCrypto>> MbedTlsCrypto::create(const Key& encryption_key,
                                                             const Key& hmac_key,
                                                             EntropySource entropy) noexcept {
  return create(Bytes{encryption_key}, Bytes{hmac_key}, entropy);
}

bool MbedTlsCrypto::cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept {
  return impl_->run_cbc(&impl_->enc, MBEDTLS_AES_ENCRYPT, iv, in, out);
}

bool MbedTlsCrypto::cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept {
  return impl_->run_cbc(&impl_->dec, MBEDTLS_AES_DECRYPT, iv, in, out);
}

Digest MbedTlsCrypto::hmac_sha256(Bytes data) noexcept {
  Digest d{};
  if (mbedtls_md_hmac_reset(&impl_->hmac) != 0 ||
      mbedtls_md_hmac_update(&impl_->hmac, data.data(), data.size()) != 0 ||
      mbedtls_md_hmac_finish(&impl_->hmac, d.data()) != 0) {
    return impl_->failed_digest();
  }
  return d;
}

Digest MbedTlsCrypto::keyed_sha256(Bytes data) noexcept {
  return impl_->sha256(data, Bytes{impl_->hmac_key.get(), impl_->hmac_key_size});
}

Digest MbedTlsCrypto::sha256(Bytes data) noexcept { return impl_->sha256(data, Bytes{}); }

void MbedTlsCrypto::set_channel_tag_key(const Key& tag_key) noexcept {
  impl_->tag_key = tag_key;
  impl_->tag_keyed = true;
}

Digest MbedTlsCrypto::channel_tag(Bytes name) noexcept {
  if (!impl_->tag_keyed) return impl_->sha256(name, Bytes{});
  Digest d{};
  if (!hmac_sha256_once(impl_->tag_key, name, d)) return impl_->failed_digest();
  return d;
}

void MbedTlsCrypto::random_bytes(MutableBytes out) noexcept {
  if (!impl_->drbg.generate(out)) die_no_entropy();
}

bool MbedTlsCrypto::mac_equal(Bytes a, Bytes b) noexcept {
  // Lengths are public (fixed MAC sizes); only the contents must not leak through timing.
  return a.size() == b.size() && mbedtls_ct_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool MbedTlsCrypto::hkdf_sha256(Bytes salt, Bytes ikm, Bytes info, MutableBytes out) noexcept {
  if (out.empty() || out.size() > 255 * kDigestSize) return false;
  const mbedtls_md_info_t* sha256_info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  // mbedtls_hkdf treats an empty salt as HashLen zeros (RFC 5869), as OpenSSL does.
  const bool ok = sha256_info != nullptr &&
                  mbedtls_hkdf(sha256_info, salt.data(), salt.size(), ikm.data(), ikm.size(),
                               info.data(), info.size(), out.data(), out.size()) == 0;
  if (!ok) mbedtls_platform_zeroize(out.data(), out.size());
  return ok;
}

bool MbedTlsCrypto::hmac_sha256_once(Bytes key, Bytes data, Digest& out) noexcept {
  const mbedtls_md_info_t* sha256_info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  const bool ok = sha256_info != nullptr &&
                  mbedtls_md_hmac(sha256_info, key.data(), key.size(), data.data(), data.size(),
                                  out.data()) == 0;
  if (!ok) mbedtls_platform_zeroize(out.data(), out.size());
  return ok;
}

void MbedTlsCrypto::wipe(MutableBytes bytes) noexcept {
  if (!bytes.empty()) mbedtls_platform_zeroize(bytes.data(), bytes.size());
}

std::uint64_t MbedTlsCrypto::failures() const noexcept { return impl_->failures; }

namespace {
constexpr char kRngPersonalization[] = "nomq mbedtls rng";
}  // namespace

MbedTlsRng::MbedTlsRng() noexcept = default;
MbedTlsRng::~MbedTlsRng() = default;

Result<std::unique_ptr<MbedTlsRng>> MbedTlsRng::create(EntropySource entropy) noexcept {
  std::unique_ptr<MbedTlsRng> r(new (std::nothrow) MbedTlsRng());
  if (r) r->drbg_.reset(new (std::nothrow) detail::MbedTlsDrbg());
  if (!r || !r->drbg_) return Error{Errc::crypto_failure, "mbedTLS RNG: out of memory"};
  const Bytes personalization{reinterpret_cast<const std::uint8_t*>(kRngPersonalization),
                              sizeof(kRngPersonalization) - 1};
  if (!r->drbg_->seed(entropy, personalization)) {
    return Error{Errc::crypto_failure, "mbedTLS RNG: the CTR_DRBG could not be seeded"};
  }
  return r;
}

void MbedTlsRng::random_bytes(MutableBytes out) noexcept {
  if (!drbg_->generate(out)) die_no_entropy();
}

}  // namespace nomq
