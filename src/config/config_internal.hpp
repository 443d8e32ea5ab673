// Shared by the config sources: key hex, the JSON field reader, the legacy crypto.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nomq/config.hpp"

namespace nomq::detail {

// Lowercase hex of `bytes`.
std::string hex_encode(Bytes bytes);

// The outcome of reading a JSON object into a NodeConfig: `error` is ok or config_bad_field;
// `message` is "<field>: <reason>"; `unknown_keys` lists keys the reader did not know (the JSON
// format rejects them, the legacy format warns).
struct FieldsRead {
  Errc error = Errc::ok;
  std::string message;
  std::vector<std::string> unknown_keys;
};

enum class KeySet : std::uint8_t {
  legacy,  // ip, port, use_ipv6, encryption_key, hmac_key
  all,     // the legacy keys plus ours
};

// Parses `text` as one JSON object, rejecting duplicate keys (nlohmann keeps the last one
// silently). On failure returns nullopt and sets `message` ("not JSON: ...").
std::optional<nlohmann::json> parse_json_object(std::string_view text, std::string& message);

// Reads the keys of `keys` from `object` into `config` (absent keys keep their defaults;
// encryption_key and hmac_key are required). Sets the IPv6 group default when use_ipv6 is true
// and no group is given.
FieldsRead read_fields(const nlohmann::json& object, KeySet keys, NodeConfig& config);

// Legacy container: base64(iv || AES-256-CBC(config key, iv, PKCS#7(plain))). Both return
// config_bad_format / crypto_failure with a reason (no file name) on failure.
Errc legacy_unwrap(std::string_view file_text, std::string& plain, std::string& message);
Errc legacy_wrap(std::string_view plain, const Iv& iv, std::string& file_text,
                 std::string& message);

// SHA-256("nomq_config_key"): the original's fixed config key.
bool legacy_config_key(Key& key);

}  // namespace nomq::detail
