// Node configuration files (Linux runtime): the original's obfuscated file and our plain JSON file.
//
//   auto loaded = nomq::load_config("nomq.json");
//   if (!loaded) { std::fprintf(stderr, "%s\n", loaded.error().c_str()); return 2; }
//   if (!loaded->warning.empty()) std::fprintf(stderr, "%s\n", loaded->warning.c_str());
//   nomq::EngineConfig engine_config = nomq::to_engine_config(loaded->config);
//
// Two formats, told apart automatically (docs/config.md):
//  - JSON (ours): an object with the original's keys (ip, port, use_ipv6, encryption_key,
//    hmac_key) plus ours (wire, epoch, group, limits, timers...). Unknown keys are rejected.
//  - legacy (the original's `nomq_config.json`): base64(IV || AES-256-CBC(SHA-256("nomq_config_key"),
//    PKCS#7(JSON))) + "\n". It holds only the original's five keys and implies wire v1.
//
// No call here throws: every failure comes back as a nomq::Error (nomq/error.hpp) whose code the
// caller can act on and whose message is one line naming the file and the field.
#pragma once

#include "nomq/export.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nomq/crypto.hpp"
#include "nomq/engine.hpp"
#include "nomq/key_schedule.hpp"
#include "nomq/error.hpp"
#include "nomq/wire.hpp"

namespace nomq {

// The clock epoch of wire timestamps: Unix (1970) or the ESP32/ESP8266 MicroPython epoch (2000).
enum class Epoch : std::uint8_t { e1970, e2000 };
NOMQ_EXPORT std::string_view to_string(Epoch e) noexcept;  // "1970", "2000"
constexpr std::uint32_t epoch_offset(Epoch e) noexcept {
  return e == Epoch::e2000 ? kEpoch2000Offset : 0u;
}

enum class LogLevel : std::uint8_t { debug, info, warning, error, off };
NOMQ_EXPORT std::string_view to_string(LogLevel l) noexcept;  // "debug", "info", "warning", "error", "off"

inline constexpr std::string_view kDefaultGroupV4 = "255.255.255.255";  // the seed's broadcast
inline constexpr std::string_view kDefaultGroupV6 = "ff02::1";          // all nodes, link-local

enum class ConfigFormat : std::uint8_t { json, legacy };

// raw: encryption_key + hmac_key as given; master: derived from master_secret.
enum class KeyForm : std::uint8_t { raw, master };
NOMQ_EXPORT std::string_view to_string(KeyForm f) noexcept;  // "raw", "master"
NOMQ_EXPORT std::string_view to_string(ConfigFormat f) noexcept;  // "json", "legacy"

// A per-channel key (docs/config.md "channel_keys", docs/protocol.md §14.4): channels matching
// `pattern` (an exact name or an MQTT filter such as "door/#", 1..kMaxChannelKeyPattern bytes)
// are sealed with the keys derived from `secret` (as a master secret, with the config's
// group_id and this key's own key_epoch) and carry keyed channel ids. Only nodes given the same
// entry read, send or name those channels. v2 only. The secret is wiped when the object goes.
struct NOMQ_EXPORT ChannelKeySpec {
  std::string pattern;
  Key secret{};
  std::uint32_t key_epoch = 0;
  ChannelKeySpec() = default;
  ChannelKeySpec(std::string p, const Key& s, std::uint32_t e = 0)
      : pattern(std::move(p)), secret(s), key_epoch(e) {}
  ~ChannelKeySpec();
  ChannelKeySpec(const ChannelKeySpec&) = default;
  ChannelKeySpec(ChannelKeySpec&&) = default;
  ChannelKeySpec& operator=(const ChannelKeySpec&) = default;
  ChannelKeySpec& operator=(ChannelKeySpec&&) = default;
  friend bool operator==(const ChannelKeySpec&, const ChannelKeySpec&) = default;
};

// Everything a node reads from its config file. Each member is one key of the file (the same
// name, units in the names). Ranges and defaults are written once, in the config schema
// (src/config/config_keys.cpp), which the constructor applies: the original's defaults where it
// had one (port 8888, limits), the engine's (EngineConfig{}) for what the engine uses, ours for
// the rest. docs/config.md lists every key with its range and default.
struct NOMQ_EXPORT NodeConfig {
  NodeConfig();  // every key at its default (the schema's); zero keys (read them, or generate_config)

  // --- the original's keys (both formats)
  std::string ip;            // local bind address (IPv4 literal, or IPv6 when use_ipv6)
  std::uint16_t port{};        // the well-known group port (0: any, for tests)
  bool use_ipv6{};
  // Keys in one of two forms (docs/config.md): raw (encryption_key + hmac_key, the
  // original's; v1 devices need it) or master (master_secret + group_id + key_epoch, from
  // which every key is derived: nomq/key_schedule.hpp). The fields of the other form are zero.
  KeyForm key_form = KeyForm::raw;
  Key encryption_key{};      // AES-256 key, 64 hex digits in files
  Key hmac_key{};            // MAC key, 64 hex digits in files

