// The config schema (src/config/config_keys.cpp) is the one place keys, ranges, defaults and the
// engine mapping are written: these tests hold the reader, the writer, the defaults,
// to_engine_config() and docs/config.md to it.
#include "config/config_keys.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "nomq/config.hpp"

namespace nomq {
namespace {

using detail::config_keys;
using detail::KeyType;
using nlohmann::json;

const std::string kKeys =
    R"("encryption_key": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", )"
    R"("hmac_key": "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")";

TEST(ConfigKeys, NamesAreUniqueAndRangesHoldTheirDefaults) {
  std::set<std::string_view> names;
  for (const auto& k : config_keys()) {
    SCOPED_TRACE(std::string{k.name});
    EXPECT_TRUE(names.insert(k.name).second) << "twice";
    EXPECT_EQ(detail::find_config_key(k.name), &k);
    if (k.type == KeyType::uint) {
      EXPECT_LE(k.min, k.default_value());
      EXPECT_LE(k.default_value(), k.max);
    }
  }
  EXPECT_EQ(detail::find_config_key("colour"), nullptr);
}

// Whether a table row has a cell starting with `number` ("| 30 |", "| `8888` |", "| 50; ...").
bool has_cell(const std::string& row, const std::string& number) {
  if (row.find("| `" + number + "`") != std::string::npos) return true;
  for (auto at = row.find("| " + number); at != std::string::npos;
       at = row.find("| " + number, at + 1)) {
    const char next = row[at + 2 + number.size()];
    if (std::isdigit(static_cast<unsigned char>(next)) == 0 && next != '.') return true;
  }
  return false;
}

// docs/config.md lists every key of the schema, each uint key with its range and default, and
// no key the schema does not have.
TEST(ConfigKeys, DocsListEveryKeyWithItsRangeAndDefault) {
  std::ifstream in{std::string{NOMQ_SOURCE_DIR} + "/docs/config.md"};
  ASSERT_TRUE(in) << "docs/config.md";
  std::map<std::string, std::string> rows;  // key -> its table row
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    const auto end = line.find('`', 3);
    rows[line.substr(3, end - 3)] = line;
  }
  for (const auto& k : config_keys()) {
    SCOPED_TRACE(std::string{k.name});
    const auto row = rows.find(std::string{k.name});
    ASSERT_NE(row, rows.end()) << "docs/config.md has no row for this key";
    if (k.type != KeyType::uint) continue;
    EXPECT_NE(row->second.find(detail::range_text(k)), std::string::npos) << row->second;
    EXPECT_TRUE(has_cell(row->second, std::to_string(k.default_value()))) << row->second;
  }
  for (const auto& [name, row] : rows) {
    EXPECT_NE(detail::find_config_key(name), nullptr) << "docs/config.md lists an unknown key: " << row;
  }
}

TEST(ConfigKeys, DefaultsAreTheSchemas) {
  const NodeConfig c;
  for (const auto& k : config_keys()) {
    SCOPED_TRACE(std::string{k.name});
    switch (k.type) {
      case KeyType::text: EXPECT_EQ(c.*k.text, k.default_text); break;
      case KeyType::hex_key: EXPECT_EQ(c.*k.key, Key{}); break;
      default: EXPECT_EQ(k.get(c), k.default_value()); break;
    }
  }
  EXPECT_EQ(c.port, 8888);
  EXPECT_EQ(c.ip, "0.0.0.0");
  EXPECT_EQ(c.log_level, LogLevel::warning);
  EXPECT_EQ(c.discovery_period_ms, 1500u);
  EXPECT_EQ(c.solicit_answer_interval_ms, 1000u);
}

// Every key is read from a file, written back, and reaches the engine.
TEST(ConfigKeys, EveryUintKeyRoundTripsThroughAFile) {
  json j = json::parse("{" + kKeys + "}");
  std::map<std::string, std::uint64_t> chosen;
  for (const auto& k : config_keys()) {
    if (k.type != KeyType::uint) continue;
    // key_epoch belongs to the master-secret form, this file has raw keys
    // (config_test.cpp ConfigFile.MasterSecretFormRoundTrips covers it).
    if (k.name == "key_epoch") continue;
    // Not the default, within the range and the cross-field rules.
    std::uint64_t v = k.default_value() == k.min ? k.min + 1 : k.min;
    if (k.name == "session_timeout_s") v = 600;
    if (k.name == "retransmit_max_s") v = 100;
    if (k.name == "unicast_port") v = 9000;
    chosen[std::string{k.name}] = v;
    j[std::string{k.name}] = v;
  }
  const auto loaded = parse_config(j.dump(), "all.json");
  ASSERT_TRUE(loaded) << loaded.error();
  for (const auto& [name, v] : chosen) {
    EXPECT_EQ(detail::find_config_key(name)->get(loaded->config), v) << name;
  }
  const auto again = parse_config(to_json_text(loaded->config), "again.json");
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(to_json_text(again->config), to_json_text(loaded->config));
  const EngineConfig e = to_engine_config(loaded->config);
  for (const auto& k : config_keys()) {
    if (k.type == KeyType::uint && k.from_engine != nullptr) {
      EXPECT_EQ(k.from_engine(e), chosen[std::string{k.name}]) << k.name;
    }
  }
}

TEST(ConfigKeys, DiscoveryAndSolicitationAreKeys) {
  const auto loaded = parse_config(
      "{" + kKeys + R"(, "discovery_period_ms": 0, "solicit_answer_interval_ms": 250})", "d.json");
  ASSERT_TRUE(loaded) << loaded.error();
  const EngineConfig e = to_engine_config(loaded->config);
  EXPECT_EQ(e.timers.discovery_period, Duration::zero());
  EXPECT_EQ(e.timers.solicit_answer_interval, std::chrono::milliseconds{250});
  EXPECT_EQ(to_engine_config(NodeConfig{}).timers.discovery_period, EngineTimers{}.discovery_period);
  EXPECT_EQ(to_engine_config(NodeConfig{}).timers.solicit_answer_interval,
            EngineTimers{}.solicit_answer_interval);

  const auto bad = parse_config("{" + kKeys + R"(, "solicit_answer_interval_ms": 0})", "d.json");
  EXPECT_EQ(bad.error(), Errc::config_bad_field);
  EXPECT_EQ(bad.error().message(),
            "d.json: solicit_answer_interval_ms: must be an integer in 1..600000, got 0");
  NodeConfig code;
  code.discovery_period_ms = 60001;
  EXPECT_EQ(validate_config(code).error().message(),
            "discovery_period_ms: must be an integer in 0..60000, got 60001");
}

}  // namespace
}  // namespace nomq
