// Application signatures (Node::gen_signature / Node::authenticate, the original's API): a MAC
// of an application message under the wire's MAC key, with the digest the wire version closes
// its frames with, so a v1 gateway checks what MicroPython devices compute. The runtime calls
// these and knows nothing of which digest a version uses.
#pragma once

#include "nomq/bytes.hpp"
#include "nomq/crypto.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail::wire {

// v1: the original's keyed SHA-256 (SHA-256(message || hmac_key)); v2: HMAC-SHA256.
Digest app_signature(WireVersion version, Crypto& crypto, Bytes message) noexcept;

// Constant-time check of `signature` against app_signature(version, crypto, message). False
// for a signature of the wrong length.
bool check_app_signature(WireVersion version, Crypto& crypto, Bytes signature, Bytes message) noexcept;

}  // namespace nomq::detail::wire
