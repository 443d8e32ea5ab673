// The OpenSSL 3 backend of nomq::Crypto. Everything OpenSSL needs is fetched and set up once in
// create(); the per-packet calls only reset an IV or re-initialise a keyed context, which is
// what makes them 2-4x cheaper than building contexts per packet (docs/crypto.md has figures).
#include "nomq/openssl_crypto.hpp"

#include "crypto/cbc_arguments.hpp"
#include "crypto/openssl_crypto_testing.hpp"

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <cstdint>

namespace nomq {
namespace detail {

bool rng_fork_check_by_getpid_only = false;

namespace {

// Keystream served per refill. Large enough that the AES call and the fast-key-erasure re-key
// are amortised over many 16-byte IVs, small enough to stay in L1.
constexpr std::size_t kRngBlock = 1024;
// Key and IV of the CTR generator.
constexpr std::size_t kRngSeed = kKeySize + kIvSize;
// Output after which the generator is re-seeded from RAND_bytes (fresh OS entropy).
constexpr std::uint64_t kRngReseedBytes = std::uint64_t{1} << 20;

constexpr std::array<std::uint8_t, kRngBlock> kZeros{};

}  // namespace

// The CSPRNG's mutable state. Zero-initialised means "not seeded": that is what a child sees
// after fork() when the kernel wipes the page (MADV_WIPEONFORK).
struct RngState {
  std::array<std::uint8_t, kRngBlock> buf;  // buf[pos..] is unserved keystream
  std::size_t pos;
  std::uint64_t since_seed;  // bytes served since the last RAND_bytes seed
  pid_t pid;                 // the process that seeded
  std::uint8_t seeded;
};

namespace {

std::size_t rng_state_mapping_size() noexcept {
  const long page = sysconf(_SC_PAGESIZE);
  const std::size_t p = page > 0 ? static_cast<std::size_t>(page) : 4096;
  return (sizeof(RngState) + p - 1) / p * p;
}

[[noreturn]] void die_no_entropy() noexcept {
  // The only abort in the library: without the OS entropy source there are no unpredictable
  // IVs or ids, and Crypto::random_bytes has no way to say so. Continuing would be worse.
  std::fputs("nomq: RAND_bytes failed: the OS entropy source is unavailable; aborting\n", stderr);
  std::abort();
}

}  // namespace
}  // namespace detail

struct OpenSslCrypto::Impl {
  EVP_CIPHER* cbc = nullptr;
  EVP_CIPHER* ctr = nullptr;
  EVP_MD* sha = nullptr;
  EVP_CIPHER_CTX* enc = nullptr;
  EVP_CIPHER_CTX* dec = nullptr;
  EVP_CIPHER_CTX* rng = nullptr;
  // The CBC chaining value each of enc/dec continues from (see run_cbc).
  Iv enc_chain{};
  Iv dec_chain{};
  EVP_MD_CTX* md = nullptr;
  // HMAC-SHA256 (RFC 2104) as two SHA-256 contexts that have absorbed the key XOR ipad/opad
  // block once, at create(); each MAC copies them into `mac_work`. OpenSSL's HMAC does the
  // same inside EVP_MAC, plus a parameter lookup and more bookkeeping per call: 360 -> 270 ns
  // per 112-byte MAC here (docs/performance.md, "Optimisations").
  EVP_MD_CTX* mac_inner = nullptr;
  EVP_MD_CTX* mac_outer = nullptr;
  EVP_MD_CTX* mac_work = nullptr;

  // The v1 keyed hash appends the key itself, so a copy is kept (cleansed on destruction).
  std::unique_ptr<std::uint8_t[]> hmac_key;
  std::size_t hmac_key_size = 0;
  // A channel key set's channel-tag key (set_channel_tag_key; cleansed on destruction).
  Key tag_key{};
  bool tag_keyed = false;

  // CSPRNG state, kept in its own mmap'd page marked MADV_WIPEONFORK where the kernel offers
  // it (Linux >= 4.14): a fork()ed child then finds it zeroed (seeded == 0) and re-seeds, at no
  // cost per call. Without it, getpid() is compared on every call instead (~150 ns here, as
  // much as the rest of a 16-byte draw; see docs/crypto.md).
  detail::RngState* st = nullptr;
  bool st_mapped = false;      // st is an mmap'd page (else a heap object)
  bool st_wipes_on_fork = false;

