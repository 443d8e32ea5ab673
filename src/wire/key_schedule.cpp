// The key schedule (nomq/key_schedule.hpp, docs/protocol.md §14).
#include "nomq/key_schedule.hpp"

#include <cstring>

namespace nomq {
namespace {

Bytes ascii(std::string_view s) noexcept {
  return Bytes{reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

void zero(MutableBytes b) noexcept {
  // Not a secret wipe (the caller wipes with its backend): only a defined value on failure.
  std::memset(b.data(), 0, b.size());
}

}  // namespace

std::string_view key_label(KeyPurpose purpose) noexcept {
  switch (purpose) {
    case KeyPurpose::encryption: return "nomq encryption";
    case KeyPurpose::mac: return "nomq mac";
    case KeyPurpose::app_signature: return "nomq app signature";
    case KeyPurpose::channel_tag: return "nomq channel tag";
  }
  return "nomq invalid";
}

std::size_t key_info(KeyPurpose purpose, const KeyContext& context, KeyInfo& out) noexcept {
  const std::string_view label = key_label(purpose);
  if (context.group_id.size() > kMaxGroupId) return 0;
  std::size_t n = 0;
  std::memcpy(out.data(), label.data(), label.size());
  n += label.size();
  out[n++] = 0x00;
  out[n++] = static_cast<std::uint8_t>(context.wire);
  store_be32(out.data() + n, context.key_epoch);
  n += 4;
  if (!context.group_id.empty()) std::memcpy(out.data() + n, context.group_id.data(), context.group_id.size());
  n += context.group_id.size();
  return n;
}

bool derive_key(HkdfSha256 hkdf, Bytes secret, KeyPurpose purpose, const KeyContext& context,
                Key& out) noexcept {
  KeyInfo info{};
  const std::size_t n = key_info(purpose, context, info);
  if (n == 0 || hkdf == nullptr || !hkdf(ascii(kKeyScheduleSalt), secret, Bytes{info.data(), n}, out)) {
    zero(out);
    return false;
  }
  return true;
}

bool derive_wire_keys(HkdfSha256 hkdf, Bytes master_secret, const KeyContext& context,
                      WireKeys& out) noexcept {
  const bool ok = derive_key(hkdf, master_secret, KeyPurpose::encryption, context, out.encryption) &&
                  derive_key(hkdf, master_secret, KeyPurpose::mac, context, out.mac) &&
                  derive_key(hkdf, master_secret, KeyPurpose::app_signature, context, out.app_signature) &&
                  derive_key(hkdf, master_secret, KeyPurpose::channel_tag, context, out.channel_tag);
  if (!ok) zero(out.bytes());
  return ok;
}

bool raw_wire_keys(HkdfSha256 hkdf, const Key& encryption_key, const Key& hmac_key,
                   WireVersion wire, WireKeys& out) noexcept {
  const KeyContext context{.group_id = {}, .key_epoch = 0, .wire = wire};
  out.encryption = encryption_key;
  out.mac = hmac_key;
  const bool ok = derive_key(hkdf, hmac_key, KeyPurpose::app_signature, context, out.app_signature) &&
                  derive_key(hkdf, hmac_key, KeyPurpose::channel_tag, context, out.channel_tag);
  if (!ok) zero(out.bytes());
  return ok;
}

}  // namespace nomq
