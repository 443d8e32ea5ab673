// The OpenSSL backend against the naive use of OpenSSL it replaces: RAND_bytes per IV, and a
// fresh EVP context per packet. The figures behind docs/crypto.md.
#include <benchmark/benchmark.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "crypto/openssl_crypto_testing.hpp"
#include "nomq/openssl_crypto.hpp"

namespace {

nomq::Key key_of(std::uint8_t seed) {
  nomq::Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(seed + i);
  return k;
}

std::unique_ptr<nomq::OpenSslCrypto> backend() {
  auto r = nomq::OpenSslCrypto::create(key_of(1), key_of(2));
  if (!r) std::abort();
  return std::move(r).value();
}

// ---------------------------------------------------------------- random bytes

void BM_RandomBytes16_Backend(benchmark::State& state) {
  auto c = backend();
  nomq::Iv iv{};
  for (auto _ : state) {
    c->random_bytes(iv);
    benchmark::DoNotOptimize(iv);
  }
}
BENCHMARK(BM_RandomBytes16_Backend);

// The same with the fallback fork check (getpid() per call, for kernels before 4.14).
void BM_RandomBytes16_BackendGetpidCheck(benchmark::State& state) {
  nomq::detail::rng_fork_check_by_getpid_only = true;
  auto c = backend();
  nomq::detail::rng_fork_check_by_getpid_only = false;
  nomq::Iv iv{};
  for (auto _ : state) {
    c->random_bytes(iv);
    benchmark::DoNotOptimize(iv);
  }
}
BENCHMARK(BM_RandomBytes16_BackendGetpidCheck);

void BM_RandomBytes16_RAND_bytes(benchmark::State& state) {
  nomq::Iv iv{};
  for (auto _ : state) {
    if (RAND_bytes(iv.data(), static_cast<int>(iv.size())) != 1) state.SkipWithError("RAND_bytes");
    benchmark::DoNotOptimize(iv);
  }
}
BENCHMARK(BM_RandomBytes16_RAND_bytes);

// The fork check the backend pays on every random_bytes call.
void BM_Getpid(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(getpid());
}
BENCHMARK(BM_Getpid);

// ---------------------------------------------------------------- HMAC-SHA256

void BM_HmacSha256_Backend(benchmark::State& state) {
  auto c = backend();
  std::vector<std::uint8_t> data(static_cast<std::size_t>(state.range(0)), 0x5a);
  for (auto _ : state) benchmark::DoNotOptimize(c->hmac_sha256(data));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_HmacSha256_Backend)->Arg(64)->Arg(256)->Arg(1024);

// A new EVP_MAC_CTX keyed per call (the algorithm itself fetched once, to isolate the
// context cost).
void BM_HmacSha256_FreshContext(benchmark::State& state) {
  const nomq::Key key = key_of(2);
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  std::vector<std::uint8_t> data(static_cast<std::size_t>(state.range(0)), 0x5a);
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  nomq::Digest out{};
  for (auto _ : state) {
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    std::size_t len = 0;
    if (ctx == nullptr || EVP_MAC_init(ctx, key.data(), key.size(), params) != 1 ||
        EVP_MAC_update(ctx, data.data(), data.size()) != 1 ||
        EVP_MAC_final(ctx, out.data(), &len, out.size()) != 1) {
      state.SkipWithError("EVP_MAC");
    }
    EVP_MAC_CTX_free(ctx);
    benchmark::DoNotOptimize(out);
  }
  EVP_MAC_free(mac);
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_HmacSha256_FreshContext)->Arg(64)->Arg(256)->Arg(1024);

// ---------------------------------------------------------------- AES-256-CBC

void BM_Aes256CbcEncrypt_Backend(benchmark::State& state) {
  auto c = backend();
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(state.range(0)), 0x5a);
  nomq::Iv iv{};
  for (auto _ : state) {
    if (!c->cbc_encrypt(iv, buf, buf)) state.SkipWithError("cbc_encrypt");
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Aes256CbcEncrypt_Backend)->Arg(64)->Arg(256)->Arg(1024);

// A new EVP_CIPHER_CTX keyed per call (the cipher fetched once).
void BM_Aes256CbcEncrypt_FreshContext(benchmark::State& state) {
  const nomq::Key key = key_of(1);
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(state.range(0)), 0x5a);
  nomq::Iv iv{};
  for (auto _ : state) {
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int len = 0;
    if (ctx == nullptr || EVP_EncryptInit_ex2(ctx, cipher, key.data(), iv.data(), nullptr) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
        EVP_EncryptUpdate(ctx, buf.data(), &len, buf.data(), static_cast<int>(buf.size())) != 1) {
      state.SkipWithError("EVP_Encrypt");
    }
    EVP_CIPHER_CTX_free(ctx);
    benchmark::DoNotOptimize(buf.data());
  }
  EVP_CIPHER_free(cipher);
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Aes256CbcEncrypt_FreshContext)->Arg(64)->Arg(256)->Arg(1024);

// ---------------------------------------------------------------- a 64-byte seal's crypto

// The crypto of sealing a 64-byte plaintext (IV, AES-CBC, HMAC over header+IV+ciphertext)
// with the IV from RAND_bytes or from the backend: shows what the CSPRNG saves per packet.
template <bool kRandBytes>
void BM_Seal64Crypto(benchmark::State& state) {
  auto c = backend();
  std::array<std::uint8_t, 16 + 16 + 64> pkt{};  // header stand-in, IV, ciphertext
  for (auto _ : state) {
    nomq::Iv iv{};
    if constexpr (kRandBytes) {
      if (RAND_bytes(iv.data(), static_cast<int>(iv.size())) != 1) state.SkipWithError("RAND");
    } else {
      c->random_bytes(iv);
    }
    std::copy(iv.begin(), iv.end(), pkt.begin() + 16);
    auto body = nomq::MutableBytes{pkt}.subspan(32);
    if (!c->cbc_encrypt(iv, body, body)) state.SkipWithError("cbc_encrypt");
    benchmark::DoNotOptimize(c->hmac_sha256(pkt));
  }
}
BENCHMARK_TEMPLATE(BM_Seal64Crypto, false)->Name("BM_Seal64Crypto_BackendIv");
BENCHMARK_TEMPLATE(BM_Seal64Crypto, true)->Name("BM_Seal64Crypto_RAND_bytesIv");

}  // namespace

BENCHMARK_MAIN();
