#include "bridge/bridge_config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "nomq/wire.hpp"

namespace nomq::bridge {

using json = nlohmann::json;

Pattern split_pattern(std::string_view filter) {
  Pattern p;
  p.filter = std::string{filter};
  std::size_t level = 0;
  while (level <= filter.size()) {
    std::size_t end = filter.find('/', level);
    if (end == std::string_view::npos) end = filter.size();
    const std::string_view l = filter.substr(level, end - level);
    if (l == "+" || l == "#") {
      p.prefix = std::string{filter.substr(0, level)};
      p.rest = std::string{filter.substr(level)};
      return p;
    }
    level = end + 1;
  }
  p.prefix = p.filter;
  return p;
}

std::string rewrite(const Pattern& from, const Pattern& to, std::string_view name) {
  if (from.rest.empty()) return to.prefix;  // exact rule: the whole name
  if (name.size() < from.prefix.size()) {
    // "a/#" matched its parent "a": the other side's prefix without its '/'.
    std::string out = to.prefix;
    if (!out.empty() && out.back() == '/') out.pop_back();
    return out;
  }
  return to.prefix + std::string{name.substr(from.prefix.size())};
}

namespace {

Error bad(const std::string& field, const std::string& why) {
  return Error{Errc::config_bad_field, field, ": ", why};
}

template <class T>
Result<void> get(const json& obj, const std::string& path, const char* key, T& out) {
  if (!obj.contains(key)) return {};
  const json& v = obj.at(key);
  const std::string field = path.empty() ? key : path + "." + key;
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return bad(field, "must be true or false");
    out = v.get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return bad(field, "must be a string");
    out = v.get<std::string>();
  } else {
    if (!v.is_number_integer() && !v.is_number_unsigned()) return bad(field, "must be an integer");
    const auto n = v.get<long long>();
    if (n < 0) return bad(field, "must not be negative");
    out = static_cast<T>(n);
    if (static_cast<long long>(out) != n) return bad(field, "is out of range");
  }
  return {};
}

Result<void> check_keys(const json& obj, const std::string& path,
                        const std::set<std::string>& known) {
  if (!obj.is_object()) return bad(path, "must be an object");
  for (const auto& item : obj.items()) {
    const std::string& k = item.key();
    if (!known.count(k)) return bad(path.empty() ? k : path + "." + k, "unknown key");
  }
  return {};
}

#define NOMQ_TRY(expr)                      \
  do {                                      \
    if (auto r_ = (expr); !r_) return r_.error(); \
  } while (0)

std::string resolve(const std::string& base, const std::string& p) {
  if (p.empty() || p.front() == '/' || base.empty()) return p;
  return base + "/" + p;
}

Result<void> parse_filter(const json& r, const std::string& path, const char* key, Pattern& out) {
  if (!r.contains(key)) return bad(path + "." + key, "missing (a channel or topic filter)");
  std::string f;
  NOMQ_TRY(get(r, path, key, f));
  if (f.empty()) return bad(path + "." + key, "must not be empty");
  if (wire::is_filter(f) && !wire::valid_filter(f)) {
    return bad(path + "." + key,
               "'" + f + "': '+' and '#' must fill a whole level, '#' only as the last level");
  }
  if (f.size() > wire::kMaxChannelName) return bad(path + "." + key, "longer than 255 bytes");
  out = split_pattern(f);
  return {};
}

}  // namespace

