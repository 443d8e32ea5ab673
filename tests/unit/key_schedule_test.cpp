// The key schedule (nomq/key_schedule.hpp, docs/protocol.md §13) and its primitives, for every
// crypto backend (typed tests KeySchedule/OpenSsl.*, KeySchedule/MbedTls.*): RFC 5869's
// HKDF-SHA256 test cases, RFC 4231's HMAC-SHA256 one-shot, the committed derivation vectors
// (tests/vectors/key-schedule-kat.json, computed independently by key_schedule_kat.py), and
// the two backends byte for byte on random inputs. The same file runs on the Cortex-M4 under
// qemu (mcu/CMakeLists.txt, NOMQ_MCU_TARGET): the MbedTls cases only, the vectors embedded
// (tests/mcu/gen_json_vectors.py), without the OpenSSL comparison.
#include "nomq/key_schedule.hpp"

#if !defined(NOMQ_MCU_TARGET)
#include "nomq/openssl_crypto.hpp"
#endif
#include "nomq/wire.hpp"
#if defined(NOMQ_HAVE_MBEDTLS)
#include "nomq/mbedtls_crypto.hpp"
#endif
#if defined(NOMQ_MCU_TARGET)
#include "mcu/target_crypto.hpp"
#endif

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "unit/vector_file_support.hpp"

namespace nomq {
namespace {

std::vector<std::uint8_t> hex(std::string_view h) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string{h.substr(i, 2)}, nullptr, 16)));
  }
  return out;
}

std::string to_hex(Bytes b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto c : b) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

std::vector<std::uint8_t> range(int from, int to) {
  std::vector<std::uint8_t> v;
  for (int i = from; i < to; ++i) v.push_back(static_cast<std::uint8_t>(i));
  return v;
}

#if defined(NOMQ_MCU_TARGET)
using Backends = ::testing::Types<MbedTlsCrypto>;  // no OpenSSL on the target
#elif defined(NOMQ_HAVE_MBEDTLS)
using Backends = ::testing::Types<OpenSslCrypto, MbedTlsCrypto>;
#else
using Backends = ::testing::Types<OpenSslCrypto>;
#endif

struct BackendName {
  template <class B>
  static std::string GetName(int) {
#if defined(NOMQ_MCU_TARGET)
    return "MbedTls";
#else
    return std::is_same_v<B, OpenSslCrypto> ? "OpenSsl" : "MbedTls";
#endif
  }
};

// A backend object with these keys, through the backend's own create().
template <class B>
auto create_backend(const Key& encryption_key, const Key& mac_key) {
#if defined(NOMQ_MCU_TARGET)
  // qemu's board has no entropy source: the DRBG (which these tests never draw from) is seeded
  // from the target tests' fixed stream (tests/mcu/target_crypto.hpp).
  return B::create(encryption_key, mac_key, mcu_test::fixed_test_entropy_source());
#else
  return B::create(encryption_key, mac_key);
#endif
}

template <class B>
class KeySchedule : public ::testing::Test {};
TYPED_TEST_SUITE(KeySchedule, Backends, BackendName);

std::string hkdf_hex(HkdfSha256 f, Bytes salt, Bytes ikm, Bytes info, std::size_t n) {
  std::vector<std::uint8_t> out(n);
  if (!f(salt, ikm, info, out)) return "failed";
  return to_hex(out);
}

