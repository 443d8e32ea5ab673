// Application signatures (Node::gen_signature / authenticate): the codec picks the digest per
// wire version; the runtime only calls it.
#include "wire/app_signature.hpp"

#include <gtest/gtest.h>

#include "nomq/openssl_crypto.hpp"

namespace nomq {
namespace {

std::unique_ptr<OpenSslCrypto> crypto() {
  Key enc{}, mac{};
  for (std::size_t i = 0; i < mac.size(); ++i) mac[i] = static_cast<std::uint8_t>(i * 7 + 1);
  auto c = OpenSslCrypto::create(enc, mac);
  EXPECT_TRUE(c.ok());
  return std::move(*c);
}

TEST(AppSignature, UsesTheDigestTheWireVersionClosesItsFramesWith) {
  auto c = crypto();
  const Bytes msg = as_bytes("reading 21.5");
  EXPECT_EQ(detail::wire::app_signature(WireVersion::v1, *c, msg), c->keyed_sha256(msg));
  EXPECT_EQ(detail::wire::app_signature(WireVersion::v2, *c, msg), c->hmac_sha256(msg));
  EXPECT_NE(c->keyed_sha256(msg), c->hmac_sha256(msg));
}

TEST(AppSignature, ChecksOnlyASignatureOfTheRightLengthAndVersion) {
  auto c = crypto();
  const Bytes msg = as_bytes("reading 21.5");
  for (WireVersion v : {WireVersion::v1, WireVersion::v2}) {
    const Digest sig = detail::wire::app_signature(v, *c, msg);
    EXPECT_TRUE(detail::wire::check_app_signature(v, *c, Bytes{sig}, msg));
    EXPECT_FALSE(detail::wire::check_app_signature(v, *c, Bytes{sig}, as_bytes("reading 21.6")));
    EXPECT_FALSE(detail::wire::check_app_signature(v, *c, Bytes{sig}.first(kDigestSize - 1), msg));
    const WireVersion other = v == WireVersion::v1 ? WireVersion::v2 : WireVersion::v1;
    EXPECT_FALSE(detail::wire::check_app_signature(other, *c, Bytes{sig}, msg));
  }
}

}  // namespace
}  // namespace nomq
