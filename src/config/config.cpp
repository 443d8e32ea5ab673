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
#include "config/config_keys.hpp"
#include "nomq/key_schedule.hpp"

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

std::string_view to_string(KeyForm f) noexcept { return f == KeyForm::master ? "master" : "raw"; }

std::string_view to_string(ConfigFormat f) noexcept {
  return f == ConfigFormat::legacy ? "legacy" : "json";
}

EngineConfig to_engine_config(const NodeConfig& c) noexcept {
  EngineConfig e;
  e.limits = c.limits;  // max_queued_messages is no file key, but code may set it
  for (const auto& k : detail::config_keys()) {
    if (k.to_engine != nullptr) k.to_engine(e, k.get(c));
  }
  return e;
}

namespace detail {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

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

// Reads keys of the schema from one JSON object; the first problem is kept in `error`.
struct Reader {
  const json& object;
  std::optional<Error> error;

  bool fail(std::string_view key, const std::string& why) {
    error.emplace(Errc::config_bad_field, key, ": ", why);
    return false;
  }

  // Reads `k` into `c` when the object names it (a required key must be named).
  bool read(const ConfigKey& k, NodeConfig& c) {
    const auto it = object.find(k.name);
    if (it == object.end()) return !k.required || fail(k.name, "missing (64 hex digits, 32 bytes)");
    const json& v = *it;
    switch (k.type) {
      case KeyType::uint: return uint_value(k, v, c);
      case KeyType::boolean:
        if (!v.is_boolean()) return fail(k.name, "must be true or false, got " + shown(v));
        k.set(c, v.get<bool>() ? 1 : 0);
        return true;
      case KeyType::text:
        if (!v.is_string()) return fail(k.name, "must be a string, got " + shown(v));
        c.*k.text = v.get<std::string>();
        return true;
      case KeyType::hex_key: return key_value(k, v, c.*k.key);
      case KeyType::choice: return choice_value(k, v, c);
    }
    return fail(k.name, "has no reader");
  }

  bool uint_value(const ConfigKey& k, const json& v, NodeConfig& c) {
    const std::string want = "must be an integer in " + range_text(k);
    if (!v.is_number_integer()) return fail(k.name, want + ", got " + shown(v));
    if (v.is_number_unsigned()) {
      const auto n = v.get<std::uint64_t>();
      if (n < k.min || n > k.max) return fail(k.name, want + ", got " + std::to_string(n));
      k.set(c, n);
      return true;
    }
    const auto n = v.get<std::int64_t>();
    if (n < 0 || static_cast<std::uint64_t>(n) < k.min || static_cast<std::uint64_t>(n) > k.max)
      return fail(k.name, want + ", got " + std::to_string(n));
    k.set(c, static_cast<std::uint64_t>(n));
    return true;
  }

  bool key_value(const ConfigKey& k, const json& v, Key& out) {
    if (!v.is_string()) return fail(k.name, "must be a string, got " + shown(v));
    const std::string s = v.get<std::string>();
    if (s.size() != 2 * kKeySize) {
      return fail(k.name, "must be 64 hex digits (32 bytes), got " + std::to_string(s.size()));
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (std::isxdigit(static_cast<unsigned char>(s[i])) == 0) {
        return fail(k.name, "not hex: character " + json(std::string(1, s[i])).dump() +
                                " at position " + std::to_string(i));
      }
    }
    for (std::size_t i = 0; i < kKeySize; ++i) {
      out[i] = static_cast<std::uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
    }
    return true;
  }