  std::uint64_t failures = 0;

  Impl() noexcept = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    EVP_MD_CTX_free(mac_work);
    EVP_MD_CTX_free(mac_outer);
    EVP_MD_CTX_free(mac_inner);
    EVP_MD_CTX_free(md);
    EVP_CIPHER_CTX_free(rng);
    EVP_CIPHER_CTX_free(dec);
    EVP_CIPHER_CTX_free(enc);
    EVP_MD_free(sha);
    EVP_CIPHER_free(ctr);
    EVP_CIPHER_free(cbc);
    if (hmac_key) OPENSSL_cleanse(hmac_key.get(), hmac_key_size);
    OPENSSL_cleanse(tag_key.data(), tag_key.size());
    if (st != nullptr) {
      OPENSSL_cleanse(st, sizeof(*st));
      if (st_mapped) {
        munmap(st, detail::rng_state_mapping_size());
      } else {
        delete st;
      }
    }
  }

  bool allocate_rng_state() noexcept {
    void* page = mmap(nullptr, detail::rng_state_mapping_size(), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page != MAP_FAILED) {
      st = new (page) detail::RngState{};
      st_mapped = true;
#ifdef MADV_WIPEONFORK
      st_wipes_on_fork = !detail::rng_fork_check_by_getpid_only &&
                         madvise(page, detail::rng_state_mapping_size(), MADV_WIPEONFORK) == 0;
#endif
#ifdef MADV_DONTDUMP
      // Keystream not yet served has no business in a core dump; best effort.
      (void)madvise(page, detail::rng_state_mapping_size(), MADV_DONTDUMP);
#endif
      return true;
    }
    st = new (std::nothrow) detail::RngState{};
    return st != nullptr;
  }

  // Keys the CTR generator with 48 fresh bytes from RAND_bytes (OpenSSL's DRBG, itself seeded
  // from getrandom()) and drops any buffered keystream. False only if RAND_bytes fails.
  bool reseed() noexcept {
    std::array<std::uint8_t, detail::kRngSeed> seed{};
    const bool ok = RAND_bytes(seed.data(), static_cast<int>(seed.size())) == 1 &&
                    EVP_EncryptInit_ex2(rng, ctr, seed.data(), seed.data() + kKeySize,
                                        nullptr) == 1;
    OPENSSL_cleanse(seed.data(), seed.size());
    OPENSSL_cleanse(st->buf.data(), st->buf.size());
    st->pos = st->buf.size();
    st->since_seed = 0;
    st->pid = getpid();
    st->seeded = ok ? 1 : 0;
    return ok;
  }

  // Fills the buffer with keystream, then re-keys the generator from the block's first 48
  // bytes ("fast key erasure"): the key that produced bytes already served no longer exists,
  // so a later state compromise cannot reconstruct them. False on an OpenSSL failure.
  bool refill() noexcept {
    int len = 0;
    if (EVP_EncryptUpdate(rng, st->buf.data(), &len, detail::kZeros.data(),
                          static_cast<int>(detail::kZeros.size())) != 1 ||
        len != static_cast<int>(st->buf.size())) {
      return false;
    }
    const bool ok = EVP_EncryptInit_ex2(rng, nullptr, st->buf.data(),
                                        st->buf.data() + kKeySize, nullptr) == 1;
    OPENSSL_cleanse(st->buf.data(), detail::kRngSeed);
    st->pos = detail::kRngSeed;
    return ok;
  }

  // True if this process is not the one that seeded the generator (we are a fork()ed child
  // holding a copy of the parent's state: serving it would repeat the parent's IVs and ids).
  bool forked() const noexcept {
    if (st->seeded == 0) return true;  // never seeded, or wiped by the kernel on fork
    return !st_wipes_on_fork && getpid() != st->pid;
  }

  void random_bytes(MutableBytes out) noexcept {
    if (forked() && !reseed()) detail::die_no_entropy();
    std::size_t done = 0;
    while (done < out.size()) {
      if (st->since_seed >= detail::kRngReseedBytes && !reseed()) detail::die_no_entropy();
      if (st->pos == st->buf.size()) {
        if (!refill()) {
          // OpenSSL failed on a context that worked before: start over from fresh entropy.
          ++failures;
          if (!reseed() || !refill()) detail::die_no_entropy();
        }
      }
      std::size_t n = st->buf.size() - st->pos;
      if (n > out.size() - done) n = out.size() - done;
      std::memcpy(out.data() + done, st->buf.data() + st->pos, n);
      std::memset(st->buf.data() + st->pos, 0, n);
      st->pos += n;
      done += n;
      st->since_seed += n;
    }
  }

