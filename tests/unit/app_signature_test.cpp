// Application signatures (Node::gen_signature / authenticate): v1 keeps the original's keyed
// hash under the wire MAC key; v2 is an HMAC under a key of its own. The runtime only calls
// these. (The H1 forgery itself is reproduced in node_test.cpp, AppSignatureForgery.)
// The crypto is the build's backend (nomq/crypto_backend.hpp: OpenSSL on the host by default;
// on the Cortex-M4, tests/mcu/target_backend.cpp provides it on mbedTLS), so the same file runs
// in both places.
#include "wire/app_signature.hpp"

#include <gtest/gtest.h>

#include "nomq/crypto_backend.hpp"

namespace nomq {
namespace {

std::unique_ptr<CryptoRng> crypto() {
  Key enc{}, mac{};
  for (std::size_t i = 0; i < mac.size(); ++i) mac[i] = static_cast<std::uint8_t>(i * 7 + 1);
  auto c = make_crypto(enc, mac);
  EXPECT_TRUE(c.ok());
  return std::move(*c);
}

Key signature_key() {
  Key k{};
  k.fill(0x3c);
  return k;
}

TEST(AppSignature, V1IsTheOriginalsKeyedHashAndV2AnHmacUnderItsOwnKey) {
  auto c = crypto();
  const Key k = signature_key();
  const Bytes msg = as_bytes("reading 21.5");
  const auto hmac = &backend_hmac_sha256;
  EXPECT_EQ(detail::wire::app_signature(WireVersion::v1, *c, hmac, k, msg), c->keyed_sha256(msg));
  Digest expected{};
  ASSERT_TRUE(backend_hmac_sha256(k, msg, expected));
  EXPECT_EQ(detail::wire::app_signature(WireVersion::v2, *c, hmac, k, msg), expected);
  // Not the wire MAC: H1 was exactly this equality.
  EXPECT_NE(detail::wire::app_signature(WireVersion::v2, *c, hmac, k, msg), c->hmac_sha256(msg));
}

TEST(AppSignature, ChecksOnlyASignatureOfTheRightLengthVersionAndKey) {
  auto c = crypto();
  const Key k = signature_key();
  const auto hmac = &backend_hmac_sha256;
  const Bytes msg = as_bytes("reading 21.5");
  for (WireVersion v : {WireVersion::v1, WireVersion::v2}) {
    const Digest sig = detail::wire::app_signature(v, *c, hmac, k, msg);
    EXPECT_TRUE(detail::wire::check_app_signature(v, *c, hmac, k, Bytes{sig}, msg));
    EXPECT_FALSE(detail::wire::check_app_signature(v, *c, hmac, k, Bytes{sig}, as_bytes("reading 21.6")));
    EXPECT_FALSE(detail::wire::check_app_signature(v, *c, hmac, k, Bytes{sig}.first(kDigestSize - 1), msg));
    const WireVersion other = v == WireVersion::v1 ? WireVersion::v2 : WireVersion::v1;
    EXPECT_FALSE(detail::wire::check_app_signature(other, *c, hmac, k, Bytes{sig}, msg));
  }
  Key other_key = k;
  other_key[0] ^= 1;
  const Digest sig = detail::wire::app_signature(WireVersion::v2, *c, hmac, k, msg);
  EXPECT_FALSE(detail::wire::check_app_signature(WireVersion::v2, *c, hmac, other_key, Bytes{sig}, msg));
  // Without a key (a wrong size) v2 signs nothing anyone can check.
  EXPECT_FALSE(detail::wire::check_app_signature(WireVersion::v2, *c, hmac, Bytes{}, Bytes{sig}, msg));
}

}  // namespace
}  // namespace nomq