  // "channel_keys": a list of {"pattern", "secret", "key_epoch"} (docs/config.md).
  bool channel_keys(NodeConfig& c) {
    const auto it = object.find("channel_keys");
    if (it == object.end()) return true;
    const json& list = *it;
    if (!list.is_array()) {
      return fail("channel_keys", "must be a list of {\"pattern\", \"secret\", \"key_epoch\"} "
                                  "objects, got " + shown(list));
    }
    if (list.size() > kMaxChannelKeys) {
      return fail("channel_keys", "at most " + std::to_string(kMaxChannelKeys) + " keys, got " +
                                      std::to_string(list.size()));
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string where = "channel_keys[" + std::to_string(i) + "]";
      const json& e = list[i];
      if (!e.is_object()) return fail(where, "must be an object, got " + shown(e));
      for (const auto& item : e.items()) {
        if (item.key() != "pattern" && item.key() != "secret" && item.key() != "key_epoch") {
          return fail(where + "." + printable_key(item.key()),
                      "unknown key (a channel key has pattern, secret and key_epoch)");
        }
      }
      ChannelKeySpec spec;
      const auto p = e.find("pattern");
      if (p == e.end() || !p->is_string()) {
        return fail(where + ".pattern", "must be a channel name or filter (a string)");
      }
      spec.pattern = p->get<std::string>();
      // (nlohmann's parser has checked that every string is UTF-8; the engine checks again.)
      if (spec.pattern.empty() || spec.pattern.size() > kMaxChannelKeyPattern ||
          (wire::is_filter(spec.pattern) && !wire::valid_filter(spec.pattern))) {
        return fail(where + ".pattern",
                    "must be a channel name or MQTT filter of 1.." +
                        std::to_string(kMaxChannelKeyPattern) +
                        " UTF-8 bytes ('+' and '#' fill a level, '#' last), got " + shown(*p));
      }
      for (const ChannelKeySpec& other : c.channel_keys) {
        if (other.pattern == spec.pattern) return fail(where + ".pattern", "given twice: " + shown(*p));
      }
      const auto sec = e.find("secret");
      const std::string secret_name = where + ".secret";
      ConfigKey k;
      k.name = secret_name;
      if (sec == e.end()) return fail(secret_name, "missing (64 hex digits, 32 bytes)");
      if (!key_value(k, *sec, spec.secret)) return false;
      if (const auto ep = e.find("key_epoch"); ep != e.end()) {
        if (!ep->is_number_unsigned() || ep->get<std::uint64_t>() > 0xFFFFFFFFull) {
          return fail(where + ".key_epoch", "must be an integer in 0..4294967295, got " + shown(*ep));
        }
        spec.key_epoch = static_cast<std::uint32_t>(ep->get<std::uint64_t>());
      }
      c.channel_keys.push_back(std::move(spec));
    }
    return true;
  }