  // CBC with a per-call IV, without re-initialising the context per call. A context run
  // with EVP_*Update alone continues the chain: its next block is combined with the last
  // ciphertext block of the previous call (`chain`). Encryption therefore feeds
  // P1 ^ IV ^ chain as the first block (the context XORs chain back in: E(P1 ^ IV)), and
  // decryption XORs chain ^ IV into the first output block (D(C1) ^ chain -> D(C1) ^ IV).
  // Every output byte is what a fresh init with IV gives (the SP 800-38A vectors check it);
  // EVP_*Init_ex2 with a new IV cost about 120 ns per call in OSSL_PARAM handling.
  bool run_cbc(EVP_CIPHER_CTX* ctx, Iv& chain, bool encrypt, const Iv& iv, Bytes in,
               MutableBytes out) noexcept {
    if (!detail::cbc_arguments_valid(in, out) || in.size() > static_cast<std::size_t>(INT_MAX)) {
      return false;
    }
    const bool in_place = in.data() == out.data();
    const int n = static_cast<int>(in.size());
    int len = 0;
    int update = 0;
    if (encrypt) {
      if (!in_place) std::memcpy(out.data(), in.data(), in.size());
      for (std::size_t i = 0; i < kBlockSize; ++i) {
        out[i] = static_cast<std::uint8_t>(out[i] ^ iv[i] ^ chain[i]);
      }
      update = EVP_EncryptUpdate(ctx, out.data(), &len, out.data(), n);
      if (update == 1) std::memcpy(chain.data(), out.data() + in.size() - kBlockSize, kBlockSize);
    } else {
      Iv last{};  // read before an in-place call overwrites it
      std::memcpy(last.data(), in.data() + in.size() - kBlockSize, kBlockSize);
      update = EVP_DecryptUpdate(ctx, out.data(), &len, in.data(), n);
      if (update == 1) {
        for (std::size_t i = 0; i < kBlockSize; ++i) {
          out[i] = static_cast<std::uint8_t>(out[i] ^ chain[i] ^ iv[i]);
        }
        chain = last;
      }
    }
    // No Final call: without padding it would emit nothing for whole blocks.
    if (update != 1 || len != n) {
      ++failures;
      // The chain is unknown after a failed call: restart it from a known IV.
      chain = Iv{};
      (void)(encrypt ? EVP_EncryptInit_ex2(ctx, nullptr, nullptr, chain.data(), nullptr)
                     : EVP_DecryptInit_ex2(ctx, nullptr, nullptr, chain.data(), nullptr));
      return false;
    }
    return true;
  }

  // A digest that cannot be computed must not come out as a predictable value (all zeros
  // would be a MAC an attacker can forge), so it is replaced by CSPRNG bytes.
  Digest failed_digest() noexcept {
    ++failures;
    Digest d{};
    random_bytes(d);
    return d;
  }

  Digest hmac_sha256(Bytes data) noexcept {
    Digest inner{};
    Digest d{};
    unsigned int len = 0, outer_len = 0;
    const bool ok = EVP_MD_CTX_copy_ex(mac_work, mac_inner) == 1 &&
                    EVP_DigestUpdate(mac_work, data.data(), data.size()) == 1 &&
                    EVP_DigestFinal_ex(mac_work, inner.data(), &len) == 1 && len == inner.size() &&
                    EVP_MD_CTX_copy_ex(mac_work, mac_outer) == 1 &&
                    EVP_DigestUpdate(mac_work, inner.data(), inner.size()) == 1 &&
                    EVP_DigestFinal_ex(mac_work, d.data(), &outer_len) == 1 &&
                    outer_len == d.size();
    OPENSSL_cleanse(inner.data(), inner.size());
    if (!ok) return failed_digest();
    return d;
  }

