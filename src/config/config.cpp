// NodeConfig: fields, ranges, JSON reading and writing, the engine's view.
#include <arpa/inet.h>
#include <net/if.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <optional>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "config/config_internal.hpp"

namespace nomq {

std::string_view to_string(Epoch e) noexcept { return e == Epoch::e2000 ? "2000" : "1970"; }

std::string_view to_string(LogLevel l) noexcept {
  switch (l) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
    case LogLevel::off: return "off";
  }
  return "warning";
}

std::string_view to_string(ConfigFormat f) noexcept {
  return f == ConfigFormat::legacy ? "legacy" : "json";
}

EngineConfig to_engine_config(const NodeConfig& c) noexcept {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  EngineConfig e;
  e.wire = c.wire;
  e.epoch_offset = epoch_offset(c.epoch);
  e.timestamp_window_s = c.timestamp_window_s;
  e.replay_window = c.replay_window;
  e.v1_nonce_cache = c.v1_nonce_cache;
  e.v1_publish_layout = c.v1_publish_layout;
  e.default_ttl_s = c.default_ttl_s;
  e.max_retries = c.max_retries;
  e.limits = c.limits;
  e.timers.heartbeat_interval = seconds{c.heartbeat_interval_s};
  e.timers.session_timeout = seconds{c.session_timeout_s};
  e.timers.retransmit_initial = milliseconds{c.retransmit_initial_ms};
  e.timers.retransmit_max = seconds{c.retransmit_max_s};
  e.timers.session_lifetime = seconds{c.session_lifetime_s};
  e.timers.retained_answer_max_delay = milliseconds{c.retained_answer_max_delay_ms};
  e.timers.inbound_state_lifetime = seconds{c.inbound_state_lifetime_s};
  return e;
}

