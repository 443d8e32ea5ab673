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


enum class KeySet : std::uint8_t {
  legacy,  // ip, port, use_ipv6, encryption_key, hmac_key
  all,     // the legacy keys plus ours
};

// Parses `text` as one JSON object, rejecting duplicate keys (nlohmann keeps the last one
// silently). Errors: config_bad_format ("not valid JSON: ...", "port: key appears more than
// once", no file name).
Result<nlohmann::json> parse_json_object(std::string_view text);

// Reads the keys of `keys` from `object` into `config` (absent keys keep their defaults;
// encryption_key and hmac_key are required) and validates the result. Sets the IPv6 group
// default when use_ipv6 is true and no group is given. Returns the keys the reader did not know
// (the legacy format warns about them). Errors: config_bad_field, "<key>: <reason>"; with
// KeySet::all, an unknown key is one.
Result<std::vector<std::string>> read_fields(const nlohmann::json& object, KeySet keys,
                                             NodeConfig& config);

// Legacy container: base64(iv || AES-256-CBC(config key, iv, PKCS#7(plain))). Errors:
// config_bad_format / crypto_failure with a reason (no file name).
Result<std::string> legacy_unwrap(std::string_view file_text);
Result<std::string> legacy_wrap(std::string_view plain, const Iv& iv);

// SHA-256("nomq_config_key"): the original's fixed config key.
bool legacy_config_key(Key& key);

}  // namespace nomq::detail
