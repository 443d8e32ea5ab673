// Constant-time MAC comparison, shown rather than assumed (docs/security.md):
//  1. the codec's MAC verdict comes from Crypto::mac_equal and from nothing else: a recording
//     Crypto sees exactly one mac_equal call per datagram that reaches the MAC check, and a
//     backend whose mac_equal lies changes the verdict both ways;
//  2. nothing is decrypted before the MAC verifies: cbc_decrypt is never called for a datagram
//     whose MAC fails, and is called only after mac_equal returned true;
//  3. OpenSslCrypto::mac_equal is CRYPTO_memcmp and MbedTlsCrypto::mac_equal is
//     mbedtls_ct_memcmp: source-level checks of src/crypto/*_crypto.cpp (the function body calls
//     the library's compare and no other) plus their behaviour (crypto_backend_test.cpp); and
//     src/wire compares MACs only through mac_equal.
// The crypto is the build's backend (make_crypto). The same file runs on the Cortex-M4 under
// qemu with mbedTLS (mcu/CMakeLists.txt): everything but the source-level checks (3), which
// read the source tree (NOMQ_SOURCE_DIR, defined by the host build only).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>
#if defined(NOMQ_SOURCE_DIR)
#include <cctype>
#include <fstream>
#include <sstream>
#endif

#include "nomq/wire.hpp"
#include "unit/wire_test_support.hpp"

namespace nomq::test {
namespace {

using wire::PacketType;

enum class Call { cbc_encrypt, cbc_decrypt, hmac, keyed, sha256, random, mac_equal_true, mac_equal_false };

// Forwards to the build's backend (make_crypto) and records every call in order. `force`
// overrides mac_equal's answer (to show the codec trusts it and nothing else).
class RecordingCrypto final : public Crypto {
 public:
  enum class Force { none, always_true, always_false };
  RecordingCrypto() : inner_(make_crypto(kSampleEncKey, kSampleHmacKey)) {}
  std::vector<Call> calls;
  Force force = Force::none;

  bool cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override {
    calls.push_back(Call::cbc_encrypt);
    return inner_->cbc_encrypt(iv, in, out);
  }
  bool cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override {
    calls.push_back(Call::cbc_decrypt);
    return inner_->cbc_decrypt(iv, in, out);
  }
  Digest hmac_sha256(Bytes d) noexcept override {
    calls.push_back(Call::hmac);
    return inner_->hmac_sha256(d);
  }
  Digest keyed_sha256(Bytes d) noexcept override {
    calls.push_back(Call::keyed);
    return inner_->keyed_sha256(d);
  }
  Digest sha256(Bytes d) noexcept override {
    calls.push_back(Call::sha256);
    return inner_->sha256(d);
  }
  bool mac_equal(Bytes a, Bytes b) noexcept override {
    bool r = inner_->mac_equal(a, b);
    if (force == Force::always_true) r = true;
    if (force == Force::always_false) r = false;
    calls.push_back(r ? Call::mac_equal_true : Call::mac_equal_false);
    return r;
  }

  std::size_t count(Call c) const { return static_cast<std::size_t>(std::count(calls.begin(), calls.end(), c)); }
  std::ptrdiff_t first(Call c) const {
    const auto it = std::find(calls.begin(), calls.end(), c);
    return it == calls.end() ? -1 : it - calls.begin();
  }

