// nomq::make_crypto and backend_hmac_sha256 (nomq/crypto_backend.hpp) on the target: the
// build's backend is mbedTLS, seeded from the fixed test stream of target_crypto.hpp (qemu's
// board has no TRNG). What the simulator calls to give each simulated node its crypto
// (mcu_sim.elf). The engines' own randomness in the simulator is sim::SeededRng, not this DRBG.
#include "mcu/target_crypto.hpp"
#include "nomq/crypto_backend.hpp"

namespace nomq {

Result<std::unique_ptr<CryptoRng>> make_crypto(const Key& encryption_key,
                                               const Key& hmac_key) noexcept {
  auto made = mcu_test::make_target_crypto(Bytes{encryption_key.data(), encryption_key.size()},
                                           Bytes{hmac_key.data(), hmac_key.size()});
  if (!made) return Error{Errc::crypto_failure, "mbedTLS backend could not be created"};
  return std::unique_ptr<CryptoRng>(std::move(made));
}

// The one-shot HMAC of the build's backend (app signatures, tests/unit/app_signature_test.cpp).
bool backend_hmac_sha256(Bytes key, Bytes data, Digest& out) noexcept {
  return MbedTlsCrypto::hmac_sha256_once(key, data, out);
}

}  // namespace nomq
