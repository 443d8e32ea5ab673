// The key schedule (docs/protocol.md §14): every key a node uses derived with HKDF-SHA256
// (RFC 5869) from one master secret, with a label of its own per purpose, bound to the group
// id, the key epoch and the wire version, so that no key serves two purposes.
//
//   nomq::WireKeys keys;
//   nomq::KeyContext ctx{.group_id = "plant-3", .key_epoch = 0, .wire = nomq::WireVersion::v2};
//   if (!nomq::derive_wire_keys(&nomq::OpenSslCrypto::hkdf_sha256, master, ctx, keys)) ...
//   auto crypto = nomq::OpenSslCrypto::create(keys.encryption, keys.mac);
//   nomq::OpenSslCrypto::wipe(keys.bytes());
//
// Core code: no OS headers, no allocation. The HKDF primitive comes from a crypto backend
// (OpenSslCrypto::hkdf_sha256, MbedTlsCrypto::hkdf_sha256), so the core needs no library.
#pragma once

#include "nomq/export.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "nomq/bytes.hpp"
#include "nomq/crypto.hpp"
#include "nomq/wire.hpp"

namespace nomq {

// RFC 5869 HKDF-SHA256: extract (salt, ikm), expand (info) into out. False on failure.
using HkdfSha256 = bool (*)(Bytes salt, Bytes ikm, Bytes info, MutableBytes out) noexcept;

// The HKDF-Extract salt of every NoMQ derivation (16 ASCII bytes, no terminator).
inline constexpr std::string_view kKeyScheduleSalt = "NoMQ-HKDF-SHA256";
// Group ids are 0..64 bytes (printable ASCII in config files).
inline constexpr std::size_t kMaxGroupId = 64;

enum class KeyPurpose : std::uint8_t {
  encryption,     // AES-256-CBC of the wire
  mac,            // the wire MAC (v2 HMAC-SHA256; v1 the keyed hash)
  app_signature,  // Node::gen_signature / authenticate (v2)
  channel_tag,    // keyed channel tags (reserved: today's channel ids are unkeyed, §14.4)
};
// The label written into `info`: "nomq encryption", "nomq mac", "nomq app signature",
// "nomq channel tag".
NOMQ_EXPORT std::string_view key_label(KeyPurpose purpose) noexcept;

// What a derived key is bound to besides its purpose.
struct KeyContext {
  std::string_view group_id;      // at most kMaxGroupId bytes
  std::uint32_t key_epoch = 0;
  WireVersion wire = WireVersion::v2;
};

// info = label || 0x00 || wire version (1 byte) || key_epoch (4 bytes, big-endian) || group_id.
inline constexpr std::size_t kMaxKeyInfo = 32 + 1 + 1 + 4 + kMaxGroupId;
using KeyInfo = std::array<std::uint8_t, kMaxKeyInfo>;
// Writes the info of (purpose, context) into `out`; returns its length, 0 if group_id is too long.
NOMQ_EXPORT std::size_t key_info(KeyPurpose purpose, const KeyContext& context, KeyInfo& out) noexcept;

// key = HKDF-Expand(HKDF-Extract(kKeyScheduleSalt, secret), key_info(purpose, context), 32).
// False if hkdf fails or group_id is too long (`out` is zeroed then).
NOMQ_EXPORT bool derive_key(HkdfSha256 hkdf, Bytes secret, KeyPurpose purpose, const KeyContext& context,
                Key& out) noexcept;

// Every key of one wire version and epoch. The holder wipes it when done (bytes()).
struct WireKeys {
  Key encryption{};
  Key mac{};
  Key app_signature{};
  Key channel_tag{};
  MutableBytes bytes() noexcept {
    return MutableBytes{reinterpret_cast<std::uint8_t*>(this), sizeof(WireKeys)};
  }
};
static_assert(sizeof(WireKeys) == 4 * kKeySize, "WireKeys is four keys, no padding");

// The master-secret form: all four keys derived from `master_secret`.
NOMQ_EXPORT bool derive_wire_keys(HkdfSha256 hkdf, Bytes master_secret, const KeyContext& context,
                      WireKeys& out) noexcept;

// The raw form (a config with encryption_key and hmac_key, as the original's): encryption and
// mac are the given keys (v1 needs them as they are; v2 keeps the deployed groups' wire), while
// app_signature and channel_tag are derived with hmac_key as the secret, group id "" and epoch
// 0, so that even here no key serves two purposes.
NOMQ_EXPORT bool raw_wire_keys(HkdfSha256 hkdf, const Key& encryption_key, const Key& hmac_key,
                   WireVersion wire, WireKeys& out) noexcept;

}  // namespace nomq
