// Every crypto backend (OpenSSL; mbedTLS where it is built) against the same published
// known-answer vectors (RFC 4231, NIST SP 800-38A, FIPS 180-2, the v1 vectors), the CSPRNG's
// observable properties and the comparisons, as typed tests: CryptoBackend/OpenSsl.*,
// CryptoBackend/MbedTls.*. Then the backends against each other, byte for byte.
#include "nomq/openssl_crypto.hpp"
#if defined(NOMQ_HAVE_MBEDTLS)
#include "nomq/mbedtls_crypto.hpp"
#endif

#include "crypto/openssl_crypto_testing.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <random>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace nomq {
namespace {

std::vector<std::uint8_t> from_hex(std::string_view hex) {
  std::vector<std::uint8_t> out;
  auto nibble = [](char c) -> std::uint8_t {
    if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
    return static_cast<std::uint8_t>(c - 'A' + 10);
  };
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>((nibble(hex[i]) << 4) | nibble(hex[i + 1])));
  }
  return out;
}

std::vector<std::uint8_t> repeat(std::uint8_t byte, std::size_t n) {
  return std::vector<std::uint8_t>(n, byte);
}

std::vector<std::uint8_t> text(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<std::uint8_t> to_vec(Bytes b) { return {b.begin(), b.end()}; }

Key any_key() {
  Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i);
  return k;
}

template <class Backend>
std::unique_ptr<Backend> make(Bytes enc, Bytes mac) {
  auto r = Backend::create(enc, mac);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? std::move(r).value() : nullptr;
}

template <class Backend>
std::unique_ptr<Backend> make_default() {
  const Key k = any_key();
  return make<Backend>(k, k);
}

#if defined(NOMQ_HAVE_MBEDTLS)
using Backends = ::testing::Types<OpenSslCrypto, MbedTlsCrypto>;
#else
using Backends = ::testing::Types<OpenSslCrypto>;
#endif

struct BackendName {
  template <class Backend>
  static std::string GetName(int) {
    return std::is_same_v<Backend, OpenSslCrypto> ? "OpenSsl" : "MbedTls";
  }
};

template <class Backend>
class CryptoBackend : public ::testing::Test {};
TYPED_TEST_SUITE(CryptoBackend, Backends, BackendName);

// ---------------------------------------------------------------- create

TYPED_TEST(CryptoBackend, CreateAcceptsTwoKeysAndReportsNoFailures) {
  auto c = make_default<TypeParam>();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->failures(), 0u);
}

TYPED_TEST(CryptoBackend, CreateRejectsEncryptionKeyOtherThan32Bytes) {
  const auto mac = repeat(1, 32);
  for (std::size_t n : {0u, 16u, 31u, 33u, 64u}) {
    const auto enc = repeat(2, n);
    auto r = TypeParam::create(Bytes{enc}, Bytes{mac});
    EXPECT_EQ(r.error(), Errc::invalid_argument) << "key size " << n;
  }
}

TYPED_TEST(CryptoBackend, CreateRejectsEmptyHmacKey) {
  const auto enc = repeat(2, 32);
  auto r = TypeParam::create(Bytes{enc}, Bytes{});
  EXPECT_EQ(r.error(), Errc::invalid_argument);
}

// ---------------------------------------------------------------- HMAC-SHA256, RFC 4231

struct HmacCase {
  const char* name;
  std::vector<std::uint8_t> key;
  std::vector<std::uint8_t> data;
  const char* mac_hex;  // case 5: the 128-bit truncated output
};