  // Absorbs the key XOR ipad/opad blocks into mac_inner/mac_outer (RFC 2104: a key longer
  // than the 64-byte block is hashed first). False on an OpenSSL failure.
  bool setup_hmac(Bytes key) noexcept {
    constexpr std::size_t kShaBlock = 64;
    std::array<std::uint8_t, kShaBlock> k{};
    bool ok = true;
    if (key.size() > kShaBlock) {
      unsigned int len = 0;
      ok = EVP_DigestInit_ex2(md, sha, nullptr) == 1 &&
           EVP_DigestUpdate(md, key.data(), key.size()) == 1 &&
           EVP_DigestFinal_ex(md, k.data(), &len) == 1 && len == kDigestSize;
    } else {
      std::memcpy(k.data(), key.data(), key.size());
    }
    std::array<std::uint8_t, kShaBlock> pad{};
    for (std::size_t i = 0; i < kShaBlock; ++i) pad[i] = static_cast<std::uint8_t>(k[i] ^ 0x36);
    ok = ok && EVP_DigestInit_ex2(mac_inner, sha, nullptr) == 1 &&
         EVP_DigestUpdate(mac_inner, pad.data(), pad.size()) == 1;
    for (std::size_t i = 0; i < kShaBlock; ++i) pad[i] = static_cast<std::uint8_t>(k[i] ^ 0x5c);
    ok = ok && EVP_DigestInit_ex2(mac_outer, sha, nullptr) == 1 &&
         EVP_DigestUpdate(mac_outer, pad.data(), pad.size()) == 1;
    OPENSSL_cleanse(pad.data(), pad.size());
    OPENSSL_cleanse(k.data(), k.size());
    return ok;
  }

  Digest sha256(Bytes data, Bytes suffix) noexcept {
    Digest d{};
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(md, sha, nullptr) != 1 ||
        EVP_DigestUpdate(md, data.data(), data.size()) != 1 ||
        (!suffix.empty() && EVP_DigestUpdate(md, suffix.data(), suffix.size()) != 1) ||
        EVP_DigestFinal_ex(md, d.data(), &len) != 1 || len != d.size()) {
      return failed_digest();
    }
    return d;
  }

  // Fetches every algorithm once and builds the contexts. False on any OpenSSL failure.
  bool setup(Bytes encryption_key, Bytes key) noexcept {
    hmac_key.reset(new (std::nothrow) std::uint8_t[key.size()]);
    if (!hmac_key) return false;
    std::memcpy(hmac_key.get(), key.data(), key.size());
    hmac_key_size = key.size();

    cbc = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
    ctr = EVP_CIPHER_fetch(nullptr, "AES-256-CTR", nullptr);
    sha = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    enc = EVP_CIPHER_CTX_new();
    dec = EVP_CIPHER_CTX_new();
    rng = EVP_CIPHER_CTX_new();
    md = EVP_MD_CTX_new();
    mac_inner = EVP_MD_CTX_new();
    mac_outer = EVP_MD_CTX_new();
    mac_work = EVP_MD_CTX_new();
    if (cbc == nullptr || ctr == nullptr || sha == nullptr || enc == nullptr || dec == nullptr ||
        rng == nullptr || md == nullptr || mac_inner == nullptr || mac_outer == nullptr ||
        mac_work == nullptr) {
      return false;
    }
    if (!allocate_rng_state()) return false;

    // Both chains start from the all-zero IV (enc_chain, dec_chain).
    return EVP_EncryptInit_ex2(enc, cbc, encryption_key.data(), enc_chain.data(), nullptr) == 1 &&
           EVP_CIPHER_CTX_set_padding(enc, 0) == 1 &&
           EVP_DecryptInit_ex2(dec, cbc, encryption_key.data(), dec_chain.data(), nullptr) == 1 &&
           EVP_CIPHER_CTX_set_padding(dec, 0) == 1 && setup_hmac(key) && reseed();
  }
};

void OpenSslRng::random_bytes(MutableBytes out) noexcept {
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t n = std::min<std::size_t>(out.size() - done, INT_MAX);
    if (RAND_bytes(out.data() + done, static_cast<int>(n)) != 1) detail::die_no_entropy();
    done += n;
  }
}

OpenSslCrypto::OpenSslCrypto() noexcept = default;
OpenSslCrypto::~OpenSslCrypto() = default;

