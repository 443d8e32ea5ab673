#include "wire/app_signature.hpp"

namespace nomq::detail::wire {
namespace {

bool compute(WireVersion version, Crypto& crypto, HmacSha256 hmac, Bytes v2_key, Bytes message,
             Digest& out) noexcept {
  if (version == WireVersion::v1) {
    out = crypto.keyed_sha256(message);
    return true;
  }
  return hmac != nullptr && v2_key.size() == kKeySize && hmac(v2_key, message, out);
}

}  // namespace

Digest app_signature(WireVersion version, Crypto& crypto, HmacSha256 hmac, Bytes v2_key,
                     Bytes message) noexcept {
  // On an HMAC failure (no key, or the library failed) the result is all zeros: it matches no
  // signature, because check_app_signature() refuses whenever the computation fails.
  Digest d{};
  if (!compute(version, crypto, hmac, v2_key, message, d)) d = Digest{};
  return d;
}

bool check_app_signature(WireVersion version, Crypto& crypto, HmacSha256 hmac, Bytes v2_key,
                         Bytes signature, Bytes message) noexcept {
  if (signature.size() != kDigestSize) return false;
  Digest expected{};
  if (!compute(version, crypto, hmac, v2_key, message, expected)) return false;
  return crypto.mac_equal(signature, Bytes{expected});
}

}  // namespace nomq::detail::wire