std::vector<HmacCase> rfc4231_cases() {
  std::vector<std::uint8_t> key4;
  for (std::uint8_t b = 1; b <= 25; ++b) key4.push_back(b);
  return {
      {"1", repeat(0x0b, 20), text("Hi There"),
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"2", text("Jefe"), text("what do ya want for nothing?"),
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {"3", repeat(0xaa, 20), repeat(0xdd, 50),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {"4", key4, repeat(0xcd, 50),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {"5", repeat(0x0c, 20), text("Test With Truncation"), "a3b6167473100ee06e0c796c2955552b"},
      {"6", repeat(0xaa, 131), text("Test Using Larger Than Block-Size Key - Hash Key First"),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {"7", repeat(0xaa, 131),
       text("This is a test using a larger than block-size key and a larger than block-size "
            "data. The key needs to be hashed before being used by the HMAC algorithm."),
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
}

TYPED_TEST(CryptoBackend, HmacRfc4231Cases1To7) {
  const auto enc = repeat(0, 32);
  for (const auto& tc : rfc4231_cases()) {
    SCOPED_TRACE(std::string("RFC 4231 test case ") + tc.name);
    auto c = make<TypeParam>(enc, tc.key);
    ASSERT_NE(c, nullptr);
    const auto expected = from_hex(tc.mac_hex);
    // Twice: the second call exercises the re-initialised (not re-keyed) context.
    for (int round = 0; round < 2; ++round) {
      const Digest d = c->hmac_sha256(tc.data);
      EXPECT_EQ(std::vector<std::uint8_t>(d.begin(), d.begin() + expected.size()), expected)
          << "round " << round;
    }
    EXPECT_EQ(c->failures(), 0u);
  }
}

TYPED_TEST(CryptoBackend, HmacInterleavedWithOtherCallsStaysKeyed) {
  const auto tc = rfc4231_cases()[1];
  auto c = make<TypeParam>(repeat(0, 32), tc.key);
  ASSERT_NE(c, nullptr);
  (void)c->sha256(text("abc"));
  (void)c->hmac_sha256(text("something else entirely"));
  const Digest d = c->hmac_sha256(tc.data);
  EXPECT_EQ(to_vec(d), from_hex(tc.mac_hex));
}

// ---------------------------------------------------------------- AES-256-CBC, SP 800-38A

constexpr std::string_view kNistKey =
    "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
constexpr std::string_view kNistIv = "000102030405060708090a0b0c0d0e0f";
constexpr std::string_view kNistPlain =
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
constexpr std::string_view kNistCipher =
    "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
    "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b";

Iv nist_iv() {
  Iv iv{};
  const auto v = from_hex(kNistIv);
  std::copy(v.begin(), v.end(), iv.begin());
  return iv;
}

template <class Backend>
std::unique_ptr<Backend> make_nist() {
  return make<Backend>(from_hex(kNistKey), repeat(1, 32));
}

TYPED_TEST(CryptoBackend, CbcEncryptF25) {
  auto c = make_nist<TypeParam>();
  ASSERT_NE(c, nullptr);
  const auto plain = from_hex(kNistPlain);
  std::vector<std::uint8_t> out(plain.size());
  for (int round = 0; round < 2; ++round) {  // the IV reset must start a fresh chain
    ASSERT_TRUE(c->cbc_encrypt(nist_iv(), plain, out));
    EXPECT_EQ(out, from_hex(kNistCipher)) << "round " << round;
  }
}

TYPED_TEST(CryptoBackend, CbcDecryptF26) {
  auto c = make_nist<TypeParam>();
  ASSERT_NE(c, nullptr);
  const auto cipher = from_hex(kNistCipher);
  std::vector<std::uint8_t> out(cipher.size());
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(c->cbc_decrypt(nist_iv(), cipher, out));
    EXPECT_EQ(out, from_hex(kNistPlain)) << "round " << round;
  }
}

TYPED_TEST(CryptoBackend, CbcEncryptAndDecryptInPlace) {
  auto c = make_nist<TypeParam>();
  ASSERT_NE(c, nullptr);
  auto buf = from_hex(kNistPlain);
  ASSERT_TRUE(c->cbc_encrypt(nist_iv(), buf, buf));
  EXPECT_EQ(buf, from_hex(kNistCipher));
  ASSERT_TRUE(c->cbc_decrypt(nist_iv(), buf, buf));
  EXPECT_EQ(buf, from_hex(kNistPlain));
}

TYPED_TEST(CryptoBackend, CbcSingleBlockIsFirstBlockOfF25) {
  auto c = make_nist<TypeParam>();
  ASSERT_NE(c, nullptr);
  const auto plain = from_hex(kNistPlain);
  std::array<std::uint8_t, 16> out{};
  ASSERT_TRUE(c->cbc_encrypt(nist_iv(), Bytes{plain}.first(16), out));
  const auto cipher = from_hex(kNistCipher);
  EXPECT_EQ(to_vec(out), to_vec(Bytes{cipher}.first(16)));
}

TYPED_TEST(CryptoBackend, CbcRejectsPreconditionViolationsWithoutCountingFailures) {
  auto c = make_nist<TypeParam>();
  ASSERT_NE(c, nullptr);
  std::vector<std::uint8_t> buf(64, 7);
  const Iv iv{};
  EXPECT_FALSE(c->cbc_encrypt(iv, Bytes{}, buf));                       // empty
  EXPECT_FALSE(c->cbc_encrypt(iv, Bytes{buf}.first(15), buf));          // not whole blocks
  EXPECT_FALSE(c->cbc_decrypt(iv, Bytes{buf}.first(33), buf));          // not whole blocks
  EXPECT_FALSE(c->cbc_encrypt(iv, Bytes{buf}.first(32),                 // output too small
                               MutableBytes{buf}.subspan(32, 16)));
  EXPECT_FALSE(c->cbc_encrypt(iv, Bytes{buf}.first(32),                 // partial overlap
                               MutableBytes{buf}.subspan(16, 32)));
  EXPECT_FALSE(c->cbc_decrypt(iv, Bytes{buf}.subspan(16, 32),           // partial overlap
                               MutableBytes{buf}.first(32)));
  EXPECT_EQ(c->failures(), 0u);
  EXPECT_EQ(buf, std::vector<std::uint8_t>(64, 7));  // nothing written
}

// The contexts are keyed once and each call continues the previous call's CBC chain, undone
// with the IV (openssl_crypto.cpp, run_cbc): whatever came before, a call must give what a
// fresh object's first call gives, encrypting and decrypting, in place or not.
TYPED_TEST(CryptoBackend, CbcEveryCallMatchesAFreshContextWhateverCameBefore) {
  auto c = make_nist<TypeParam>();
  ASSERT_NE(c, nullptr);
  const std::uint32_t seed = 0x63626331u;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng{seed};
  for (int step = 0; step < 300; ++step) {
    const std::size_t size = 16 * (1 + rng() % 8);
    std::vector<std::uint8_t> in(size), out(size), expected(size);
    for (auto& b : in) b = static_cast<std::uint8_t>(rng());
    Iv iv{};
    for (auto& b : iv) b = static_cast<std::uint8_t>(rng());
    const bool encrypt = rng() % 2 == 0;
    const bool in_place = rng() % 3 == 0;
    auto fresh = make_nist<TypeParam>();
    ASSERT_NE(fresh, nullptr);
    ASSERT_TRUE(encrypt ? fresh->cbc_encrypt(iv, in, expected) : fresh->cbc_decrypt(iv, in, expected));
    if (in_place) out = in;
    const Bytes src = in_place ? Bytes{out} : Bytes{in};
    ASSERT_TRUE(encrypt ? c->cbc_encrypt(iv, src, out) : c->cbc_decrypt(iv, src, out));
    ASSERT_EQ(out, expected) << "step " << step << (encrypt ? " encrypt" : " decrypt")
                             << (in_place ? " in place" : "");
  }
  EXPECT_EQ(c->failures(), 0u);
}

// ---------------------------------------------------------------- SHA-256, FIPS 180-2

TYPED_TEST(CryptoBackend, Sha256Fips180Vectors) {
  auto c = make_default<TypeParam>();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(to_vec(c->sha256(text("abc"))),
            from_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  EXPECT_EQ(to_vec(c->sha256(Bytes{})),
            from_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  EXPECT_EQ(to_vec(c->sha256(text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            from_hex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
}

// ---------------------------------------------------------------- v1 keyed hash

TYPED_TEST(CryptoBackend, KeyedSha256MatchesLegacyPacketVectorMac) {
  std::ifstream in(std::string(NOMQ_VECTORS_DIR) + "/legacy-v1.json");
  ASSERT_TRUE(in) << "cannot open legacy-v1.json";
  const auto doc = nlohmann::json::parse(in);
  const nlohmann::json* vec = nullptr;
  for (const auto& v : doc.at("packet_vectors")) {
    if (v.at("name") == "publish_q1_p5") vec = &v;
  }
  ASSERT_NE(vec, nullptr);
  const auto packet = from_hex(vec->at("packet").get<std::string>());
  ASSERT_EQ(packet.size(), 149u);
  auto c = make<TypeParam>(from_hex(vec->at("encryption_key").get<std::string>()),
                from_hex(vec->at("hmac_key").get<std::string>()));
  ASSERT_NE(c, nullptr);
  const Digest mac = c->keyed_sha256(Bytes{packet}.first(117));
  EXPECT_EQ(to_vec(mac), to_vec(Bytes{packet}.subspan(117)));
  EXPECT_EQ(to_vec(mac), from_hex(vec->at("sections").at("mac").get<std::string>()));
  // Not an HMAC: the two must differ for the same key and data.
  EXPECT_NE(to_vec(c->hmac_sha256(Bytes{packet}.first(117))), to_vec(mac));
}

// ---------------------------------------------------------------- random_bytes

// Pearson's chi-square statistic of the byte histogram against the uniform distribution.
double byte_chi_square(Bytes data) {
  std::array<std::uint64_t, 256> counts{};
  for (std::uint8_t b : data) ++counts[b];
  const double expected = static_cast<double>(data.size()) / 256.0;
  double chi = 0;
  for (std::uint64_t n : counts) {
    const double d = static_cast<double>(n) - expected;
    chi += d * d / expected;
  }
  return chi;
}

// Quantile of the chi-square distribution with k degrees of freedom at standard-normal
// quantile z, by the Wilson-Hilferty approximation (accurate to well under 1% for k = 255).
double chi_square_quantile(double k, double z) {
  const double a = 2.0 / (9.0 * k);
  return k * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

// Two-sided bounds for 255 degrees of freedom at z = +-6.5: a uniform source falls outside
// with probability about 8e-11 per draw, so a good generator never fails in practice. An
// all-zero or short-period generator lands far above the upper bound (its statistic grows
// with the sample size); a byte counter (0,1,...,255,0,...) lands at 0, below the lower one.
struct ChiBounds {
  double low;
  double high;
};
ChiBounds uniform_bytes_bounds() {
  return {chi_square_quantile(255.0, -6.5), chi_square_quantile(255.0, 6.5)};
}

TEST(ChiSquareBounds, RejectBadGenerators) {
  const ChiBounds b = uniform_bytes_bounds();
  EXPECT_GT(b.low, 100.0);
  EXPECT_LT(b.high, 450.0);
  std::vector<std::uint8_t> zeros(1 << 16, 0);
  EXPECT_GT(byte_chi_square(zeros), b.high);
  std::vector<std::uint8_t> period16(1 << 16);
  for (std::size_t i = 0; i < period16.size(); ++i) {
    period16[i] = static_cast<std::uint8_t>(i * 37 % 16 * 13);
  }
  EXPECT_GT(byte_chi_square(period16), b.high);
  std::vector<std::uint8_t> counter(1 << 16);
  for (std::size_t i = 0; i < counter.size(); ++i) counter[i] = static_cast<std::uint8_t>(i);
  EXPECT_LT(byte_chi_square(counter), b.low);
}

TYPED_TEST(CryptoBackend, RandomBytesAreRoughlyUniform) {
  auto c = make_default<TypeParam>();
  ASSERT_NE(c, nullptr);
  std::vector<std::uint8_t> data(1 << 18);
  // Drawn in IV-sized pieces, the way the codec draws them.
  for (std::size_t i = 0; i < data.size(); i += 16) {
    c->random_bytes(MutableBytes{data}.subspan(i, 16));
  }
  const double chi = byte_chi_square(data);
  const ChiBounds b = uniform_bytes_bounds();
  EXPECT_GT(chi, b.low);
  EXPECT_LT(chi, b.high);
}

TYPED_TEST(CryptoBackend, RandomDrawsAreDistinct) {
  auto c = make_default<TypeParam>();
  ASSERT_NE(c, nullptr);
  std::set<Iv> seen;
  for (int i = 0; i < 10000; ++i) {
    Iv iv{};
    c->random_bytes(iv);
    EXPECT_TRUE(seen.insert(iv).second) << "repeated 16-byte draw at " << i;
  }
}

TYPED_TEST(CryptoBackend, RandomTwoObjectsWithTheSameKeysDiffer) {
  auto a = make_default<TypeParam>();
  auto b = make_default<TypeParam>();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  Iv x{}, y{};
  a->random_bytes(x);
  b->random_bytes(y);
  EXPECT_NE(x, y);
}

TYPED_TEST(CryptoBackend, RandomLargeDrawAcrossReseedBoundaries) {
  auto c = make_default<TypeParam>();
  ASSERT_NE(c, nullptr);
  Iv first{};
  c->random_bytes(first);  // leave the generator mid-block
  // Three re-seeds inside one call, and an odd length so that no boundary is block-aligned.
  std::vector<std::uint8_t> big(3 * (1u << 20) + 12345, 0);
  c->random_bytes(big);
  const ChiBounds b = uniform_bytes_bounds();
  const double chi = byte_chi_square(big);
  EXPECT_GT(chi, b.low);
  EXPECT_LT(chi, b.high);
  // No stretch of wiped (zero) buffer leaks out, and no block repeats around the boundaries.
  std::set<std::array<std::uint8_t, 16>> blocks;
  for (std::size_t i = 0; i + 16 <= big.size(); i += 16) {
    std::array<std::uint8_t, 16> blk{};
    std::copy(big.begin() + static_cast<std::ptrdiff_t>(i),
              big.begin() + static_cast<std::ptrdiff_t>(i + 16), blk.begin());
    EXPECT_NE(blk, (std::array<std::uint8_t, 16>{})) << "zero block at " << i;
    ASSERT_TRUE(blocks.insert(blk).second) << "repeated block at " << i;
  }
  // Small draws keep working after the large one.
  Iv after{};
  c->random_bytes(after);
  EXPECT_NE(after, first);
  EXPECT_EQ(c->failures(), 0u);
}

TYPED_TEST(CryptoBackend, RandomEmptyDrawIsANoOp) {
  auto c = make_default<TypeParam>();
  ASSERT_NE(c, nullptr);
  c->random_bytes(MutableBytes{});
  EXPECT_EQ(c->failures(), 0u);
}

// Draws 16 bytes in a fork()ed child and in the parent after warming the generator (so its
// buffer holds unserved keystream that fork() copies); they must differ.
template <class Backend>
void expect_child_stream_differs(Backend& c) {
  Iv warm{};
  c.random_bytes(warm);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Iv child{};
    c.random_bytes(child);
    const bool ok = write(fds[1], child.data(), child.size()) == static_cast<ssize_t>(child.size());
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  Iv parent{};
  c.random_bytes(parent);
  Iv child{};
  const ssize_t n = read(fds[0], child.data(), child.size());
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(n, static_cast<ssize_t>(child.size()));
  EXPECT_NE(parent, child);
}

TYPED_TEST(CryptoBackend, RandomChildAfterForkDoesNotRepeatTheParentsStream) {
  auto c = make_default<TypeParam>();
  ASSERT_NE(c, nullptr);
  expect_child_stream_differs(*c);
}

TEST(OpenSslCryptoRandom, ChildAfterForkDiffersWithGetpidFallback) {
  detail::rng_fork_check_by_getpid_only = true;
  auto c = make_default<OpenSslCrypto>();
  detail::rng_fork_check_by_getpid_only = false;
  ASSERT_NE(c, nullptr);
  expect_child_stream_differs(*c);
}

// ---------------------------------------------------------------- comparisons

template <class Eq>
void expect_equality_semantics(Eq eq) {
  const Digest a = [] {
    Digest d{};
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = static_cast<std::uint8_t>(i * 7 + 1);
    return d;
  }();
  Digest b = a;
  EXPECT_TRUE(eq(Bytes{a}, Bytes{b}));
  b.front() ^= 0x01;
  EXPECT_FALSE(eq(Bytes{a}, Bytes{b})) << "differs in the first byte";
  b = a;
  b.back() ^= 0x80;
  EXPECT_FALSE(eq(Bytes{a}, Bytes{b})) << "differs in the last byte";
  EXPECT_FALSE(eq(Bytes{a}, Bytes{a}.first(31))) << "different lengths";
  EXPECT_FALSE(eq(Bytes{a}.first(16), Bytes{a})) << "different lengths";
  EXPECT_TRUE(eq(Bytes{a}.first(16), Bytes{b}.first(16))) << "equal prefixes";
  EXPECT_TRUE(eq(Bytes{}, Bytes{})) << "both empty";
}

TEST(ConstantTimeEqual, Semantics) {
  expect_equality_semantics([](Bytes x, Bytes y) { return constant_time_equal(x, y); });
}

TYPED_TEST(CryptoBackend, MacEqualSemantics) {
  auto c = make_default<TypeParam>();
  ASSERT_NE(c, nullptr);
  expect_equality_semantics([&](Bytes x, Bytes y) { return c->mac_equal(x, y); });
}


// ---------------------------------------------------------------- the backends against each other

#if defined(NOMQ_HAVE_MBEDTLS)
// Random keys (hmac keys of 1 to 150 bytes, across the 64-byte block), random data and IVs:
// both backends must give the same bytes for every call, and each must open what the other
// sealed.
TEST(CryptoBackends, MbedTlsMatchesOpenSslByteForByte) {
  const std::uint32_t seed = 0x6d627463u;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng{seed};
  auto bytes = [&](std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
  };
  for (int step = 0; step < 200; ++step) {
    const auto enc = bytes(32);
    const auto mac = bytes(1 + rng() % 150);
    auto o = make<OpenSslCrypto>(enc, mac);
    auto m = make<MbedTlsCrypto>(enc, mac);
    ASSERT_TRUE(o && m);
    for (int call = 0; call < 4; ++call) {
      const auto data = bytes(rng() % 300);
      ASSERT_EQ(o->hmac_sha256(data), m->hmac_sha256(data)) << "step " << step;
      ASSERT_EQ(o->keyed_sha256(data), m->keyed_sha256(data)) << "step " << step;
      ASSERT_EQ(o->sha256(data), m->sha256(data)) << "step " << step;
      const auto plain = bytes(16 * (1 + rng() % 8));
      Iv iv{};
      for (auto& b : iv) b = static_cast<std::uint8_t>(rng());
      std::vector<std::uint8_t> by_o(plain.size()), by_m(plain.size()), back(plain.size());
      ASSERT_TRUE(o->cbc_encrypt(iv, plain, by_o));
      ASSERT_TRUE(m->cbc_encrypt(iv, plain, by_m));
      ASSERT_EQ(by_o, by_m) << "step " << step;
      ASSERT_TRUE(m->cbc_decrypt(iv, by_o, back));
      ASSERT_EQ(back, plain) << "step " << step;
      ASSERT_TRUE(o->cbc_decrypt(iv, by_m, back));
      ASSERT_EQ(back, plain) << "step " << step;
    }
    EXPECT_EQ(o->failures(), 0u);
    EXPECT_EQ(m->failures(), 0u);
  }
}

// A device seeds the DRBG from its own entropy source; a source that fails makes create() fail.
TEST(MbedTlsCrypto, SeedsFromTheGivenEntropySourceAndFailsWithoutIt) {
  struct Source {
    int calls = 0;
    bool fail = false;
  };
  auto poll = [](void* ctx, unsigned char* out, std::size_t len) -> int {
    auto* s = static_cast<Source*>(ctx);
    ++s->calls;
    if (s->fail) return -1;
    for (std::size_t i = 0; i < len; ++i) out[i] = static_cast<unsigned char>(i * 31 + 7);
    return 0;
  };
  const Key k = any_key();
  Source good;
  auto c = MbedTlsCrypto::create(k, k, EntropySource{poll, &good});
  ASSERT_TRUE(c.ok());
  EXPECT_GT(good.calls, 0);
  Iv a{}, b{};
  (*c)->random_bytes(a);
  (*c)->random_bytes(b);
  EXPECT_NE(a, b);
  Source bad{0, true};
  EXPECT_EQ(MbedTlsCrypto::create(k, k, EntropySource{poll, &bad}).error(), Errc::crypto_failure);
}
#endif

}  // namespace
}  // namespace nomq