namespace detail {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// One unsigned integer key: its JSON name, range and place in NodeConfig. The reader, the
// validator and the writer all walk this table, so a range is written down once.
struct UintField {
  const char* name;
  std::uint64_t min;
  std::uint64_t max;
  std::uint64_t (*get)(const NodeConfig&);
  void (*set)(NodeConfig&, std::uint64_t);
};

#define NOMQ_UINT_FIELD(key, member, lo, hi)                                             \
  UintField {                                                                            \
    key, lo, hi, [](const NodeConfig& c) -> std::uint64_t { return c.member; },          \
        [](NodeConfig& c, std::uint64_t v) { c.member = static_cast<decltype(c.member)>(v); } \
  }

// Bounds keep the engine's up-front allocation sane and the timers meaningful; docs/config.md
// repeats them. max_message_size: the largest message that fits a 2048-byte datagram whatever
// the channel name: v2 = 2048 - 53 header - 32 MAC, rounded down to whole cipher blocks (1952),
// minus one padding byte, the 5-byte body prefix and a 255-byte name: 1691 (v1 allows more).
const std::array<UintField, 25> kUintFields{{
    NOMQ_UINT_FIELD("port", port, 0, 65535),
    NOMQ_UINT_FIELD("unicast_port", unicast_port, 0, 65535),
    NOMQ_UINT_FIELD("timestamp_window_s", timestamp_window_s, 1, 86400),
    NOMQ_UINT_FIELD("default_ttl_s", default_ttl_s, 1, 65535),
    NOMQ_UINT_FIELD("max_retries", max_retries, 0, 1000000),
    NOMQ_UINT_FIELD("replay_window", replay_window, 64, 65536),
    NOMQ_UINT_FIELD("v1_nonce_cache", v1_nonce_cache, 1, 1048576),
    NOMQ_UINT_FIELD("max_pending", limits.max_pending, 1, 65535),
    NOMQ_UINT_FIELD("max_channels", limits.max_channels, 1, 4096),
    NOMQ_UINT_FIELD("max_message_size", limits.max_message_size, 1, 1691),
    NOMQ_UINT_FIELD("max_retained_per_channel", limits.max_retained_per_channel, 1, 1000),
    NOMQ_UINT_FIELD("max_retained_channels", limits.max_retained_channels, 1, 4096),
    NOMQ_UINT_FIELD("max_peers", limits.max_peers, 1, 65535),
    NOMQ_UINT_FIELD("max_peer_subscriptions", limits.max_peer_subscriptions, 1, 1048576),
    NOMQ_UINT_FIELD("max_senders", limits.max_senders, 1, 65535),
    NOMQ_UINT_FIELD("max_inbound_qos", limits.max_inbound_qos, 1, 1048576),
    NOMQ_UINT_FIELD("max_inbox", limits.max_inbox, 1, 1048576),
    NOMQ_UINT_FIELD("max_outbox", limits.max_outbox, 1, 1048576),
    NOMQ_UINT_FIELD("heartbeat_interval_s", heartbeat_interval_s, 1, 86400),
    NOMQ_UINT_FIELD("session_timeout_s", session_timeout_s, 2, 864000),
    NOMQ_UINT_FIELD("retransmit_initial_ms", retransmit_initial_ms, 1, 60000),
    NOMQ_UINT_FIELD("retransmit_max_s", retransmit_max_s, 1, 86400),
    NOMQ_UINT_FIELD("session_lifetime_s", session_lifetime_s, 60, 31536000),
    NOMQ_UINT_FIELD("retained_answer_max_delay_ms", retained_answer_max_delay_ms, 0, 60000),
    NOMQ_UINT_FIELD("inbound_state_lifetime_s", inbound_state_lifetime_s, 1, 86400),
}};
#undef NOMQ_UINT_FIELD

// Keys that are not in kUintFields, in the order the writer puts them.
constexpr std::array<std::string_view, 10> kOtherKeys{
    "ip",    "use_ipv6", "encryption_key", "hmac_key",        "wire",
    "epoch", "group",    "group_interface", "log_level", "v1_publish_layout"};
constexpr std::array<std::string_view, 5> kLegacyKeys{"ip", "port", "use_ipv6", "encryption_key",
                                                      "hmac_key"};

bool known_key(std::string_view key, KeySet set) {
  if (set == KeySet::legacy)
    return std::find(kLegacyKeys.begin(), kLegacyKeys.end(), key) != kLegacyKeys.end();
  if (std::find(kOtherKeys.begin(), kOtherKeys.end(), key) != kOtherKeys.end()) return true;
  return std::any_of(kUintFields.begin(), kUintFields.end(),
                     [&](const UintField& f) { return key == f.name; });
}

// A value as it appears in the file, cut short for a one-line message.
std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// A key as it can appear in a one-line message: as is when plain, else JSON-quoted.
std::string printable_key(const std::string& key) {
  const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return u < 0x7f && std::isgraph(u) != 0;
  });
  return plain ? key : json(key).dump(-1, ' ', true, json::error_handler_t::replace);
}

std::string range_text(std::uint64_t lo, std::uint64_t hi) {
  return std::to_string(lo) + ".." + std::to_string(hi);
}

bool parse_ip(const std::string& text, bool& is_v6, std::array<std::uint8_t, 16>& addr) {
  if (inet_pton(AF_INET, text.c_str(), addr.data()) == 1) {
    is_v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), addr.data()) == 1) {
    is_v6 = true;
    return true;
  }
  return false;
}

struct Reader {
  const json& object;
  std::optional<Error> error;

