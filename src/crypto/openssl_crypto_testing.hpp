// Test hook of the OpenSSL backend (not installed, not part of the API).
#pragma once

namespace nomq::detail {

// When true, OpenSslCrypto objects created afterwards detect fork() by comparing getpid() on
// every random_bytes call instead of relying on a MADV_WIPEONFORK page. That is the fallback
// for kernels without MADV_WIPEONFORK; tests set it to exercise that path on any kernel.
extern bool rng_fork_check_by_getpid_only;

}  // namespace nomq::detail
