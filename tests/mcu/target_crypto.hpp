// The mbedTLS backend as the target tests create it. qemu's MPS2 board has no hardware RNG, so
// the DRBG is seeded from a fixed pseudo-random stream: fine for tests (and it makes runs
// repeatable), NEVER for a device, which passes its TRNG as the EntropySource.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "nomq/mbedtls_crypto.hpp"

namespace nomq::mcu_test {

inline int fixed_test_entropy(void* state, unsigned char* out, std::size_t len) {
  auto* s = static_cast<std::uint64_t*>(state);
  for (std::size_t i = 0; i < len; ++i) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;  // PCG's LCG step
    out[i] = static_cast<unsigned char>(*s >> 56);
  }
  return 0;
}

// The fixed stream as an EntropySource (one stream per program, shared by every backend made).
inline EntropySource fixed_test_entropy_source() {
  static std::uint64_t state = 0x6e6f6d71u;
  return EntropySource{fixed_test_entropy, &state};
}

inline std::unique_ptr<MbedTlsCrypto> make_target_crypto(Bytes encryption_key, Bytes hmac_key) {
  auto made = MbedTlsCrypto::create(encryption_key, hmac_key, fixed_test_entropy_source());
  return made ? std::move(made).value() : nullptr;
}

}  // namespace nomq::mcu_test