// RFC 5869 appendix A, the three SHA-256 cases.
TYPED_TEST(KeySchedule, HkdfMatchesRfc5869TestCases) {
  const HkdfSha256 f = &TypeParam::hkdf_sha256;
  const auto ikm1 = std::vector<std::uint8_t>(22, 0x0b);
  EXPECT_EQ(hkdf_hex(f, hex("000102030405060708090a0b0c"), ikm1, hex("f0f1f2f3f4f5f6f7f8f9"), 42),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  EXPECT_EQ(hkdf_hex(f, range(0x60, 0xb0), range(0x00, 0x50), range(0xb0, 0x100), 82),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271"
            "cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
  EXPECT_EQ(hkdf_hex(f, Bytes{}, ikm1, Bytes{}, 42),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TYPED_TEST(KeySchedule, HkdfRefusesImpossibleLengths) {
  std::vector<std::uint8_t> too_long(255 * 32 + 1, 0xAA);
  const auto ikm = std::vector<std::uint8_t>(22, 0x0b);
  EXPECT_FALSE(TypeParam::hkdf_sha256(Bytes{}, ikm, Bytes{}, too_long));
  EXPECT_FALSE(TypeParam::hkdf_sha256(Bytes{}, ikm, Bytes{}, MutableBytes{}));
  std::vector<std::uint8_t> longest(255 * 32);
  EXPECT_TRUE(TypeParam::hkdf_sha256(Bytes{}, ikm, Bytes{}, longest));
}

// RFC 4231 test case 2 ("Jefe").
TYPED_TEST(KeySchedule, OneShotHmacMatchesRfc4231) {
  Digest d{};
  ASSERT_TRUE(TypeParam::hmac_sha256_once(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"), d));
  EXPECT_EQ(to_hex(d), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TYPED_TEST(KeySchedule, WipeZeroes) {
  std::vector<std::uint8_t> secret(40, 0x5c);
  TypeParam::wipe(secret);
  EXPECT_EQ(secret, std::vector<std::uint8_t>(40, 0));
}

Key key_of(const std::string& h) {
  Key k{};
  const auto v = hex(h);
  EXPECT_EQ(v.size(), k.size());
  std::copy_n(v.begin(), std::min(v.size(), k.size()), k.begin());
  return k;
}

// Every derived vector of key-schedule-kat.json: the info bytes, then all four keys.
void check_committed_vectors(HkdfSha256 hkdf) {
  const nlohmann::json& file = test::vector_file("key-schedule-kat.json");
  ASSERT_FALSE(file.is_discarded()) << "tests/vectors/key-schedule-kat.json unreadable";
  ASSERT_GE(file["derived"].size(), 5u);
  const std::pair<KeyPurpose, const char*> purposes[] = {
      {KeyPurpose::encryption, "encryption"}, {KeyPurpose::mac, "mac"},
      {KeyPurpose::app_signature, "app_signature"}, {KeyPurpose::channel_tag, "channel_tag"}};
  for (const nlohmann::json& v : file["derived"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    const std::string group = v["group_id"].get<std::string>();
    const KeyContext ctx{.group_id = group, .key_epoch = v["key_epoch"].get<std::uint32_t>(),
                         .wire = static_cast<WireVersion>(v["wire"].get<int>())};
    const Key master = key_of(v["master_secret"].get<std::string>());
    for (const auto& [purpose, name] : purposes) {
      KeyInfo info{};
      const std::size_t n = key_info(purpose, ctx, info);
      EXPECT_EQ(to_hex(Bytes{info.data(), n}), v["info"][name].get<std::string>()) << name;
    }
    WireKeys keys;
    ASSERT_TRUE(derive_wire_keys(hkdf, master, ctx, keys));
    EXPECT_EQ(to_hex(keys.encryption), v["keys"]["encryption"].get<std::string>());
    EXPECT_EQ(to_hex(keys.mac), v["keys"]["mac"].get<std::string>());
    EXPECT_EQ(to_hex(keys.app_signature), v["keys"]["app_signature"].get<std::string>());
    EXPECT_EQ(to_hex(keys.channel_tag), v["keys"]["channel_tag"].get<std::string>());
  }
  for (const nlohmann::json& v : file["raw"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    WireKeys keys;
    ASSERT_TRUE(raw_wire_keys(hkdf, key_of(v["encryption_key"].get<std::string>()),
                              key_of(v["hmac_key"].get<std::string>()),
                              static_cast<WireVersion>(v["wire"].get<int>()), keys));
    EXPECT_EQ(to_hex(keys.encryption), v["keys"]["encryption"].get<std::string>());
    EXPECT_EQ(to_hex(keys.mac), v["keys"]["mac"].get<std::string>());
    EXPECT_EQ(to_hex(keys.app_signature), v["keys"]["app_signature"].get<std::string>());
    EXPECT_EQ(to_hex(keys.channel_tag), v["keys"]["channel_tag"].get<std::string>());
  }
}

TYPED_TEST(KeySchedule, DerivationMatchesTheCommittedVectors) {
  check_committed_vectors(&TypeParam::hkdf_sha256);
}

// The channel tag vectors (docs/protocol.md §14.4): a channel secret's tag key, and the keyed
// channel ids a channel key set of this backend computes (wire::channel_id through
// Crypto::channel_tag), next to the group's unkeyed ids.
TYPED_TEST(KeySchedule, ChannelTagsMatchTheCommittedVectors) {
  const nlohmann::json& file = test::vector_file("key-schedule-kat.json");
  ASSERT_GE(file["channel_tags"].size(), 2u);
  for (const nlohmann::json& v : file["channel_tags"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    const std::string group = v["group_id"].get<std::string>();
    const KeyContext ctx{.group_id = group, .key_epoch = v["key_epoch"].get<std::uint32_t>(),
                         .wire = static_cast<WireVersion>(v["wire"].get<int>())};
    WireKeys keys;
    ASSERT_TRUE(derive_wire_keys(&TypeParam::hkdf_sha256, key_of(v["channel_secret"].get<std::string>()),
                                 ctx, keys));
    EXPECT_EQ(to_hex(keys.channel_tag), v["channel_tag_key"].get<std::string>());
    auto keyed = create_backend<TypeParam>(keys.encryption, keys.mac);
    auto plain = create_backend<TypeParam>(keys.encryption, keys.mac);
    ASSERT_TRUE(keyed);
    ASSERT_TRUE(plain);
    (*keyed)->set_channel_tag_key(keys.channel_tag);
    for (const nlohmann::json& c : v["channels"]) {
      const std::string name = c["channel"].get<std::string>();
      EXPECT_EQ(to_hex(wire::channel_id(**keyed, name)), c["channel_id"].get<std::string>()) << name;
      EXPECT_EQ(to_hex(wire::channel_id(**plain, name)), c["group_channel_id"].get<std::string>()) << name;
    }
    TypeParam::wipe(keys.bytes());
  }
}

// No key serves two purposes, epochs, versions or groups: every key of a grid is distinct.
TYPED_TEST(KeySchedule, EveryPurposeEpochVersionAndGroupGetsItsOwnKey) {
  Key master{};
  master.fill(0x42);
  std::set<Key> seen;
  std::size_t made = 0;
  for (const char* group : {"", "a", "b"}) {
    for (std::uint32_t epoch : {0u, 1u, 0xFFFFFFFFu}) {
      for (WireVersion wire : {WireVersion::v1, WireVersion::v2}) {
        WireKeys k;
        ASSERT_TRUE(derive_wire_keys(&TypeParam::hkdf_sha256, master,
                                     KeyContext{.group_id = group, .key_epoch = epoch, .wire = wire}, k));
        for (const Key* key : {&k.encryption, &k.mac, &k.app_signature, &k.channel_tag}) {
          seen.insert(*key);
          ++made;
        }
      }
    }
  }
  EXPECT_EQ(seen.size(), made);
}

TYPED_TEST(KeySchedule, GroupIdLongerThan64BytesIsRefused) {
  Key master{};
  WireKeys k;
  k.mac.fill(0x11);
  const std::string long_group(kMaxGroupId + 1, 'g');
  EXPECT_FALSE(derive_wire_keys(&TypeParam::hkdf_sha256, master,
                                KeyContext{.group_id = long_group, .key_epoch = 0, .wire = WireVersion::v2}, k));
  EXPECT_EQ(k.mac, Key{});  // nothing half-derived is left behind
  const std::string longest(kMaxGroupId, 'g');
  EXPECT_TRUE(derive_wire_keys(&TypeParam::hkdf_sha256, master,
                               KeyContext{.group_id = longest, .key_epoch = 0, .wire = WireVersion::v2}, k));
}

#if defined(NOMQ_HAVE_MBEDTLS) && !defined(NOMQ_MCU_TARGET)
// OpenSSL and mbedTLS byte for byte: HKDF on random salts, secrets, infos and lengths, and the
// one-shot HMAC on random keys and messages (seeded; the seed is printed on failure).
TEST(KeyScheduleBackends, OpenSslAndMbedTlsAgreeByteForByte) {
  const unsigned seed = 20261205;
  std::mt19937 rng(seed);
  auto bytes = [&](std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
  };
  for (int i = 0; i < 200; ++i) {
    const auto salt = bytes(rng() % 80), ikm = bytes(1 + rng() % 80), info = bytes(rng() % 120);
    const std::size_t n = 1 + rng() % 200;
    std::vector<std::uint8_t> a(n), b(n);
    ASSERT_TRUE(OpenSslCrypto::hkdf_sha256(salt, ikm, info, a)) << "seed " << seed;
    ASSERT_TRUE(MbedTlsCrypto::hkdf_sha256(salt, ikm, info, b)) << "seed " << seed;
    ASSERT_EQ(a, b) << "seed " << seed << " case " << i;
    Digest da{}, db{};
    const auto key = bytes(1 + rng() % 100), msg = bytes(rng() % 300);
    ASSERT_TRUE(OpenSslCrypto::hmac_sha256_once(key, msg, da));
    ASSERT_TRUE(MbedTlsCrypto::hmac_sha256_once(key, msg, db));
    ASSERT_EQ(da, db) << "seed " << seed << " case " << i;
  }
}
#endif

}  // namespace
}  // namespace nomq