  // --- ours (JSON format only; a legacy file yields these defaults with wire = v1)
  WireVersion wire{};
  Epoch epoch{};
  // Where group traffic goes: IPv4 broadcast (limited or subnet), an IPv4 multicast group
  // (e.g. 239.1.2.3) or, with use_ipv6, an IPv6 multicast group. The loaders default it to
  // kDefaultGroupV6 when use_ipv6 is set and the file names no group.
  std::string group;
  std::string group_interface;   // network interface for multicast (empty: the system's choice)
  std::uint16_t unicast_port{};    // this node's own socket (0: any free port)
  LogLevel log_level{};

  // --- engine limits, timers and protocol knobs (units in the names, as in the JSON keys)
  EngineLimits limits;
  std::uint32_t heartbeat_interval_s{};
  std::uint32_t session_timeout_s{};
  std::uint32_t retransmit_initial_ms{};  // the loaders: wire_defaults() unless named
  std::uint32_t retransmit_max_s{};
  std::uint32_t session_lifetime_s{};
  std::uint32_t retained_answer_max_delay_ms{};
  std::uint32_t inbound_state_lifetime_s{};
  std::uint32_t discovery_period_ms{};         // start-up discovery (docs/engine.md section 3)
  std::uint32_t solicit_answer_interval_ms{};  // answers to one soliciting node: 16, then 1 per this
  std::uint32_t retained_replay_interval_ms{};  // retained replays per (session, channel): 2, then 1 per this
  std::uint32_t solicit_answer_spread_ms{};    // answer delay per known peer (capped, see engine.hpp)
  std::uint32_t discovery_settle_ms{};         // a discovery-period publish's report: margin
  std::uint32_t timestamp_window_s{};
  std::uint32_t timestamp_future_s{};  // v2: refuse stamps further ahead (capped at the window)
  std::uint32_t replay_window{};
  std::size_t v1_nonce_cache{};
  wire::V1Layout v1_publish_layout{};
  std::uint16_t default_ttl_s{};
  std::uint32_t max_retries{};  // 0: until acknowledged or TTL expiry

  // --- the master-secret key form (JSON format only)
  Key master_secret{};           // 64 hex digits in files
  std::string group_id;          // 0..64 printable ASCII bytes, bound into every derived key
  std::uint32_t key_epoch{};     // bound into every derived key
  // Key rotation (Node::rotate_keys, SIGHUP in nomq sub/pub/bridge): the old epoch stays
  // accepted this long after the node is told; sending switches halfway through.
  std::uint32_t key_overlap_s{300};
  // Per-channel keys ("channel_keys", JSON format only, wire v2, at most kMaxChannelKeys).
  std::vector<ChannelKeySpec> channel_keys;

