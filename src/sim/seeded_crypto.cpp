#include "sim/seeded_crypto.hpp"

#include <cstring>

#include "nomq/crypto_backend.hpp"

namespace nomq::sim {

Result<std::unique_ptr<SeededCrypto>> SeededCrypto::create(const Key& encryption_key,
                                                           const Key& hmac_key,
                                                           std::uint64_t seed) {
  auto real = make_crypto(encryption_key, hmac_key);
  if (!real) return real.error();
  return std::unique_ptr<SeededCrypto>(new SeededCrypto(std::move(real).value(), seed));
}

bool SeededCrypto::cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept {
  return real_->cbc_encrypt(iv, in, out);
}
bool SeededCrypto::cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept {
  return real_->cbc_decrypt(iv, in, out);
}
Digest SeededCrypto::hmac_sha256(Bytes data) noexcept { return real_->hmac_sha256(data); }
Digest SeededCrypto::keyed_sha256(Bytes data) noexcept { return real_->keyed_sha256(data); }
Digest SeededCrypto::sha256(Bytes data) noexcept { return real_->sha256(data); }
bool SeededCrypto::mac_equal(Bytes a, Bytes b) noexcept { return real_->mac_equal(a, b); }

void SeededCrypto::random_bytes(MutableBytes out) noexcept {
  // Little-endian byte order of each 64-bit draw, fixed here so the stream is the same bytes on
  // every host.
  std::size_t i = 0;
  while (i < out.size()) {
    std::uint64_t v = prng_.next();
    for (int k = 0; k < 8 && i < out.size(); ++k, ++i) {
      out[i] = static_cast<std::uint8_t>(v);
      v >>= 8;
    }
  }
}

}  // namespace nomq::sim
