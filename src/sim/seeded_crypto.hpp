// A Crypto for simulations: real AES-256-CBC, HMAC-SHA256 and SHA-256 (delegated to
// the backend NOMQ_CRYPTO selects, so the simulated engines run the production code paths), but random_bytes()
// drawn from a seeded xoshiro256** stream, so IVs, session ids and message ids, and hence a whole
// run, repeat exactly for a given seed. Never use it outside tests and simulations: its
// "randomness" is predictable by design.
#pragma once

#include <memory>

#include "nomq/crypto.hpp"
#include "nomq/error.hpp"
#include "sim/prng.hpp"

namespace nomq::sim {

class SeededCrypto final : public Crypto {
 public:
  // Errors: crypto_failure when the crypto backend cannot set up its contexts.
  static Result<std::unique_ptr<SeededCrypto>> create(const Key& encryption_key,
                                                     const Key& hmac_key, std::uint64_t seed);

  bool cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override;
  bool cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override;
  Digest hmac_sha256(Bytes data) noexcept override;
  Digest keyed_sha256(Bytes data) noexcept override;
  Digest sha256(Bytes data) noexcept override;
  void random_bytes(MutableBytes out) noexcept override;
  bool mac_equal(Bytes a, Bytes b) noexcept override;

  // Restarts the random stream from `seed` (a restarted node gets a fresh, still seeded, stream).
  void reseed(std::uint64_t seed) noexcept { prng_ = Prng{seed}; }

 private:
  SeededCrypto(std::unique_ptr<Crypto> real, std::uint64_t seed)
      : real_(std::move(real)), prng_(seed) {}
  std::unique_ptr<Crypto> real_;
  Prng prng_;
};

}  // namespace nomq::sim