Result<std::unique_ptr<OpenSslCrypto>> OpenSslCrypto::create(Bytes encryption_key,
                                                             Bytes hmac_key) noexcept {
  if (encryption_key.size() != kKeySize || hmac_key.empty()) {
    return Error{Errc::invalid_argument, "encryption key of ", encryption_key.size(),
                 " bytes (needs ", kKeySize, "), MAC key of ", hmac_key.size(),
                 " bytes (needs at least 1)"};
  }
  std::unique_ptr<OpenSslCrypto> crypto(new (std::nothrow) OpenSslCrypto());
  if (!crypto) return Error{Errc::crypto_failure, "out of memory"};
  crypto->impl_.reset(new (std::nothrow) Impl());
  if (!crypto->impl_ || !crypto->impl_->setup(encryption_key, hmac_key)) {
    return Error{Errc::crypto_failure, "OpenSSL could not set up AES-256-CBC, HMAC-SHA256 and "
                                       "its random generator (an OpenSSL 3 provider missing?)"};
  }
  return crypto;
}

Result<std::unique_ptr<OpenSslCrypto>> OpenSslCrypto::create(const Key& encryption_key,
                                                             const Key& hmac_key) noexcept {
  return create(Bytes{encryption_key}, Bytes{hmac_key});
}

bool OpenSslCrypto::cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept {
  return impl_->run_cbc(impl_->enc, impl_->enc_chain, true, iv, in, out);
}

bool OpenSslCrypto::cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept {
  return impl_->run_cbc(impl_->dec, impl_->dec_chain, false, iv, in, out);
}

Digest OpenSslCrypto::hmac_sha256(Bytes data) noexcept { return impl_->hmac_sha256(data); }

Digest OpenSslCrypto::keyed_sha256(Bytes data) noexcept {
  return impl_->sha256(data, Bytes{impl_->hmac_key.get(), impl_->hmac_key_size});
}

Digest OpenSslCrypto::sha256(Bytes data) noexcept { return impl_->sha256(data, Bytes{}); }

void OpenSslCrypto::set_channel_tag_key(const Key& tag_key) noexcept {
  impl_->tag_key = tag_key;
  impl_->tag_keyed = true;
}

Digest OpenSslCrypto::channel_tag(Bytes name) noexcept {
  if (!impl_->tag_keyed) return impl_->sha256(name, Bytes{});
  Digest d{};
  if (!hmac_sha256_once(impl_->tag_key, name, d)) return impl_->failed_digest();
  return d;
}

void OpenSslCrypto::random_bytes(MutableBytes out) noexcept { impl_->random_bytes(out); }

bool OpenSslCrypto::mac_equal(Bytes a, Bytes b) noexcept {
  // Lengths are public (fixed MAC sizes); only the contents must not leak through timing.
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool OpenSslCrypto::hkdf_sha256(Bytes salt, Bytes ikm, Bytes info, MutableBytes out) noexcept {
  if (out.empty() || out.size() > 255 * kDigestSize) return false;
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf != nullptr ? EVP_KDF_CTX_new(kdf) : nullptr;
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return false;
  // OSSL_PARAM takes non-const pointers; OpenSSL only reads these.
  auto octets = [](const char* name, Bytes b) {
    return OSSL_PARAM_construct_octet_string(
        name, const_cast<std::uint8_t*>(b.data()), b.size());  // NOLINT
  };
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  std::size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = octets(OSSL_KDF_PARAM_KEY, ikm);
  // RFC 5869: an absent salt is HashLen zeros, which is what OpenSSL uses when none is given.
  if (!salt.empty()) params[n++] = octets(OSSL_KDF_PARAM_SALT, salt);
  if (!info.empty()) params[n++] = octets(OSSL_KDF_PARAM_INFO, info);
  params[n] = OSSL_PARAM_construct_end();
  const bool ok = EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);  // cleanses its copies of the key material
  if (!ok) OPENSSL_cleanse(out.data(), out.size());
  return ok;
}

bool OpenSslCrypto::hmac_sha256_once(Bytes key, Bytes data, Digest& out) noexcept {
  unsigned int len = 0;
  const bool ok = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(),
                       data.size(), out.data(), &len) != nullptr &&
                  len == out.size();
  if (!ok) OPENSSL_cleanse(out.data(), out.size());
  return ok;
}

void OpenSslCrypto::wipe(MutableBytes bytes) noexcept {
  if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
}

std::uint64_t OpenSslCrypto::failures() const noexcept { return impl_->failures; }

}  // namespace nomq