  bool fail(std::string_view key, const std::string& why) {
    error.emplace(Errc::config_bad_field, key, ": ", why);
    return false;
  }
  const json* find(std::string_view key) const {
    auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
  }
  bool string_of(std::string_view key, const json& v, std::string& out) {
    if (!v.is_string()) return fail(key, "must be a string, got " + shown(v));
    out = v.get<std::string>();
    return true;
  }
  bool uint_field(const UintField& f, NodeConfig& c) {
    const json* v = find(f.name);
    if (v == nullptr) return true;
    const std::string want = "must be an integer in " + range_text(f.min, f.max);
    if (!v->is_number_integer()) return fail(f.name, want + ", got " + shown(*v));
    if (v->is_number_unsigned()) {
      const auto n = v->get<std::uint64_t>();
      if (n < f.min || n > f.max) return fail(f.name, want + ", got " + std::to_string(n));
      f.set(c, n);
      return true;
    }
    const auto n = v->get<std::int64_t>();
    if (n < 0 || static_cast<std::uint64_t>(n) < f.min || static_cast<std::uint64_t>(n) > f.max)
      return fail(f.name, want + ", got " + std::to_string(n));
    f.set(c, static_cast<std::uint64_t>(n));
    return true;
  }
  bool key_field(std::string_view name, Key& out) {
    const json* v = find(name);
    if (v == nullptr) return fail(name, "missing (64 hex digits, 32 bytes)");
    std::string s;
    if (!string_of(name, *v, s)) return false;
    if (s.size() != 2 * kKeySize) {
      return fail(name, "must be 64 hex digits (32 bytes), got " + std::to_string(s.size()));
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (std::isxdigit(static_cast<unsigned char>(s[i])) == 0) {
        return fail(name, "not hex: character " + json(std::string(1, s[i])).dump() +
                              " at position " + std::to_string(i));
      }
    }
    for (std::size_t i = 0; i < kKeySize; ++i) {
      out[i] = static_cast<std::uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
    }
    return true;
  }
  template <class E, std::size_t N>
  bool choice_field(std::string_view name, const std::array<std::pair<std::string_view, E>, N>& ch,
                    E& out, bool ignore_case = false) {
    const json* v = find(name);
    if (v == nullptr) return true;
    std::string all;
    for (const auto& [text, value] : ch) all += (all.empty() ? "" : ", ") + std::string{text};
    if (!v->is_string()) return fail(name, "must be one of " + all + ", got " + shown(*v));
    std::string s = v->get<std::string>();
    if (ignore_case) {
      std::transform(s.begin(), s.end(), s.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
    for (const auto& [text, value] : ch) {
      if (s == text) {
        out = value;
        return true;
      }
    }
    return fail(name, "must be one of " + all + ", got " + shown(*v));
  }
};

}  // namespace

std::string hex_encode(Bytes bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 0x0F]);
  }
  return s;
}

Result<json> parse_json_object(std::string_view text) {
  // nlohmann keeps the last of duplicate keys without a word; a config must not hide one.
  std::vector<std::set<std::string>> seen;
  std::string duplicate;
  json::parser_callback_t cb = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      seen.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!seen.empty()) seen.pop_back();
    } else if (event == json::parse_event_t::key && !seen.empty()) {
      const auto key = parsed.get<std::string>();
      if (!seen.back().insert(key).second && duplicate.empty()) duplicate = printable_key(key);
    }
    return true;
  };
  try {
    json j = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true,
                         /*ignore_comments=*/false);
    if (!duplicate.empty()) {
      return Error{Errc::config_bad_format, duplicate, ": key appears more than once"};
    }
    if (!j.is_object()) {
      return Error{Errc::config_bad_format, "not a JSON object (got ", j.type_name(), ")"};
    }
    return Result<json>{std::in_place, std::move(j)};
  } catch (const json::exception& e) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line 1, column 9: ...".
    std::string what = e.what();
    if (const auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return Error{Errc::config_bad_format, "not valid JSON: ", what};
  } catch (const std::exception& e) {
    return Error{Errc::config_bad_format, "cannot parse: ", e.what()};
  }
}