Result<BridgeConfig> parse_bridge_config(std::string_view text, const std::string& base_dir) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    return Error{Errc::config_bad_format, "not JSON: ", std::string_view{e.what()}};
  }
  BridgeConfig c;
  NOMQ_TRY(check_keys(j, "", {"nomq_config", "bridge_id", "broker", "rules", "store",
                              "stats_interval_s", "nomq_inflight"}));
  if (!j.contains("nomq_config")) return bad("nomq_config", "missing (the NoMQ node's config file)");
  NOMQ_TRY(get(j, "", "nomq_config", c.nomq_config));
  c.nomq_config = resolve(base_dir, c.nomq_config);
  NOMQ_TRY(get(j, "", "bridge_id", c.bridge_id));
  if (c.bridge_id.empty()) return bad("bridge_id", "must not be empty");
  NOMQ_TRY(get(j, "", "stats_interval_s", c.stats_interval_s));
  NOMQ_TRY(get(j, "", "nomq_inflight", c.nomq_inflight));
  if (c.nomq_inflight < 1 || c.nomq_inflight > 1024) return bad("nomq_inflight", "must be 1..1024");

  if (!j.contains("broker")) return bad("broker", "missing");
  const json& b = j.at("broker");
  NOMQ_TRY(check_keys(b, "broker", {"host", "port", "protocol", "client_id", "username", "password",
                                    "keepalive_s", "session_expiry_s", "reconnect_initial_ms",
                                    "reconnect_max_ms", "tls"}));
  BrokerOptions& bo = c.broker;
  NOMQ_TRY(get(b, "broker", "host", bo.host));
  if (bo.host.empty()) return bad("broker.host", "must not be empty");
  NOMQ_TRY(get(b, "broker", "port", bo.port));
  if (bo.port == 0) return bad("broker.port", "must be 1..65535");
  NOMQ_TRY(get(b, "broker", "protocol", bo.protocol));
  if (bo.protocol != "auto" && bo.protocol != "5" && bo.protocol != "3.1.1") {
    return bad("broker.protocol", "'" + bo.protocol + "': must be \"auto\", \"5\" or \"3.1.1\"");
  }
  NOMQ_TRY(get(b, "broker", "client_id", bo.client_id));
  if (bo.client_id.empty()) bo.client_id = "nomq-bridge-" + c.bridge_id;
  NOMQ_TRY(get(b, "broker", "username", bo.username));
  NOMQ_TRY(get(b, "broker", "password", bo.password));
  if (!bo.password.empty() && bo.username.empty()) {
    return bad("broker.password", "given without broker.username");
  }
  NOMQ_TRY(get(b, "broker", "keepalive_s", bo.keepalive_s));
  if (bo.keepalive_s < 5 || bo.keepalive_s > 65535) return bad("broker.keepalive_s", "must be 5..65535");
  NOMQ_TRY(get(b, "broker", "session_expiry_s", bo.session_expiry_s));
  NOMQ_TRY(get(b, "broker", "reconnect_initial_ms", bo.reconnect_initial_ms));
  NOMQ_TRY(get(b, "broker", "reconnect_max_ms", bo.reconnect_max_ms));
  if (bo.reconnect_initial_ms < 1) return bad("broker.reconnect_initial_ms", "must be at least 1");
  if (bo.reconnect_max_ms < bo.reconnect_initial_ms) {
    return bad("broker.reconnect_max_ms", "must be at least reconnect_initial_ms");
  }
  if (b.contains("tls")) {
    const json& t = b.at("tls");
    NOMQ_TRY(check_keys(t, "broker.tls", {"ca_file", "ca_path", "cert_file", "key_file", "psk",
                                          "psk_identity", "insecure"}));
    TlsOptions& to = bo.tls;
    NOMQ_TRY(get(t, "broker.tls", "ca_file", to.ca_file));
    NOMQ_TRY(get(t, "broker.tls", "ca_path", to.ca_path));
    NOMQ_TRY(get(t, "broker.tls", "cert_file", to.cert_file));
    NOMQ_TRY(get(t, "broker.tls", "key_file", to.key_file));
    NOMQ_TRY(get(t, "broker.tls", "psk", to.psk_hex));
    NOMQ_TRY(get(t, "broker.tls", "psk_identity", to.psk_identity));
    NOMQ_TRY(get(t, "broker.tls", "insecure", to.insecure));
    to.ca_file = resolve(base_dir, to.ca_file);
    to.cert_file = resolve(base_dir, to.cert_file);
    to.key_file = resolve(base_dir, to.key_file);
    if (to.cert_file.empty() != to.key_file.empty()) {
      return bad(to.cert_file.empty() ? "broker.tls.cert_file" : "broker.tls.key_file",
                 "client certificate and key go together");
    }
    if (!to.psk_hex.empty()) {
      if (to.psk_hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
        return bad("broker.tls.psk", "must be hexadecimal");
      }
      if (to.psk_identity.empty()) return bad("broker.tls.psk_identity", "missing (needed with psk)");
      if (!to.ca_file.empty() || !to.cert_file.empty()) {
        return bad("broker.tls.psk", "PSK and certificates cannot be combined");
      }
    }
  }

  if (!j.contains("rules")) return bad("rules", "missing (at least one rule)");
  const json& rules = j.at("rules");
  if (!rules.is_array() || rules.empty()) return bad("rules", "must be a non-empty array");
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const std::string path = "rules[" + std::to_string(i) + "]";
    const json& r = rules[i];
    NOMQ_TRY(check_keys(r, path, {"nomq", "mqtt", "direction", "max_qos", "retain"}));
    Rule rule;
    NOMQ_TRY(parse_filter(r, path, "nomq", rule.nomq));
    NOMQ_TRY(parse_filter(r, path, "mqtt", rule.mqtt));
    if (rule.nomq.rest != rule.mqtt.rest) {
      return bad(path + ".mqtt", "'" + rule.mqtt.filter + "': its wildcard part ('" +
                                     rule.mqtt.rest + "') must equal that of nomq ('" +
                                     rule.nomq.rest + "'); only the prefix is rewritten");
    }
    std::string dir = "both";
    NOMQ_TRY(get(r, path, "direction", dir));
    if (dir == "in") {
      rule.direction = Direction::in;
    } else if (dir == "out") {
      rule.direction = Direction::out;
    } else if (dir == "both") {
      rule.direction = Direction::both;
    } else {
      return bad(path + ".direction", "'" + dir + "': must be \"in\", \"out\" or \"both\"");
    }
    NOMQ_TRY(get(r, path, "max_qos", rule.max_qos));
    if (rule.max_qos > 2) return bad(path + ".max_qos", "must be 0, 1 or 2");
    NOMQ_TRY(get(r, path, "retain", rule.retain));
    c.rules.push_back(std::move(rule));
  }

  if (j.contains("store")) {
    const json& s = j.at("store");
    NOMQ_TRY(check_keys(s, "store", {"path", "max_messages", "max_bytes", "dedup_entries"}));
    NOMQ_TRY(get(s, "store", "path", c.store.path));
    if (c.store.path.empty()) return bad("store.path", "must not be empty");
    NOMQ_TRY(get(s, "store", "max_messages", c.store.max_messages));
    NOMQ_TRY(get(s, "store", "max_bytes", c.store.max_bytes));
    NOMQ_TRY(get(s, "store", "dedup_entries", c.store.dedup_entries));
    if (c.store.max_messages == 0) return bad("store.max_messages", "must be at least 1");
    if (c.store.max_bytes == 0) return bad("store.max_bytes", "must be at least 1");
  }
  c.store.path = resolve(base_dir, c.store.path);
  return c;
}

Result<BridgeConfig> load_bridge_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{Errc::config_unreadable, path, ": cannot be read"};
  std::stringstream ss;
  ss << in.rdbuf();
  std::string base;
  if (const auto slash = path.rfind('/'); slash != std::string::npos) base = path.substr(0, slash);
  auto r = parse_bridge_config(ss.str(), base);
  if (!r) {
    Error e{r.error().code(), path, ": "};
    e.append(r.error().message());
    return e;
  }
  return r;
}

}  // namespace nomq::bridge
