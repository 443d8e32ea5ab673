#include "crypto/mbedtls_drbg.hpp"

#if defined(__unix__)
#include <unistd.h>
#endif

namespace nomq::detail {

namespace {

long current_pid() noexcept {
#if defined(__unix__)
  return static_cast<long>(getpid());
#else
  return 0;  // microcontrollers do not fork
#endif
}

}  // namespace

MbedTlsDrbg::MbedTlsDrbg() noexcept {
  mbedtls_ctr_drbg_init(&drbg_);
#if defined(MBEDTLS_ENTROPY_C)
  mbedtls_entropy_init(&entropy_);
#endif
}

// Both free functions zeroize their context (mbedtls_platform_zeroize), DRBG key and V included.
MbedTlsDrbg::~MbedTlsDrbg() {
  mbedtls_ctr_drbg_free(&drbg_);
#if defined(MBEDTLS_ENTROPY_C)
  mbedtls_entropy_free(&entropy_);
#endif
}

bool MbedTlsDrbg::seed(EntropySource source, Bytes personalization) noexcept {
  if (source.poll == nullptr) {
#if defined(MBEDTLS_ENTROPY_C)
    source = {mbedtls_entropy_func, &entropy_};
#else
    return false;
#endif
  }
  pid_ = current_pid();
  return mbedtls_ctr_drbg_seed(&drbg_, source.poll, source.context, personalization.data(),
                               personalization.size()) == 0;
}

// A fork()ed child holds a copy of the parent's DRBG state: serving it would repeat the
// parent's IVs and ids. The child re-seeds from fresh entropy, its pid as additional input.
bool MbedTlsDrbg::reseed_if_forked() noexcept {
  const long pid = current_pid();
  if (pid == pid_) return true;
  std::uint8_t additional[sizeof pid];
  for (std::size_t i = 0; i < sizeof pid; ++i) {
    additional[i] = static_cast<std::uint8_t>(static_cast<unsigned long>(pid) >> (8 * i));
  }
  if (mbedtls_ctr_drbg_reseed(&drbg_, additional, sizeof additional) != 0) return false;
  pid_ = pid;
  return true;
}

bool MbedTlsDrbg::generate(MutableBytes out) noexcept {
  if (!reseed_if_forked()) return false;
  std::size_t done = 0;
  while (done < out.size()) {
    std::size_t n = out.size() - done;
    if (n > MBEDTLS_CTR_DRBG_MAX_REQUEST) n = MBEDTLS_CTR_DRBG_MAX_REQUEST;
    if (mbedtls_ctr_drbg_random(&drbg_, out.data() + done, n) != 0) return false;
    done += n;
  }
  return true;
}

}  // namespace nomq::detail
