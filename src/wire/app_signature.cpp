#include "wire/app_signature.hpp"

#include "wire/seal.hpp"

namespace nomq::detail::wire {

Digest app_signature(WireVersion version, Crypto& crypto, Bytes message) noexcept {
  const Frame& frame = version == WireVersion::v1 ? kV1Frame : kV2Frame;
  return mac_of(crypto, frame.mac, message);
}

bool check_app_signature(WireVersion version, Crypto& crypto, Bytes signature, Bytes message) noexcept {
  if (signature.size() != kDigestSize) return false;
  const Digest expected = app_signature(version, crypto, message);
  return crypto.mac_equal(signature, Bytes{expected});
}

}  // namespace nomq::detail::wire
