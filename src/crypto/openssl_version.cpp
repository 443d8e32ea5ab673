// Which OpenSSL the backend runs on (for `nomq --version` and bug reports).
#include <openssl/crypto.h>

#include <string_view>

#include "nomq/openssl_crypto.hpp"

namespace nomq {
std::string_view openssl_version() noexcept { return OpenSSL_version(OPENSSL_VERSION); }
}  // namespace nomq
