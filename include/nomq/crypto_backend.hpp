// The crypto backend chosen when NoMQ was built (-DNOMQ_CRYPTO=openssl|mbedtls): what the Node,
// the simulator and the `nomq` tool use. Code that needs a particular library names its class
// (OpenSslCrypto, MbedTlsCrypto) instead.
#pragma once

#include "nomq/export.hpp"

#include <memory>
#include <string_view>

#include "nomq/crypto.hpp"
#include "nomq/key_schedule.hpp"
#include "nomq/error.hpp"

namespace nomq {

// "openssl" or "mbedtls".
NOMQ_EXPORT std::string_view crypto_backend_name() noexcept;

// The library and version the backend runs on, e.g. "OpenSSL 3.0.19 ..." or "mbed TLS 2.28.3".
NOMQ_EXPORT std::string_view crypto_backend_version() noexcept;

// Creates the build's backend with the two keys (the OS entropy source seeds its generator).
// Errors as the backend's create(): crypto_failure when the library cannot set up its contexts
// or seed its generator (a node cannot run then).
// The object is the node's Rng as well (its generator: Engine::create takes it for both).
NOMQ_EXPORT Result<std::unique_ptr<CryptoRng>> make_crypto(const Key& encryption_key,
                                               const Key& hmac_key) noexcept;

// A channel key set (docs/protocol.md §14.4): the keys of `channel_secret` derived as a master
// secret's (derive_wire_keys with `context`: the group id, the channel key's epoch, wire v2),
// the backend created with its encryption and MAC keys and given its channel-tag key, so that
// its channel_tag() is keyed. Every intermediate copy is wiped. Give it to
// Engine::add_channel_key. Errors: crypto_failure.
NOMQ_EXPORT Result<std::unique_ptr<CryptoRng>> make_channel_crypto(Bytes channel_secret,
                                                                   const KeyContext& context) noexcept;
// The build's generator alone (OpenSslRng / MbedTlsRng seeded from the OS), for randomness
// without keys. Errors: crypto_failure when it cannot be seeded.
NOMQ_EXPORT Result<std::unique_ptr<Rng>> make_rng() noexcept;

// The build's backend's RFC 5869 HKDF-SHA256 (OpenSslCrypto::hkdf_sha256 or
// MbedTlsCrypto::hkdf_sha256), for derive_wire_keys() and raw_wire_keys().
NOMQ_EXPORT HkdfSha256 backend_hkdf() noexcept;

// One-shot HMAC-SHA256 under `key` through the build's backend. False on a library failure.
NOMQ_EXPORT bool backend_hmac_sha256(Bytes key, Bytes data, Digest& out) noexcept;

// Overwrites a secret with zeros so that the compiler cannot elide it (OPENSSL_cleanse or
// mbedtls_platform_zeroize). Every copy of a key the runtime makes goes through this.
NOMQ_EXPORT void wipe_secret(MutableBytes secret) noexcept;

}  // namespace nomq