Result<std::vector<std::string>> read_fields(const json& object, KeySet keys, NodeConfig& c) {
  Reader r{object, {}};
  std::vector<std::string> unknown_keys;
  for (const auto& item : object.items()) {
    if (!known_key(item.key(), keys)) unknown_keys.push_back(printable_key(item.key()));
  }
  if (keys == KeySet::all && !unknown_keys.empty()) {
    r.fail(unknown_keys.front(), "unknown key (see docs/config.md for the keys)");
    return *r.error;
  }

  const auto ok = [&]() -> bool {
    for (const auto& f : kUintFields) {
      if ((keys == KeySet::all || std::string_view{f.name} == "port") && !r.uint_field(f, c))
        return false;
    }
    if (const json* v = r.find("ip"); v != nullptr && !r.string_of("ip", *v, c.ip)) return false;
    if (const json* v = r.find("use_ipv6"); v != nullptr) {
      if (!v->is_boolean()) return r.fail("use_ipv6", "must be true or false, got " + shown(*v));
      c.use_ipv6 = v->get<bool>();
    }
    if (!r.key_field("encryption_key", c.encryption_key)) return false;
    if (!r.key_field("hmac_key", c.hmac_key)) return false;
    bool group_given = false;
    if (keys == KeySet::all) {
      static constexpr std::array<std::pair<std::string_view, WireVersion>, 2> kWire{
          {{"v1", WireVersion::v1}, {"v2", WireVersion::v2}}};
      static constexpr std::array<std::pair<std::string_view, LogLevel>, 5> kLevels{
          {{"debug", LogLevel::debug},
           {"info", LogLevel::info},
           {"warning", LogLevel::warning},
           {"error", LogLevel::error},
           {"off", LogLevel::off}}};
      static constexpr std::array<std::pair<std::string_view, wire::V1Layout>, 2> kLayouts{
          {{"gap20", wire::V1Layout::gap20}, {"device16", wire::V1Layout::device16}}};
      if (!r.choice_field("wire", kWire, c.wire)) return false;
      if (!r.choice_field("log_level", kLevels, c.log_level, /*ignore_case=*/true)) return false;
      if (!r.choice_field("v1_publish_layout", kLayouts, c.v1_publish_layout)) return false;
      if (const json* v = r.find("epoch"); v != nullptr) {
        const bool is_int = v->is_number_integer();
        if (is_int && v->get<std::int64_t>() == 1970) {
          c.epoch = Epoch::e1970;
        } else if (is_int && v->get<std::int64_t>() == 2000) {
          c.epoch = Epoch::e2000;
        } else {
          return r.fail("epoch", "must be 1970 or 2000, got " + shown(*v));
        }
      }
      if (const json* v = r.find("group"); v != nullptr) {
        if (!r.string_of("group", *v, c.group)) return false;
        group_given = true;
      }
      if (const json* v = r.find("group_interface");
          v != nullptr && !r.string_of("group_interface", *v, c.group_interface))
        return false;
    }
    if (c.use_ipv6 && !group_given) c.group = std::string{kDefaultGroupV6};
    return true;
  }();
  if (!ok) return *r.error;
  if (auto valid = validate_config(c); !valid) return valid.error();
  return unknown_keys;
}

}  // namespace detail