 private:
  std::unique_ptr<Crypto> inner_;
};

Result<wire::Packet> decode(RecordingCrypto& c, WireVersion v, Bytes d,
                            std::vector<std::uint8_t>& scratch) {
  scratch.assign(d.size() + 16, 0);
  c.calls.clear();
  return wire::decode(d, c, options_for(v), scratch);
}

// Each case: a valid packet of one version and type, sealed through the recording backend.
class MacCheck : public ::testing::TestWithParam<std::tuple<WireVersion, PacketType>> {
 protected:
  const WireVersion v = std::get<0>(GetParam());
  const PacketType t = std::get<1>(GetParam());
  RecordingCrypto c;
  const std::vector<std::uint8_t> packet = encode_or_die(sample_packet(c, v, t), c);
  std::vector<std::uint8_t> scratch;
};

TEST_P(MacCheck, ValidPacketOneMacEqualThenDecrypt) {
  const auto r = decode(c, v, packet, scratch);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(c.count(Call::mac_equal_true), 1u);
  EXPECT_EQ(c.count(Call::mac_equal_false), 0u);
  EXPECT_EQ(c.count(Call::cbc_decrypt), 1u);
  EXPECT_LT(c.first(Call::mac_equal_true), c.first(Call::cbc_decrypt));
}

TEST_P(MacCheck, BadMacNeverDecrypts) {
  // A flipped bit in the MAC, in the ciphertext, in the header (flags), and in the IV.
  for (const std::size_t pos : {packet.size() - 1, packet.size() - 40, std::size_t{4},
                                std::size_t{20}}) {
    auto d = packet;
    d[pos] ^= 0x01;
    const auto r = decode(c, v, d, scratch);
    ASSERT_FALSE(r.ok()) << "byte " << pos;
    EXPECT_EQ(r.error(), Errc::bad_mac) << "byte " << pos;
    EXPECT_EQ(c.count(Call::mac_equal_false), 1u) << "byte " << pos;
    EXPECT_EQ(c.count(Call::mac_equal_true), 0u) << "byte " << pos;
    EXPECT_EQ(c.count(Call::cbc_decrypt), 0u) << "byte " << pos << ": decrypted before the MAC";
  }
}

TEST_P(MacCheck, RejectedBeforeTheMacCheckNoMacEqualNoDecrypt) {
  auto bad_magic = packet;
  bad_magic[0] = 'X';
  for (const Bytes d : {Bytes{bad_magic}, Bytes{packet.data(), 40}}) {
    const auto r = decode(c, v, d, scratch);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(c.count(Call::mac_equal_true) + c.count(Call::mac_equal_false), 0u);
    EXPECT_EQ(c.count(Call::cbc_decrypt), 0u);
  }
}

// The verdict is mac_equal's: if it says "equal" for a forged MAC the codec goes on (so no
// other comparison vetoes it), and if it says "different" for a genuine one the codec rejects.
TEST_P(MacCheck, VerdictComesOnlyFromMacEqual) {
  auto forged = packet;
  forged.back() ^= 0x80;  // only the MAC differs: everything after the check still holds
  c.force = RecordingCrypto::Force::always_true;
  const auto lied_equal = decode(c, v, forged, scratch);
  EXPECT_TRUE(lied_equal.ok()) << lied_equal.error();
  c.force = RecordingCrypto::Force::always_false;
  const auto lied_different = decode(c, v, packet, scratch);
  ASSERT_FALSE(lied_different.ok());
  EXPECT_EQ(lied_different.error(), Errc::bad_mac);
  EXPECT_EQ(c.count(Call::cbc_decrypt), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    EveryType, MacCheck,
    ::testing::Combine(::testing::Values(WireVersion::v1, WireVersion::v2),
                       ::testing::ValuesIn(kAllTypes)),
    [](const auto& param_info) {
      return std::string{to_string(std::get<0>(param_info.param))} + "_" +
             std::string{wire::to_string(std::get<1>(param_info.param))};
    });

#if defined(NOMQ_SOURCE_DIR)
std::string read_source(const std::string& rel) {
  std::ifstream in(std::string{NOMQ_SOURCE_DIR} + "/" + rel);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The body of the first function definition whose signature starts with `signature`.
std::string function_body(const std::string& src, const std::string& signature) {
  const auto at = src.find(signature);
  if (at == std::string::npos) return {};
  const auto open = src.find('{', at);
  int depth = 0;
  for (std::size_t i = open; i < src.size(); ++i) {
    if (src[i] == '{') ++depth;
    if (src[i] == '}' && --depth == 0) return src.substr(open, i - open + 1);
  }
  return {};
}

// std::regex is avoided here: GCC 12 warns falsely inside <regex> under -fsanitize at -O2.
std::string erase_all(std::string s, const std::string& what) {
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at)) s.erase(at, what.size());
  return s;
}

std::string strip_line_comments(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 2, "//") == 0) {
      while (i < s.size() && s[i] != '\n') ++i;
    }
    if (i < s.size()) out.push_back(s[i]);
  }
  return out;
}

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// The identifier ending just before `end` (spaces skipped), or starting at `begin`.
std::string ident_before(const std::string& s, std::size_t end) {
  while (end > 0 && s[end - 1] == ' ') --end;
  std::size_t b = end;
  while (b > 0 && ident_char(s[b - 1])) --b;
  return s.substr(b, end - b);
}
std::string ident_after(const std::string& s, std::size_t begin) {
  while (begin < s.size() && s[begin] == ' ') ++begin;
  std::size_t e = begin;
  while (e < s.size() && ident_char(s[e])) ++e;
  return s.substr(begin, e - begin);
}

// True if `name` is compared with == or != anywhere in `src`.
bool compared_with_operator(const std::string& src, const std::string& name) {
  for (std::size_t i = 0; i + 1 < src.size(); ++i) {
    if ((src[i] == '=' || src[i] == '!') && src[i + 1] == '=' &&
        (i == 0 || (src[i - 1] != '=' && src[i - 1] != '<' && src[i - 1] != '>'))) {
      if (ident_before(src, i) == name || ident_after(src, i + 2) == name) return true;
    }
  }
  return false;
}

