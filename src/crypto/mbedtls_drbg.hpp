// The mbedTLS backend's random generator: NIST SP 800-90A CTR_DRBG (AES-256) from mbedTLS,
// seeded and re-seeded from an entropy source. Kept apart from MbedTlsCrypto so that it can
// stand alone as the node's random generator (it needs no key of the node).
#pragma once

#include <cstddef>
#include <cstdint>

#include <mbedtls/ctr_drbg.h>
#if defined(MBEDTLS_ENTROPY_C)
#include <mbedtls/entropy.h>
#endif

#include "nomq/bytes.hpp"
#include "nomq/mbedtls_crypto.hpp"

namespace nomq::detail {

// Not copyable or movable: mbedTLS keeps a pointer to the entropy context inside the DRBG.
class MbedTlsDrbg {
 public:
  MbedTlsDrbg() noexcept;
  ~MbedTlsDrbg();
  MbedTlsDrbg(const MbedTlsDrbg&) = delete;
  MbedTlsDrbg& operator=(const MbedTlsDrbg&) = delete;

  // Seeds the DRBG from `source`, or, when source.poll is null, from mbedTLS's default entropy
  // collector (the OS source: getrandom() or /dev/urandom on Linux; only where mbedTLS is built
  // with MBEDTLS_ENTROPY_C). `personalization` is mixed into the seed. False if the source
  // fails or none is available; the generator must not be used then.
  bool seed(EntropySource source, Bytes personalization) noexcept;

  // Fills `out` with DRBG output, in requests of at most MBEDTLS_CTR_DRBG_MAX_REQUEST bytes.
  // The DRBG re-seeds itself from the source every MBEDTLS_CTR_DRBG_RESEED_INTERVAL requests,
  // and, on Unix, first thing in a fork()ed child. False if such a re-seed fails: `out` then
  // holds no usable bytes.
  bool generate(MutableBytes out) noexcept;

 private:
  bool reseed_if_forked() noexcept;

  mbedtls_ctr_drbg_context drbg_;
#if defined(MBEDTLS_ENTROPY_C)
  mbedtls_entropy_context entropy_;
#endif
  long pid_ = 0;  // the process that seeded (Unix; 0 elsewhere)
};

}  // namespace nomq::detail