Result<void> validate_config(const NodeConfig& c) noexcept {
  try {
    const auto fail = [&](std::string_view key, const std::string& why) {
      return Error{Errc::config_bad_field, key, ": ", why};
    };
    for (const auto& f : detail::kUintFields) {
      const std::uint64_t v = f.get(c);
      if (v < f.min || v > f.max) {
        return fail(f.name, "must be an integer in " + detail::range_text(f.min, f.max) +
                                ", got " + std::to_string(v));
      }
    }
    bool v6 = false;
    std::array<std::uint8_t, 16> addr{};
    if (!detail::parse_ip(c.ip, v6, addr)) {
      return fail("ip", "must be an IPv4 or IPv6 address, got " + nlohmann::json(c.ip).dump());
    }
    if (v6 != c.use_ipv6) {
      return fail("ip", nlohmann::json(c.ip).dump() + " is an " + (v6 ? "IPv6" : "IPv4") +
                            " address but use_ipv6 is " + (c.use_ipv6 ? "true" : "false"));
    }
    if (!detail::parse_ip(c.group, v6, addr)) {
      return fail("group", "must be an IPv4 broadcast or multicast address or an IPv6 multicast "
                           "address, got " + nlohmann::json(c.group).dump());
    }
    if (v6 != c.use_ipv6) {
      return fail("group", nlohmann::json(c.group).dump() + " is an " + (v6 ? "IPv6" : "IPv4") +
                               " address but use_ipv6 is " + (c.use_ipv6 ? "true" : "false") +
                               (c.use_ipv6 ? " (IPv6 has no broadcast: use a multicast group "
                                             "such as ff02::1)"
                                           : ""));
    }
    if (v6 && addr[0] != 0xff) {
      return fail("group", nlohmann::json(c.group).dump() +
                               " is not an IPv6 multicast address (ff00::/8)");
    }
    // Linux allows more bytes in interface names, but no real one needs them, and printable
    // ASCII keeps messages and the JSON writer safe.
    if (c.group_interface.size() >= IF_NAMESIZE ||
        std::any_of(c.group_interface.begin(), c.group_interface.end(), [](char ch) {
          const auto u = static_cast<unsigned char>(ch);
          return u > 0x7e || ch == '/' || std::isgraph(u) == 0;
        })) {
      return fail("group_interface", "must be a network interface name (at most " +
                                         std::to_string(IF_NAMESIZE - 1) +
                                         " printable ASCII characters, no '/' or spaces), got " +
                                         nlohmann::json(c.group_interface).dump());
    }
    if (c.unicast_port != 0 && c.unicast_port == c.port) {
      return fail("unicast_port", "must differ from port (" + std::to_string(c.port) +
                                      "): the group socket already binds it");
    }
    if (c.session_timeout_s <= c.heartbeat_interval_s) {
      return fail("session_timeout_s",
                  "must be greater than heartbeat_interval_s (" +
                      std::to_string(c.heartbeat_interval_s) + "), got " +
                      std::to_string(c.session_timeout_s));
    }
    if (std::uint64_t{c.retransmit_max_s} * 1000 < c.retransmit_initial_ms) {
      return fail("retransmit_max_s", "must be at least retransmit_initial_ms (" +
                                          std::to_string(c.retransmit_initial_ms) + " ms), got " +
                                          std::to_string(c.retransmit_max_s) + " s");
    }
    return {};
  } catch (...) {
    return Error{Errc::config_bad_field, "out of memory"};
  }
}

std::string to_json_text(const NodeConfig& c) {
  nlohmann::ordered_json j;
  j["ip"] = c.ip;
  j["port"] = c.port;
  j["use_ipv6"] = c.use_ipv6;
  j["encryption_key"] = detail::hex_encode(c.encryption_key);
  j["hmac_key"] = detail::hex_encode(c.hmac_key);
  j["wire"] = c.wire == WireVersion::v1 ? "v1" : "v2";
  j["epoch"] = c.epoch == Epoch::e2000 ? 2000 : 1970;
  j["group"] = c.group;
  j["group_interface"] = c.group_interface;
  j["log_level"] = std::string{to_string(c.log_level)};
  j["v1_publish_layout"] = c.v1_publish_layout == wire::V1Layout::device16 ? "device16" : "gap20";
  for (const auto& f : detail::kUintFields) {
    if (std::string_view{f.name} != "port") j[f.name] = f.get(c);
  }
  // Fields reach here validated, but a config built in code may hold any bytes: replace
  // invalid UTF-8 rather than throw.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string to_legacy_json_text(const NodeConfig& c) {
  // CPython's json.dumps(dict) with default separators, keys in insertion order.
  using nlohmann::json;
  return "{\"ip\": " + json(c.ip).dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace) +
         ", \"port\": " + std::to_string(c.port) +
         ", \"use_ipv6\": " + (c.use_ipv6 ? "true" : "false") + ", \"encryption_key\": \"" +
         detail::hex_encode(c.encryption_key) + "\", \"hmac_key\": \"" +
         detail::hex_encode(c.hmac_key) + "\"}";
}

}  // namespace nomq