// True if a std::equal( ... ) call (up to its ';') names `name` as an identifier.
bool passed_to_std_equal(const std::string& src, const std::string& name) {
  for (auto at = src.find("std::equal("); at != std::string::npos;
       at = src.find("std::equal(", at + 1)) {
    const std::string call = src.substr(at, src.find(';', at) - at);
    for (auto n = call.find(name); n != std::string::npos; n = call.find(name, n + 1)) {
      const bool left = n == 0 || !ident_char(call[n - 1]);
      const bool right = n + name.size() >= call.size() || !ident_char(call[n + name.size()]);
      if (left && right) return true;
    }
  }
  return false;
}

// Source-level pin (documented in docs/security.md): if someone rewrites a backend's compare,
// this fails and the change gets a second look. `compare` is the library routine the body must
// call, and nothing else may compare there.
void expect_mac_equal_is(const char* file, const char* function, const std::string& compare) {
  const std::string src = read_source(file);
  ASSERT_FALSE(src.empty()) << "cannot read " << file;
  // Comments removed: only code counts.
  const std::string body = strip_line_comments(function_body(src, function));
  ASSERT_FALSE(body.empty()) << function << " not found";
  EXPECT_NE(body.find(compare + "("), std::string::npos) << body;
  // No early-exit comparison next to it: plain memcmp, std::equal, a loop, or a return before it.
  const std::string without = erase_all(body, compare);
  EXPECT_EQ(without.find("memcmp"), std::string::npos) << body;
  EXPECT_EQ(without.find("std::equal"), std::string::npos) << body;
  EXPECT_EQ(without.find("for ("), std::string::npos) << body;
  EXPECT_EQ(std::count(body.begin(), body.end(), ';'), 1) << "expected a single return: " << body;
}

TEST(MacCheckSource, OpenSslMacEqualIsCryptoMemcmp) {
  expect_mac_equal_is("src/crypto/openssl_crypto.cpp", "bool OpenSslCrypto::mac_equal(",
                      "CRYPTO_memcmp");
}

TEST(MacCheckSource, MbedTlsMacEqualIsMbedtlsCtMemcmp) {
  expect_mac_equal_is("src/crypto/mbedtls_crypto.cpp", "bool MbedTlsCrypto::mac_equal(",
                      "mbedtls_ct_memcmp");
}

TEST(MacCheckSource, WireComparesMacsOnlyThroughMacEqual) {
  for (const char* file : {"src/wire/wire_v1.cpp", "src/wire/wire_v2.cpp"}) {
    const std::string src = read_source(file);
    ASSERT_FALSE(src.empty()) << file;
    std::size_t calls = 0;
    for (auto at = src.find("mac_equal("); at != std::string::npos;
         at = src.find("mac_equal(", at + 1)) {
      ++calls;
    }
    EXPECT_EQ(calls, 1u) << file << ": one MAC comparison per decoder";
    EXPECT_EQ(src.find("memcmp"), std::string::npos) << file;
    // The computed digest is named `mac`; it must not meet == or std::equal.
    EXPECT_FALSE(compared_with_operator(strip_line_comments(src), "mac")) << file;
    EXPECT_FALSE(passed_to_std_equal(strip_line_comments(src), "mac")) << file;
  }
}

// The source checks above can fail: they see what they look for.
TEST(MacCheckSource, CheckersDetectWhatTheyLookFor) {
  EXPECT_TRUE(compared_with_operator("if (mac == expected) return;", "mac"));
  EXPECT_TRUE(compared_with_operator("return tag!=mac;", "mac"));
  EXPECT_FALSE(compared_with_operator("if (mac_at == n) return;", "mac"));
  EXPECT_FALSE(compared_with_operator("x <= mac;", "mac"));
  EXPECT_TRUE(passed_to_std_equal("ok = std::equal(mac.begin(), mac.end(), p);", "mac"));
  EXPECT_FALSE(passed_to_std_equal("ok = std::equal(id.begin(), id.end(), h);", "mac"));
  EXPECT_EQ(strip_line_comments("a; // b;\nc;"), "a; \nc;");
}
#endif  // NOMQ_SOURCE_DIR

// The build's backend's mac_equal (OpenSSL's on the host by default, mbedTLS's on the target).
TEST(MacCheckSource, BackendMacEqualBehaves) {
  auto c = make_crypto(kSampleEncKey, kSampleHmacKey);
  std::array<std::uint8_t, 32> a{};
  std::array<std::uint8_t, 32> b{};
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = b[i] = static_cast<std::uint8_t>(i * 7);
  EXPECT_TRUE(c->mac_equal(a, b));
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto d = b;
      d[i] = static_cast<std::uint8_t>(d[i] ^ (1u << bit));
      EXPECT_FALSE(c->mac_equal(a, d)) << i << "/" << bit;
    }
  }
  EXPECT_FALSE(c->mac_equal(a, Bytes{b.data(), 31}));
  EXPECT_FALSE(c->mac_equal(Bytes{}, Bytes{b.data(), 1}));
}

}  // namespace
}  // namespace nomq::test