  bool choice_value(const ConfigKey& k, const json& v, NodeConfig& c) {
    std::string text;
    if (k.choice_is_integer ? v.is_number_integer() : v.is_string()) {
      text = k.choice_is_integer ? std::to_string(v.get<std::int64_t>()) : v.get<std::string>();
    }
    if (k.ignore_case) {
      std::transform(text.begin(), text.end(), text.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    }
    for (const Choice& choice : k.choices) {
      if (!text.empty() && text == choice.text) {
        k.set(c, choice.value);
        return true;
      }
    }
    return fail(k.name, std::string{k.choice_is_integer ? "must be " : "must be one of "} +
                            range_text(k) + ", got " + shown(v));
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
  const auto wanted = [&](const ConfigKey* k) { return k != nullptr && (keys == KeySet::all || k->legacy); };
  Reader r{object, {}};
  std::vector<std::string> unknown_keys;
  for (const auto& item : object.items()) {
    if (keys == KeySet::all && item.key() == "channel_keys") continue;  // a list (Reader::channel_keys)
    if (!wanted(find_config_key(item.key()))) unknown_keys.push_back(printable_key(item.key()));
  }
  if (keys == KeySet::all && !unknown_keys.empty()) {
    r.fail(unknown_keys.front(), "unknown key (see docs/config.md for the keys)");
    return *r.error;
  }
  // The key forms: master_secret alone, or encryption_key and hmac_key (the legacy format
  // knows only the latter).
  const bool master = keys == KeySet::all && object.contains("master_secret");
  if (master) {
    for (const char* raw : {"encryption_key", "hmac_key"}) {
      if (object.contains(raw)) {
        r.fail(raw, "give either master_secret or encryption_key and hmac_key, not both");
        return *r.error;
      }
    }
  } else {
    for (const char* raw : {"encryption_key", "hmac_key"}) {
      if (!object.contains(raw)) {
        r.fail(raw, keys == KeySet::all
                        ? "missing (64 hex digits, 32 bytes; or give master_secret instead of "
                          "encryption_key and hmac_key)"
                        : "missing (64 hex digits, 32 bytes)");
        return *r.error;
      }
    }
    for (const char* derived_only : {"group_id", "key_epoch"}) {
      if (keys == KeySet::all && object.contains(derived_only)) {
        r.fail(derived_only, "only with master_secret (raw encryption_key and hmac_key are "
                             "not derived)");
        return *r.error;
      }
    }
  }
  c.key_form = master ? KeyForm::master : KeyForm::raw;
  for (const auto& k : config_keys()) {
    if (wanted(&k) && !r.read(k, c)) return *r.error;
  }
  if (keys == KeySet::all && !r.channel_keys(c)) return *r.error;
  const bool group_given = keys == KeySet::all && object.contains("group");
  if (c.use_ipv6 && !group_given) c.group = std::string{kDefaultGroupV6};
  if (auto valid = validate_config(c); !valid) return valid.error();
  return unknown_keys;
}

}  // namespace detail

Result<void> validate_config(const NodeConfig& c) noexcept {
  try {
    const auto fail = [&](std::string_view key, const std::string& why) {
      return Error{Errc::config_bad_field, key, ": ", why};
    };
    for (const auto& k : detail::config_keys()) {
      if (k.type != detail::KeyType::uint) continue;
      const std::uint64_t v = k.get(c);
      if (v < k.min || v > k.max) {
        return fail(k.name, "must be an integer in " + detail::range_text(k) + ", got " +
                                std::to_string(v));
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
    if (c.key_form == KeyForm::master) {
      if (c.group_id.size() > kMaxGroupId ||
          std::any_of(c.group_id.begin(), c.group_id.end(), [](char ch) {
            const auto u = static_cast<unsigned char>(ch);
            return u < 0x20 || u > 0x7e;
          })) {
        return fail("group_id", "must be at most " + std::to_string(kMaxGroupId) +
                                    " printable ASCII characters, got " +
                                    nlohmann::json(c.group_id).dump(-1, ' ', true,
                                        nlohmann::json::error_handler_t::replace));
      }
    } else if (!c.group_id.empty() || c.key_epoch != 0) {
      return fail(c.group_id.empty() ? "key_epoch" : "group_id",
                  "only with master_secret (raw encryption_key and hmac_key are not derived)");
    }
    if (!c.channel_keys.empty() && c.wire != WireVersion::v2) {
      return fail("channel_keys", "need wire v2 (v1 channel ids are unkeyed)");
    }
    if (c.channel_keys.size() > kMaxChannelKeys) {
      return fail("channel_keys", "at most " + std::to_string(kMaxChannelKeys) + " keys, got " +
                                      std::to_string(c.channel_keys.size()));
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
  const auto other_form = [&](std::string_view name) {
    const bool raw = name == "encryption_key" || name == "hmac_key";
    const bool derived = name == "master_secret" || name == "group_id" || name == "key_epoch";
    return c.key_form == KeyForm::master ? raw : derived;
  };
  for (const auto& k : detail::config_keys()) {
    if (other_form(k.name)) continue;
    auto& out = j[std::string{k.name}];
    switch (k.type) {
      case detail::KeyType::uint: out = k.get(c); break;
      case detail::KeyType::boolean: out = k.get(c) != 0; break;
      case detail::KeyType::text: out = c.*k.text; break;
      case detail::KeyType::hex_key: out = detail::hex_encode(c.*k.key); break;
      case detail::KeyType::choice: {
        const std::uint64_t v = k.get(c);
        const auto it = std::find_if(k.choices.begin(), k.choices.end(),
                                     [&](const detail::Choice& ch) { return ch.value == v; });
        if (it == k.choices.end()) {
          out = v;  // an enum value set in code that the schema does not know
        } else if (k.choice_is_integer) {
          out = std::stoll(std::string{it->text});
        } else {
          out = std::string{it->text};
        }
        break;
      }
    }
  }
  if (!c.channel_keys.empty()) {
    auto& list = j["channel_keys"];
    list = nlohmann::ordered_json::array();
    for (const ChannelKeySpec& k : c.channel_keys) {
      nlohmann::ordered_json e;
      e["pattern"] = k.pattern;
      e["secret"] = detail::hex_encode(k.secret);
      e["key_epoch"] = k.key_epoch;
      list.push_back(std::move(e));
    }
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
