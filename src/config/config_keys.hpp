// The config schema, written once: every key of a NodeConfig file with its type, range, default,
// place in NodeConfig and place in EngineConfig. The reader, the validator, the writer,
// NodeConfig's defaults, to_engine_config() and the check of docs/config.md all walk this table.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "nomq/config.hpp"

namespace nomq::detail {

enum class KeyType : std::uint8_t {
  uint,     // a JSON integer in [min, max]
  boolean,  // true / false
  text,     // a JSON string (addresses, interface names)
  hex_key,  // 64 hex digits (32 bytes)
  choice,   // one of `choices`: JSON strings, or JSON integers when choice_is_integer
};

struct Choice {
  std::string_view text;
  std::uint64_t value;  // the enum's value in NodeConfig
};

struct ConfigKey {
  std::string_view name{};
  KeyType type = KeyType::uint;
  bool legacy = false;    // one of the original's five keys: read from both formats
  bool required = false;  // no default: a file must name it
  std::uint64_t min = 0;  // uint: the allowed range
  std::uint64_t max = 0;
  // The default of a key the engine does not have (uint, boolean, choice: the value; text: the
  // text). A key the engine has takes the engine's default (EngineConfig{}), written there once.
  std::uint64_t node_default = 0;
  std::string_view default_text{};
  std::span<const Choice> choices{};  // choice
  bool choice_is_integer = false;   // choice: the file holds the text as a JSON integer
  bool ignore_case = false;         // choice: "INFO" reads as "info"

  // Where the value lives in NodeConfig: get/set for uint, boolean and choice (enums as their
  // value); `text` for text; `key` for hex_key.
  std::uint64_t (*get)(const NodeConfig&) = nullptr;
  void (*set)(NodeConfig&, std::uint64_t) = nullptr;
  std::string NodeConfig::*text = nullptr;
  Key NodeConfig::*key = nullptr;

  // Where it goes in EngineConfig (with the unit conversion); null for the runtime's own keys
  // (addresses, ports, log level).
  void (*to_engine)(EngineConfig&, std::uint64_t) = nullptr;
  std::uint64_t (*from_engine)(const EngineConfig&) = nullptr;

  // The default as a number (uint, boolean, choice).
  std::uint64_t default_value() const noexcept {
    return from_engine != nullptr ? from_engine(EngineConfig{}) : node_default;
  }
};

// Every key, in the order the JSON writer puts them (the original's first).
std::span<const ConfigKey> config_keys() noexcept;

// The key named `name`, or nullptr.
const ConfigKey* find_config_key(std::string_view name) noexcept;

// "0..65535"; for a choice "v1, v2" (strings) or "1970 or 2000" (integers).
std::string range_text(const ConfigKey& key);

}  // namespace nomq::detail
