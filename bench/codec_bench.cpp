// Seal (wire::encode of a v2 PUBLISH, IV drawn with random_bytes) and open (wire::decode) at
// 64/256/1024-byte messages, beside the raw OpenSSL cost of the same cryptographic work in the
// same run: AES-256-CBC of the same padded size and HMAC-SHA256 over the same number of bytes,
// straight against EVP with contexts reused, and the same IV draw (the backend's generator, so
// that the ratio measures the codec, not the RNG). Target: seal/raw and open/raw <= 1.3.
//
//   cmake --build build --target nomq_bench_codec && build/nomq_bench_codec
//
// The *_Raw rows do only what any v2 implementation must do; the difference to the codec rows
// is header/body formatting, padding, the channel-name hash on open and the interface calls.
#include <benchmark/benchmark.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nomq/openssl_crypto.hpp"
#include "nomq/wire.hpp"

namespace {

constexpr std::string_view kChannel = "sensors/temp";
constexpr std::uint32_t kT0 = 1700000000;

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

struct Fixture {
  std::unique_ptr<nomq::OpenSslCrypto> crypto = backend();
  std::vector<std::uint8_t> message;
  nomq::wire::Packet packet;
  std::vector<std::uint8_t> out = std::vector<std::uint8_t>(nomq::wire::kMaxDatagram);
  std::vector<std::uint8_t> scratch = std::vector<std::uint8_t>(nomq::wire::kMaxDatagram);

  explicit Fixture(std::size_t message_size) : message(message_size, 'm') {
    packet.version = nomq::WireVersion::v2;
    packet.type = nomq::wire::PacketType::publish;
    packet.flags = nomq::wire::publish_flags(1, false, 0);
    packet.packet_id = 1;
    packet.session_id = 0x5e55104e;
    packet.ttl = 3600;
    packet.timestamp = kT0;
    packet.channel_id = nomq::wire::channel_id(*crypto, kChannel);
    packet.body.message_id = 7;
    packet.body.channel = kChannel;
    packet.body.message = message;
  }
  std::size_t seal() {
    crypto->random_bytes(packet.iv);
    ++packet.packet_id;
    const auto n = nomq::wire::encode(packet, *crypto, out);
    if (!n) std::abort();
    return *n;
  }
};

// Raw OpenSSL doing the same cryptographic work as seal/open.
struct Raw {
  EVP_CIPHER_CTX* enc = EVP_CIPHER_CTX_new();
  EVP_CIPHER_CTX* dec = EVP_CIPHER_CTX_new();
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* mac = EVP_MAC_CTX_new(hmac);
  std::unique_ptr<nomq::OpenSslCrypto> rng = backend();

  Raw() {
    const nomq::Key ek = key_of(1);
    nomq::Key mk = key_of(2);
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END};
    EVP_CIPHER* cbc = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
    if (EVP_EncryptInit_ex2(enc, cbc, ek.data(), nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_set_padding(enc, 0) != 1 ||
        EVP_DecryptInit_ex2(dec, cbc, ek.data(), nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_set_padding(dec, 0) != 1 ||
        EVP_MAC_init(mac, mk.data(), mk.size(), params) != 1) {
      std::abort();
    }
    EVP_CIPHER_free(cbc);
  }
  ~Raw() {
    EVP_MAC_CTX_free(mac);
    EVP_MAC_free(hmac);
    EVP_CIPHER_CTX_free(dec);
    EVP_CIPHER_CTX_free(enc);
  }
  void cbc(EVP_CIPHER_CTX* c, bool encrypt, const std::uint8_t* iv, const std::uint8_t* in,
           std::uint8_t* out, std::size_t n) {
    int len = 0;
    const int ok = encrypt ? EVP_EncryptInit_ex2(c, nullptr, nullptr, iv, nullptr) &
                                 EVP_EncryptUpdate(c, out, &len, in, static_cast<int>(n))
                           : EVP_DecryptInit_ex2(c, nullptr, nullptr, iv, nullptr) &
                                 EVP_DecryptUpdate(c, out, &len, in, static_cast<int>(n));
    if (ok != 1) std::abort();
  }
  void hmac_sha256(const std::uint8_t* data, std::size_t n, std::uint8_t* md) {
    std::size_t len = 0;
    if (EVP_MAC_init(mac, nullptr, 0, nullptr) != 1 || EVP_MAC_update(mac, data, n) != 1 ||
        EVP_MAC_final(mac, md, &len, 32) != 1) {
      std::abort();
    }
  }
};

std::size_t padded(std::size_t n) { return (n / 16 + 1) * 16; }

void BM_Seal_Codec(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(f.seal());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

void BM_Seal_Raw(benchmark::State& state) {
  Raw raw;
  const std::size_t ct = padded(5 + kChannel.size() + static_cast<std::size_t>(state.range(0)));
  std::vector<std::uint8_t> buf(53 + ct + 32, 0x42);
  nomq::Iv iv{};
  for (auto _ : state) {
    raw.rng->random_bytes(iv);
    raw.cbc(raw.enc, true, iv.data(), buf.data() + 53, buf.data() + 53, ct);
    raw.hmac_sha256(buf.data(), 53 + ct, buf.data() + 53 + ct);
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

void BM_Open_Codec(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  const std::size_t n = f.seal();
  const nomq::Bytes d{f.out.data(), n};
  nomq::wire::DecodeOptions o;
  o.version = nomq::WireVersion::v2;
  o.wall = nomq::WallTime{std::chrono::seconds(kT0)};
  // A receiver passes its subscriptions, as the engine does.
  const nomq::wire::KnownChannel subscribed[] = {{f.packet.channel_id, kChannel}};
  if (state.range(1) != 0) o.known_channels = subscribed;
  for (auto _ : state) {
    auto r = nomq::wire::decode(d, *f.crypto, o, f.scratch);
    if (!r) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

void BM_Open_Raw(benchmark::State& state) {
  Raw raw;
  const std::size_t ct = padded(5 + kChannel.size() + static_cast<std::size_t>(state.range(0)));
  std::vector<std::uint8_t> buf(53 + ct + 32, 0x42);
  std::vector<std::uint8_t> scratch(ct);
  raw.hmac_sha256(buf.data(), 53 + ct, buf.data() + 53 + ct);
  std::array<std::uint8_t, 32> md{};
  for (auto _ : state) {
    raw.hmac_sha256(buf.data(), 53 + ct, md.data());
    if (CRYPTO_memcmp(md.data(), buf.data() + 53 + ct, 32) != 0) std::abort();
    raw.cbc(raw.dec, false, buf.data() + 15, buf.data() + 53, scratch.data(), ct);
    benchmark::DoNotOptimize(scratch.data());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

BENCHMARK(BM_Seal_Codec)->Arg(64)->Arg(256)->Arg(1024);
BENCHMARK(BM_Seal_Raw)->Arg(64)->Arg(256)->Arg(1024);
// Second argument: 1 = known_channels holds the subscription, 0 = the name is hashed.
BENCHMARK(BM_Open_Codec)->ArgsProduct({{64, 256, 1024}, {1, 0}});
BENCHMARK(BM_Open_Raw)->Arg(64)->Arg(256)->Arg(1024);

}  // namespace

BENCHMARK_MAIN();
