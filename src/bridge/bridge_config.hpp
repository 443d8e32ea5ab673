// `nomq bridge` configuration (docs/bridge.md): the broker, the rules that map NoMQ channel
// filters to MQTT topic filters, the store. Parsed from JSON with every error naming its field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nomq/error.hpp"

namespace nomq::bridge {

enum class Direction : std::uint8_t { in, out, both };  // in: MQTT -> NoMQ; out: NoMQ -> MQTT

// One side of a rule split at its first wildcard level: "site/plant/#" -> prefix "site/plant/",
// rest "#". An exact name has an empty rest.
struct Pattern {
  std::string filter;
  std::string prefix;
  std::string rest;
};

struct Rule {
  Pattern nomq;
  Pattern mqtt;
  Direction direction = Direction::both;
  int max_qos = 2;
  bool retain = true;
  bool out() const { return direction != Direction::in; }
  bool in() const { return direction != Direction::out; }
};

// The name on the other side: `name` must match `from.filter`; the fixed prefix is replaced
// ("plant/a/t" with plant/# -> site/plant/# gives "site/plant/a/t"; "plant" gives "site/plant").
std::string rewrite(const Pattern& from, const Pattern& to, std::string_view name);
Pattern split_pattern(std::string_view filter);

struct TlsOptions {
  std::string ca_file, ca_path, cert_file, key_file;
  std::string psk_hex, psk_identity;
  bool insecure = false;  // do not check the broker's host name (tests with a self-made CA)
  bool enabled() const {
    return !ca_file.empty() || !ca_path.empty() || !cert_file.empty() || !psk_hex.empty();
  }
};

struct BrokerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  std::string protocol = "auto";  // "auto" (5, then 3.1.1 if refused), "5", "3.1.1"
  std::string client_id;          // default: "nomq-bridge-" + bridge_id
  std::string username, password;
  int keepalive_s = 30;
  std::uint32_t session_expiry_s = 7 * 24 * 3600;  // the broker keeps our session (QoS 1/2)
  int reconnect_initial_ms = 500;
  int reconnect_max_ms = 30000;
  TlsOptions tls;
};

struct StoreOptions {
  std::string path = "nomq-bridge.db";
  std::uint64_t max_messages = 100000;
  std::uint64_t max_bytes = 64ull << 20;
  std::uint64_t dedup_entries = 100000;  // ids of messages already bridged in (QoS 1/2)
};

struct BridgeConfig {
  std::string nomq_config;  // the node's config file (keys, group, port), as `nomq sub -c`
  std::string bridge_id = "nomq-bridge";
  BrokerOptions broker;
  std::vector<Rule> rules;
  StoreOptions store;
  int stats_interval_s = 10;
  // QoS 1/2 messages published into NoMQ that a crash would republish, at most: their report
  // is not in yet, or their row's removal is not committed yet. Kept below the subscribers'
  // max_inbound_qos (256): their dedup records of what was in flight at a crash must outlive
  // the republish (docs/bridge.md, "Exactly once ... across a bridge crash").
  int nomq_inflight = 128;
};

// Errors: config_unreadable (the OS's reason), config_bad_format (JSON syntax, with line),
// config_bad_field ("rules[1].direction: ..."). Relative paths are taken from the config
// file's directory.
Result<BridgeConfig> load_bridge_config(const std::string& path);
Result<BridgeConfig> parse_bridge_config(std::string_view json_text, const std::string& base_dir);

}  // namespace nomq::bridge