  // Every key copy is wiped (wipe_secret) when a NodeConfig goes away.
  ~NodeConfig();
  NodeConfig(const NodeConfig&) = default;
  NodeConfig(NodeConfig&&) = default;
  NodeConfig& operator=(const NodeConfig&) = default;
  NodeConfig& operator=(NodeConfig&&) = default;
};

// Defaults that depend on the wire version. Wire v1 exists to talk to the original's devices,
// which handle about 10 packets/s (their receive loop sleeps 0.1 s per packet): with v2's
// defaults, 50 QoS 1 messages in flight to one device were retransmitted before it got to them
// and delivered again (each v1 QoS 1 retransmission has a fresh nonce). docs/engine.md,
// "Recommended v1 settings for original devices".
struct WireDefaults {
  std::uint32_t retransmit_initial_ms;
  std::size_t max_pending;
};
NOMQ_EXPORT WireDefaults wire_defaults(WireVersion wire) noexcept;

// The engine's view of a node config: every key the engine has, in its units, following the
// config schema; EngineLimits::max_queued_messages (not a file key) comes from config.limits.
NOMQ_EXPORT EngineConfig to_engine_config(const NodeConfig& config) noexcept;

// A loaded config: the settings and what the loader noticed about the file.
struct LoadedConfig {
  NodeConfig config;
  ConfigFormat format = ConfigFormat::json;
  // Lines (one per problem, "\n"-separated, each starting "WARNING: ") the caller should print
  // as they are: file readable by group/others; keys a legacy file holds that the original's
  // format does not define. Empty when there is nothing to say.
  std::string warning;
  // Whether the file named retransmit_initial_ms / max_pending. Those it did not name hold
  // wire_defaults() of the file's wire version (a legacy file: v1).
  bool named_retransmit_initial = false;
  bool named_max_pending = false;
};

// Changes a loaded config's wire version (e.g. a --wire option), moving the keys the file did
// not name to the new version's wire_defaults().
NOMQ_EXPORT void set_wire(LoadedConfig& loaded, WireVersion wire) noexcept;

// Reads, autodetects (first non-space character '{' -> JSON, else legacy), validates. `path` is
// used as given in messages. Also checks the file's permissions (see LoadedConfig::warning).
// Errors, each with a one-line message that starts with the path, e.g.
//   nomq.json: encryption_key: must be 64 hex digits (32 bytes), got 62
//   config_unreadable  cannot open or read the file ("/etc/nomq.json: No such file or directory")
//   config_bad_format  not JSON, not base64, bad length, bad padding, a key given twice
//   config_bad_field   a key is missing, unknown, of the wrong type or out of range
// The caller prints the message and refuses to start.
NOMQ_EXPORT Result<LoadedConfig> load_config(const std::string& path) noexcept;

struct LoadOptions {
  // Accept a file readable or writable by group or others (a warning line then). Off: such a
  // file is refused with config_insecure, as ssh refuses a private key.
  bool allow_insecure_permissions = false;
};
// The same with options. The file is opened with O_NOFOLLOW (a symlink is refused:
// config_unreadable).
NOMQ_EXPORT Result<LoadedConfig> load_config(const std::string& path, const LoadOptions& options) noexcept;

// The same on text already in memory; `name` stands for the file in messages. No permission check.
NOMQ_EXPORT Result<LoadedConfig> parse_config(std::string_view text, std::string_view name) noexcept;

// Checks every field's range and the cross-field rules (family of ip/group vs use_ipv6,
// unicast_port != port, session_timeout_s > heartbeat_interval_s, ...). Errors: config_bad_field,
// with the message "<key>: <reason>" (no file name), e.g. "port: must be an integer in 0..65535,
// got 70000".
NOMQ_EXPORT Result<void> validate_config(const NodeConfig& config) noexcept;

// Our JSON format: pretty-printed, every key, ending with "\n". Keys are written as hex.
// Throws only std::bad_alloc (as do the other calls returning std::string).
NOMQ_EXPORT std::string to_json_text(const NodeConfig& config);

// The original's JSON text (the plaintext of a legacy file): exactly CPython's json.dumps of
// {ip, port, use_ipv6, encryption_key, hmac_key} in that order, separators ", " and ": ".
NOMQ_EXPORT std::string to_legacy_json_text(const NodeConfig& config);

// The legacy file text: base64(iv || AES-256-CBC(config key, iv, PKCS#7(legacy JSON))) + "\n".
// `iv`: nullopt draws a fresh one from RAND_bytes (pass one only to rebuild known answers).
// Only the five original keys are stored: a loader reads the rest as defaults with wire v1.
// Errors: crypto_failure (the message says which OpenSSL call failed).
NOMQ_EXPORT Result<std::string> to_legacy_text(const NodeConfig& config,
                                   const std::optional<Iv>& iv = std::nullopt) noexcept;

// The keys `config` gives its wire version (config.wire): derived from master_secret (the
// master form) or the raw keys (raw_wire_keys), through the build's crypto backend. The caller
// wipes `out` (wipe_secret(out.bytes())). Errors: crypto_failure.
NOMQ_EXPORT Result<void> wire_keys_of(const NodeConfig& config, WireKeys& out) noexcept;

struct SaveOptions {
  bool overwrite = false;        // false: fail with io_error if the file exists (O_EXCL)
  std::optional<Iv> legacy_iv;   // legacy format only, see to_legacy_text
};

// Validates and writes `config` to `path` in `format`, creating the file with mode 0600 (the
// mode is given to open(), so there is no window in which the keys are readable by others; an
// existing file being overwritten is chmod-ed to 0600 too). Errors, with a message naming the
// file (and the key): config_bad_field (invalid config, nothing written), io_error (exists
// without overwrite, permission, disk full: the OS's reason), crypto_failure.
NOMQ_EXPORT Result<void> save_config(const NodeConfig& config, const std::string& path, ConfigFormat format,
                         const SaveOptions& options = {}) noexcept;

// A config with fresh random keys (RAND_bytes) and every other field at its default: by default
// the master-secret form (a random master_secret and an 16-hex-digit random group_id, key_epoch
// 0); KeyForm::raw draws encryption_key and hmac_key instead (the original's devices need them).
// Errors: crypto_failure.
NOMQ_EXPORT Result<NodeConfig> generate_config(KeyForm form = KeyForm::master) noexcept;

}  // namespace nomq
