// Application signatures (Node::gen_signature / Node::authenticate, the original's API): a MAC
// of an application message. The runtime calls these and knows nothing of which key or digest
// a version uses.
//
// v2: HMAC-SHA256 under the application-signature key of the key schedule
// (nomq/key_schedule.hpp), a key no datagram is ever MACed with: a signature obtained for any
// string is no datagram MAC, and a datagram's MAC is no signature (finding H1,
// docs/security.md).
// v1: the original's keyed hash SHA-256(message || hmac_key) under the wire MAC key, so that a
// v1 gateway checks what MicroPython devices compute. HAZARD: the v1 wire MAC is the same
// construction under the same key, so whoever can get a string signed can forge v1 datagrams,
// and every captured v1 datagram is a valid (message, signature) pair. Kept only because the
// original's devices compute it; docs/security.md.
#pragma once

#include "nomq/bytes.hpp"
#include "nomq/crypto.hpp"
#include "nomq/export.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail::wire {

// A one-shot HMAC-SHA256 under a given key (a backend's hmac_sha256_once).
using HmacSha256 = bool (*)(Bytes key, Bytes data, Digest& out) noexcept;

// v1: crypto.keyed_sha256(message); v2: hmac(v2_key, message). Should the HMAC fail, the
// result is all zeros, which check_app_signature() never accepts (it refuses on failure).
// Exported (not API): libnomq_runtime calls them across the shared library boundary.
NOMQ_EXPORT Digest app_signature(WireVersion version, Crypto& crypto, HmacSha256 hmac, Bytes v2_key,
                     Bytes message) noexcept;

// Constant-time check of `signature` against app_signature(...). False for a signature of the
// wrong length or an HMAC failure.
NOMQ_EXPORT bool check_app_signature(WireVersion version, Crypto& crypto, HmacSha256 hmac, Bytes v2_key,
                         Bytes signature, Bytes message) noexcept;

}  // namespace nomq::detail::wire
