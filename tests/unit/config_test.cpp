// Config files: the original's obfuscated format (known answers from legacy-v1.json) and ours.
#include "nomq/config.hpp"

#include "config/config_internal.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "unit/wire_test_support.hpp"

namespace nomq {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json load_vectors() {
  std::ifstream in{std::string{NOMQ_VECTORS_DIR} + "/legacy-v1.json"};
  return json::parse(in);
}

// The vectors hold hex strings as JSON values; the shared parser takes a string_view.
Key key_from_hex(const std::string& hex) { return test::key_from_hex(hex); }
Iv iv_from_hex(const std::string& hex) { return test::array_from_hex<Iv>(hex); }

std::string read_file(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

unsigned file_mode(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return static_cast<unsigned>(st.st_mode) & 07777u;
}

// A private temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "nomq-config-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

NodeConfig sample_config() {
  NodeConfig c;
  c.encryption_key = test::kSampleEncKey;
  c.hmac_key = test::kSampleHmacKey;
  return c;
}

TEST(ConfigVectors, BothLegacyVectorsRead) {
  const json v = load_vectors();
  ASSERT_EQ(v["config_vectors"].size(), 2u);
  for (const auto& cv : v["config_vectors"]) {
    SCOPED_TRACE(cv["name"].get<std::string>());
    const auto loaded = parse_config(cv["file_text"].get<std::string>(), "nomq_config.json");
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_TRUE(loaded->warning.empty()) << loaded->warning;
    EXPECT_EQ(loaded->format, ConfigFormat::legacy);
    const auto& want = cv["config"];
    EXPECT_EQ(loaded->config.ip, want["ip"].get<std::string>());
    EXPECT_EQ(loaded->config.port, want["port"].get<int>());
    EXPECT_EQ(loaded->config.use_ipv6, want["use_ipv6"].get<bool>());
    EXPECT_EQ(loaded->config.encryption_key, key_from_hex(want["encryption_key"]));
    EXPECT_EQ(loaded->config.hmac_key, key_from_hex(want["hmac_key"]));
    // The original speaks only v1; everything else is at its default.
    EXPECT_EQ(loaded->config.wire, WireVersion::v1);
    EXPECT_EQ(loaded->config.epoch, Epoch::e1970);
    EXPECT_EQ(loaded->config.group, "255.255.255.255");
    // ... except the two that are paced for the original's devices.
    EXPECT_EQ(loaded->config.retransmit_initial_ms, 1000u);
    EXPECT_EQ(loaded->config.limits.max_pending, 5u);
  }
}

// A file that selects v1 and names neither key gets the v1 defaults; a named value is kept;
// set_wire (nomq --wire) moves only the unnamed ones, both ways.
TEST(ConfigJson, WireV1DefaultsApplyOnlyToKeysTheFileDoesNotName) {
  const std::string keys =
      R"("encryption_key": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "hmac_key": "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789")";
  auto v1 = parse_config("{" + keys + R"(, "wire": "v1"})", "v1.json");
  ASSERT_TRUE(v1.ok()) << v1.error();
  EXPECT_EQ(v1->config.retransmit_initial_ms, 1000u);
  EXPECT_EQ(v1->config.limits.max_pending, 5u);
  EXPECT_EQ(to_engine_config(v1->config).timers.retransmit_initial, std::chrono::milliseconds{1000});

  auto named = parse_config("{" + keys + R"(, "wire": "v1", "retransmit_initial_ms": 300})", "n.json");
  ASSERT_TRUE(named.ok()) << named.error();
  EXPECT_EQ(named->config.retransmit_initial_ms, 300u);
  EXPECT_EQ(named->config.limits.max_pending, 5u);
  set_wire(*named, WireVersion::v2);
  EXPECT_EQ(named->config.wire, WireVersion::v2);
  EXPECT_EQ(named->config.retransmit_initial_ms, 300u);
  EXPECT_EQ(named->config.limits.max_pending, 50u);

  auto v2 = parse_config("{" + keys + R"(, "max_pending": 7})", "v2.json");
  ASSERT_TRUE(v2.ok()) << v2.error();
  EXPECT_EQ(v2->config.retransmit_initial_ms, 200u);
  set_wire(*v2, WireVersion::v1);
  EXPECT_EQ(v2->config.retransmit_initial_ms, 1000u);
  EXPECT_EQ(v2->config.limits.max_pending, 7u);
}

TEST(ConfigVectors, BothLegacyVectorsWrittenByteForByte) {
  const json v = load_vectors();
  TempDir dir;
  for (const auto& cv : v["config_vectors"]) {
    const std::string name = cv["name"];
    SCOPED_TRACE(name);
    NodeConfig c;
    c.ip = cv["config"]["ip"];
    c.port = cv["config"]["port"].get<std::uint16_t>();
    c.use_ipv6 = cv["config"]["use_ipv6"];
    c.encryption_key = key_from_hex(cv["config"]["encryption_key"]);
    c.hmac_key = key_from_hex(cv["config"]["hmac_key"]);
    EXPECT_EQ(to_legacy_json_text(c), cv["json_text"].get<std::string>());

    const Iv iv = iv_from_hex(cv["iv"]);
    const auto text = to_legacy_text(c, iv);
    ASSERT_TRUE(text.ok()) << text.error();
    EXPECT_EQ(*text, cv["file_text"].get<std::string>());
    EXPECT_EQ(text->size(), cv["file_bytes_len"].get<std::size_t>());

    const fs::path file = dir.path() / (name + ".conf");
    const auto saved = save_config(c, file, ConfigFormat::legacy, {.overwrite = false, .legacy_iv = iv});
    ASSERT_TRUE(saved.ok()) << saved.error();
    EXPECT_EQ(read_file(file), cv["file_text"].get<std::string>());
    EXPECT_EQ(file_mode(file), 0600u);
  }
}

TEST(ConfigVectors, NegativeVectorsRejectedWithTheOriginalsReason) {
  const json v = load_vectors();
  // Our message mirrors the original's log line for each vector.
  const std::map<std::string, std::pair<Errc, std::string>> expected{
      {"config_bad_padding", {Errc::config_bad_format, "incorrect padding in config data"}},
      {"config_not_block_multiple",
       {Errc::config_bad_format, "invalid encrypted config data length"}},
      {"config_short_keys",
       {Errc::config_bad_field,
        "encryption_key: must be 64 hex digits (32 bytes), got 32"}},
  };
  ASSERT_EQ(v["config_negative_vectors"].size(), expected.size());
  for (const auto& nv : v["config_negative_vectors"]) {
    const std::string name = nv["name"];
    SCOPED_TRACE(name);
    ASSERT_EQ(nv["expect"], "reject");
    const auto& [code, fragment] = expected.at(name);
    const auto loaded = parse_config(nv["file_text"].get<std::string>(), "nomq_config.json");
    EXPECT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.error(), code) << loaded.error();
    EXPECT_EQ(loaded.error().message().rfind("nomq_config.json: ", 0), 0u) << loaded.error();
    EXPECT_NE(loaded.error().message().find(fragment), std::string::npos) << loaded.error();
    EXPECT_EQ(loaded.error().message().find('\n'), std::string::npos) << "one line: " << loaded.error();
  }
}

TEST(ConfigJson, RoundTripOfEveryField) {
  NodeConfig c = sample_config();
  c.ip = "::1";
  c.port = 9001;
  c.use_ipv6 = true;
  c.wire = WireVersion::v1;
  c.epoch = Epoch::e2000;
  c.group = "ff02::1:4e4d";
  c.group_interface = "eth0";
  c.unicast_port = 9002;
  c.log_level = LogLevel::debug;
  c.limits.max_pending = 11;
  c.limits.max_channels = 12;
  c.limits.max_message_size = 13;
  c.limits.max_retained_per_channel = 14;
  c.limits.max_retained_channels = 15;
  c.limits.max_peers = 16;
  c.limits.max_peer_subscriptions = 17;
  c.limits.max_senders = 18;
  c.limits.max_inbound_qos = 19;
  c.limits.max_inbox = 20;
  c.limits.max_outbox = 21;
  c.heartbeat_interval_s = 22;
  c.session_timeout_s = 230;
  c.retransmit_initial_ms = 24;
  c.retransmit_max_s = 25;
  c.session_lifetime_s = 2600;
  c.retained_answer_max_delay_ms = 27;
  c.inbound_state_lifetime_s = 28;
  c.timestamp_window_s = 29;
  c.replay_window = 3000;
  c.v1_nonce_cache = 31;
  c.v1_publish_layout = wire::V1Layout::device16;
  c.default_ttl_s = 32;
  c.max_retries = 33;

  TempDir dir;
  const fs::path file = dir.path() / "nomq.json";
  const auto saved = save_config(c, file, ConfigFormat::json);
  ASSERT_TRUE(saved.ok()) << saved.error();
  EXPECT_EQ(file_mode(file), 0600u);
  const auto loaded = load_config(file);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_TRUE(loaded->warning.empty()) << loaded->warning;
  EXPECT_EQ(loaded->format, ConfigFormat::json);
  const NodeConfig& r = loaded->config;
  EXPECT_EQ(r.ip, c.ip);
  EXPECT_EQ(r.port, c.port);
  EXPECT_EQ(r.use_ipv6, c.use_ipv6);
  EXPECT_EQ(r.encryption_key, c.encryption_key);
  EXPECT_EQ(r.hmac_key, c.hmac_key);
  EXPECT_EQ(r.wire, c.wire);
  EXPECT_EQ(r.epoch, c.epoch);
  EXPECT_EQ(r.group, c.group);
  EXPECT_EQ(r.group_interface, c.group_interface);
  EXPECT_EQ(r.unicast_port, c.unicast_port);
  EXPECT_EQ(r.log_level, c.log_level);
  EXPECT_EQ(r.limits.max_pending, c.limits.max_pending);
  EXPECT_EQ(r.limits.max_channels, c.limits.max_channels);
  EXPECT_EQ(r.limits.max_message_size, c.limits.max_message_size);
  EXPECT_EQ(r.limits.max_retained_per_channel, c.limits.max_retained_per_channel);
  EXPECT_EQ(r.limits.max_retained_channels, c.limits.max_retained_channels);
  EXPECT_EQ(r.limits.max_peers, c.limits.max_peers);
  EXPECT_EQ(r.limits.max_peer_subscriptions, c.limits.max_peer_subscriptions);
  EXPECT_EQ(r.limits.max_senders, c.limits.max_senders);
  EXPECT_EQ(r.limits.max_inbound_qos, c.limits.max_inbound_qos);
  EXPECT_EQ(r.limits.max_inbox, c.limits.max_inbox);
  EXPECT_EQ(r.limits.max_outbox, c.limits.max_outbox);
  EXPECT_EQ(r.heartbeat_interval_s, c.heartbeat_interval_s);
  EXPECT_EQ(r.session_timeout_s, c.session_timeout_s);
  EXPECT_EQ(r.retransmit_initial_ms, c.retransmit_initial_ms);
  EXPECT_EQ(r.retransmit_max_s, c.retransmit_max_s);
  EXPECT_EQ(r.session_lifetime_s, c.session_lifetime_s);
  EXPECT_EQ(r.retained_answer_max_delay_ms, c.retained_answer_max_delay_ms);
  EXPECT_EQ(r.inbound_state_lifetime_s, c.inbound_state_lifetime_s);
  EXPECT_EQ(r.timestamp_window_s, c.timestamp_window_s);
  EXPECT_EQ(r.replay_window, c.replay_window);
  EXPECT_EQ(r.v1_nonce_cache, c.v1_nonce_cache);
  EXPECT_EQ(r.v1_publish_layout, c.v1_publish_layout);
  EXPECT_EQ(r.default_ttl_s, c.default_ttl_s);
  EXPECT_EQ(r.max_retries, c.max_retries);
  // Written again, the text is the same: nothing lost, nothing added.
  EXPECT_EQ(to_json_text(r), read_file(file));
}

TEST(ConfigJson, DefaultsFromAFileWithOnlyTheKeys) {
  const auto loaded = parse_config(
      R"({"encryption_key": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
          "hmac_key": "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"})",
      "nomq.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  const NodeConfig& c = loaded->config;
  EXPECT_EQ(c.ip, "0.0.0.0");
  EXPECT_EQ(c.port, 8888);
  EXPECT_FALSE(c.use_ipv6);
  EXPECT_EQ(c.wire, WireVersion::v2);
  EXPECT_EQ(c.epoch, Epoch::e1970);
  EXPECT_EQ(c.group, "255.255.255.255");
  EXPECT_EQ(c.unicast_port, 0);
  EXPECT_EQ(c.limits.max_pending, 50u);
  EXPECT_EQ(c.limits.max_channels, 20u);
  EXPECT_EQ(c.limits.max_message_size, 1024u);
  EXPECT_EQ(c.limits.max_retained_per_channel, 5u);
  EXPECT_EQ(c.hmac_key, sample_config().hmac_key);  // upper-case hex accepted
}

TEST(ConfigJson, ByteOrderMarkIsSkipped) {
  const auto loaded = parse_config("\xEF\xBB\xBF" + to_json_text(sample_config()), "nomq.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(loaded->format, ConfigFormat::json);
}

TEST(ConfigJson, Ipv6WithoutGroupUsesTheAllNodesGroup) {
  NodeConfig c = sample_config();
  json j = json::parse(to_json_text(c));
  j.erase("group");
  j["use_ipv6"] = true;
  j["ip"] = "::";
  const auto loaded = parse_config(j.dump(), "nomq.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(loaded->config.group, "ff02::1");
}

// Each bad field is named with its file, in one line.
TEST(ConfigJson, EveryBadFieldIsNamed) {
  struct Case {
    const char* key;
    json value;  // null: remove the key
    const char* message;
    json also = nullptr;  // a second key to set first (cross-field rules)
  };
  const Case cases[] = {
      {"encryption_key", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd",
       "nomq.json: encryption_key: must be 64 hex digits (32 bytes), got 62"},
      {"hmac_key", "zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
       "nomq.json: hmac_key: not hex: character \"z\" at position 0"},
      {"hmac_key", nullptr,
       "nomq.json: hmac_key: missing (64 hex digits, 32 bytes; or give master_secret instead of "
       "encryption_key and hmac_key)"},
      {"master_secret", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
       "nomq.json: encryption_key: give either master_secret or encryption_key and hmac_key, "
       "not both"},
      {"group_id", "plant", "nomq.json: group_id: only with master_secret (raw encryption_key "
                            "and hmac_key are not derived)"},
      {"key_epoch", 1, "nomq.json: key_epoch: only with master_secret (raw encryption_key and "
                       "hmac_key are not derived)"},
      {"encryption_key", 42, "nomq.json: encryption_key: must be a string, got 42"},
      {"port", 70000, "nomq.json: port: must be an integer in 0..65535, got 70000"},
      {"port", -1, "nomq.json: port: must be an integer in 0..65535, got -1"},
      {"port", "8888", "nomq.json: port: must be an integer in 0..65535, got \"8888\""},
      {"port", 8888.5, "nomq.json: port: must be an integer in 0..65535, got 8888.5"},
      {"wire", "v3", "nomq.json: wire: must be one of v1, v2, got \"v3\""},
      {"epoch", 1999, "nomq.json: epoch: must be 1970 or 2000, got 1999"},
      {"use_ipv6", "yes", "nomq.json: use_ipv6: must be true or false, got \"yes\""},
      {"ip", "256.0.0.1",
       "nomq.json: ip: must be an IPv4 or IPv6 address, got \"256.0.0.1\""},
      {"ip", "::1", "nomq.json: ip: \"::1\" is an IPv6 address but use_ipv6 is false"},
      {"group", "ff02::1",
       "nomq.json: group: \"ff02::1\" is an IPv6 address but use_ipv6 is false"},
      {"group", "example.com",
       "nomq.json: group: must be an IPv4 broadcast or multicast address or an IPv6 multicast "
       "address, got \"example.com\""},
      {"group_interface", "a/b",
       "nomq.json: group_interface: must be a network interface name (at most 15 printable "
       "ASCII characters, no '/' or spaces), got \"a/b\""},
      {"unicast_port", 8888,
       "nomq.json: unicast_port: must differ from port (8888): the group socket already binds "
       "it"},
      {"log_level", "loud",
       "nomq.json: log_level: must be one of debug, info, warning, error, off, got \"loud\""},
      {"v1_publish_layout", "gap16",
       "nomq.json: v1_publish_layout: must be one of gap20, device16, got \"gap16\""},
      {"max_pending", 0, "nomq.json: max_pending: must be an integer in 1..65534, got 0"},
      {"max_message_size", 4096,
       "nomq.json: max_message_size: must be an integer in 1..1691, got 4096"},
      {"session_timeout_s", 30,
       "nomq.json: session_timeout_s: must be greater than heartbeat_interval_s (30), got 30"},
      {"retransmit_initial_ms", 5000,
       "nomq.json: retransmit_max_s: must be at least retransmit_initial_ms (5000 ms), got 2 s",
       {{"retransmit_max_s", 2}}},
      {"session_timeout_s", 300,
       "nomq.json: session_timeout_s: must be greater than heartbeat_interval_s (600), got 300",
       {{"heartbeat_interval_s", 600}}},
      {"default_ttl_s", 0, "nomq.json: default_ttl_s: must be an integer in 1..65535, got 0"},
      {"colour", "blue", "nomq.json: colour: unknown key (see docs/config.md for the keys)"},
      {"two\nlines", 1, "nomq.json: \"two\\nlines\": unknown key (see docs/config.md for the keys)"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.key);
    json j = json::parse(to_json_text(sample_config()));
    if (!tc.also.is_null()) j.merge_patch(tc.also);
    if (tc.value.is_null()) {
      j.erase(tc.key);
    } else {
      j[tc.key] = tc.value;
    }
    const auto loaded = parse_config(j.dump(2), "nomq.json");
    EXPECT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.error(), Errc::config_bad_field);
    EXPECT_EQ(loaded.error().message(), tc.message);
  }
}

TEST(ConfigJson, MalformedFilesAreNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "nomq.json: empty file"},
      {"  \n", "nomq.json: empty file"},
      {"{\"port\": 1,", "nomq.json: not valid JSON: parse error at line 1, column 12"},
      {"{\"port\": 1, \"port\": 2}", "nomq.json: port: key appears more than once"},
      {"# comment\n", "nomq.json: neither a JSON config (no '{') nor the original's format "
                      "(not base64: length 9 is not a multiple of 4)"},
      {"abc#", "nomq.json: neither a JSON config (no '{') nor the original's format (not "
               "base64: character '#' at offset 3)"},
      {"AAAAAAAAAAAAAAAAAAAAAA==",
       "nomq.json: invalid encrypted config data length: 16 bytes after base64 (needs a 16-byte "
       "IV and a non-empty multiple of 16)"},
  };
  for (const auto& [text, message] : cases) {
    SCOPED_TRACE(text);
    const auto loaded = parse_config(text, "nomq.json");
    EXPECT_EQ(loaded.error(), Errc::config_bad_format);
    EXPECT_EQ(loaded.error().message().substr(0, std::string{message}.size()), message) << loaded.error();
    EXPECT_EQ(loaded.error().message().find('\n'), std::string::npos);
  }
}

std::string legacy_container(std::string_view plain) {
  auto text = detail::legacy_wrap(plain, Iv{});
  EXPECT_TRUE(text.ok()) << text.error();
  return text.value_or(std::string{});
}

TEST(ConfigLegacy, WhatTheDecryptedTextHoldsIsChecked) {
  const std::string keys =
      R"("encryption_key": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", )"
      R"("hmac_key": "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")";
  // Keys the original does not define: it ignores them; we read the file and say so.
  auto loaded = parse_config(legacy_container("{" + keys + R"(, "device_id": "x"})"), "old.conf");
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(loaded->warning,
            "WARNING: old.conf: ignoring keys the original's format does not define: device_id");
  // Our keys are not part of the original's format either.
  loaded = parse_config(legacy_container("{" + keys + R"(, "wire": "v2"})"), "old.conf");
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(loaded->config.wire, WireVersion::v1);
  EXPECT_NE(loaded->warning.find("wire"), std::string::npos);

  loaded = parse_config(legacy_container("{" + keys), "old.conf");
  EXPECT_EQ(loaded.error(), Errc::config_bad_format);
  EXPECT_EQ(loaded.error().message().rfind("old.conf: decrypted config is not valid JSON: ", 0), 0u)
      << loaded.error();

  loaded = parse_config(legacy_container("[1]"), "old.conf");
  EXPECT_EQ(loaded.error().message(), "old.conf: decrypted config is not a JSON object (got array)");

  loaded = parse_config(legacy_container("{" + keys + R"(, "port": 65536})"), "old.conf");
  EXPECT_EQ(loaded.error().message(), "old.conf: port: must be an integer in 0..65535, got 65536");
}

// Hostile or damaged files: every mutation of a valid file (both formats) either loads or fails
// with one line naming the file; nothing throws or crashes.
TEST(ConfigRobustness, MutatedFilesFailCleanly) {
  const std::uint32_t seed = 20261125;
  SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
  std::mt19937 rng{seed};
  const auto legacy = to_legacy_text(sample_config(), Iv{});
  ASSERT_TRUE(legacy.ok()) << legacy.error();
  const std::string originals[] = {to_json_text(sample_config()), *legacy};
  int failures = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text = originals[i % 2];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const std::size_t at = rng() % text.size();
      switch (rng() % 4) {
        case 0: text[at] = static_cast<char>(rng() % 256); break;      // flip a byte
        case 1: text.erase(at, 1 + rng() % 8); break;                  // drop bytes
        case 2: text.insert(at, 1, static_cast<char>(rng() % 256)); break;
        default: text.resize(at); break;                               // truncate
      }
    }
    const auto loaded = parse_config(text, "fuzz.conf");
    if (!loaded.ok()) {
      ++failures;
      ASSERT_EQ(loaded.error().message().rfind("fuzz.conf: ", 0), 0u) << loaded.error();
      ASSERT_EQ(loaded.error().message().find('\n'), std::string::npos) << loaded.error();
      ASSERT_TRUE(loaded.error() == Errc::config_bad_format ||
                  loaded.error() == Errc::config_bad_field)
          << loaded.error();
    }
  }
  EXPECT_GT(failures, 1000);  // the mutations do damage; most are caught
}

// Item 9 of issue 13: a key file readable or writable by group or others is refused (ssh
// refuses such a private key), unless the caller says otherwise, and then it warns.
TEST(ConfigFile, KeyFileAccessibleByOthersIsRefusedUnlessAllowed) {
  TempDir dir;
  const fs::path file = dir.path() / "nomq.json";
  ASSERT_TRUE(save_config(sample_config(), file, ConfigFormat::json).ok());
  auto loaded = load_config(file);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(loaded->warning, "");

  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  loaded = load_config(file);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error(), Errc::config_insecure);
  EXPECT_EQ(loaded.error().message(), file.string() +
                                          ": is readable by others (mode 0644); it holds keys "
                                          "and must be private: chmod 600 " + file.string());
  loaded = load_config(file, LoadOptions{.allow_insecure_permissions = true});
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(loaded->warning, "WARNING: " + file.string() +
                                " is readable by others (mode 0644) (allowed by option); keys "
                                "should be private: chmod 600 " + file.string());

  for (unsigned mode : {0640u, 0620u, 0602u}) {
    ASSERT_EQ(::chmod(file.c_str(), mode), 0);
    EXPECT_EQ(load_config(file).error(), Errc::config_insecure) << std::oct << mode;
  }
}

TEST(ConfigFile, KeyFilesAreNeverOpenedThroughSymlinks) {
  TempDir dir;
  const fs::path target = dir.path() / "real.json";
  const fs::path link = dir.path() / "link.json";
  ASSERT_TRUE(save_config(sample_config(), target, ConfigFormat::json).ok());
  fs::create_symlink(target, link);
  const auto loaded = load_config(link);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error(), Errc::config_unreadable);
  EXPECT_NE(loaded.error().message().find("symbolic link"), std::string::npos) << loaded.error();

  // --force (overwrite) must not truncate or write the link's target.
  const fs::path victim = dir.path() / "victim.txt";
  { std::ofstream out{victim}; out << "precious"; }
  const fs::path planted = dir.path() / "out.json";
  fs::create_symlink(victim, planted);
  const auto status = save_config(sample_config(), planted, ConfigFormat::json,
                                  {.overwrite = true, .legacy_iv = std::nullopt});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error(), Errc::io_error);
  EXPECT_NE(status.error().message().find("symbolic link"), std::string::npos) << status.error();
  EXPECT_EQ(read_file(victim), "precious");
}

// The master-secret form (docs/config.md): written and read back without the raw keys; the
// original's format refuses it.
TEST(ConfigFile, MasterSecretFormRoundTrips) {
  auto generated = generate_config();
  ASSERT_TRUE(generated.ok());
  NodeConfig c = *generated;
  EXPECT_EQ(c.key_form, KeyForm::master);
  EXPECT_EQ(c.group_id.size(), 16u);
  c.key_epoch = 7;
  const std::string text = to_json_text(c);
  EXPECT_NE(text.find("\"master_secret\""), std::string::npos);
  EXPECT_NE(text.find("\"group_id\": \"" + c.group_id + "\""), std::string::npos);
  EXPECT_NE(text.find("\"key_epoch\": 7"), std::string::npos);
  EXPECT_EQ(text.find("encryption_key"), std::string::npos);
  EXPECT_EQ(text.find("hmac_key"), std::string::npos);
  const auto parsed = parse_config(text, "m.json");
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_EQ(parsed->config.key_form, KeyForm::master);
  EXPECT_EQ(parsed->config.master_secret, c.master_secret);
  EXPECT_EQ(parsed->config.group_id, c.group_id);
  EXPECT_EQ(parsed->config.key_epoch, 7u);
  EXPECT_EQ(to_json_text(parsed->config), text);

  const auto legacy = to_legacy_text(c);
  ASSERT_FALSE(legacy.ok());
  EXPECT_EQ(legacy.error(), Errc::config_bad_field);

  c.group_id = std::string(65, 'g');
  EXPECT_EQ(validate_config(c).error(), Errc::config_bad_field);
  c.group_id = "tab\there";
  EXPECT_EQ(validate_config(c).error(), Errc::config_bad_field);
}

TEST(ConfigFile, SaveRefusesToOverwriteUnlessAskedAndTightensTheMode) {
  TempDir dir;
  const fs::path file = dir.path() / "nomq.conf";
  {
    std::ofstream out{file};
    out << "old";
  }
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  auto status = save_config(sample_config(), file, ConfigFormat::legacy);
  EXPECT_EQ(status.error(), Errc::io_error);
  EXPECT_EQ(status.error().message(), file.string() + ": already exists (use --force to overwrite)");
  EXPECT_EQ(read_file(file), "old");

  status = save_config(sample_config(), file, ConfigFormat::legacy, {.overwrite = true, .legacy_iv = std::nullopt});
  ASSERT_TRUE(status.ok()) << status.error();
  EXPECT_EQ(file_mode(file), 0600u);
  const auto loaded = load_config(file);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(loaded->format, ConfigFormat::legacy);
  EXPECT_EQ(loaded->config.hmac_key, sample_config().hmac_key);
}

TEST(ConfigFile, SaveRefusesAnInvalidConfig) {
  TempDir dir;
  NodeConfig c = sample_config();
  c.ip = "nowhere";
  const fs::path file = dir.path() / "nomq.json";
  const auto status = save_config(c, file, ConfigFormat::json);
  EXPECT_EQ(status.error(), Errc::config_bad_field);
  EXPECT_EQ(status.error().message(),
            file.string() + ": ip: must be an IPv4 or IPv6 address, got \"nowhere\"");
  EXPECT_FALSE(fs::exists(file));
}

TEST(ConfigFile, MissingFileIsUnreadable) {
  const auto loaded = load_config("/nonexistent/nomq.json");
  EXPECT_EQ(loaded.error(), Errc::config_unreadable);
  EXPECT_EQ(loaded.error().message(), "/nonexistent/nomq.json: No such file or directory");
}

TEST(ConfigFile, GeneratedKeysAreFreshAndValid) {
  const auto a = generate_config(KeyForm::raw);
  const auto b = generate_config(KeyForm::raw);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->key_form, KeyForm::raw);
  EXPECT_NE(a->encryption_key, b->encryption_key);
  EXPECT_NE(a->encryption_key, a->hmac_key);
  EXPECT_EQ(a->master_secret, Key{});
  const auto valid = validate_config(*a);
  EXPECT_TRUE(valid.ok()) << valid.error();
  const auto m1 = generate_config();
  const auto m2 = generate_config();
  ASSERT_TRUE(m1.ok() && m2.ok());
  EXPECT_NE(m1->master_secret, m2->master_secret);
  EXPECT_NE(m1->group_id, m2->group_id);
  EXPECT_EQ(m1->encryption_key, Key{});
  EXPECT_TRUE(validate_config(*m1).ok());
}

TEST(ConfigEngine, EngineConfigCarriesEveryKnob) {
  NodeConfig c = sample_config();
  c.wire = WireVersion::v1;
  c.epoch = Epoch::e2000;
  c.heartbeat_interval_s = 7;
  c.retransmit_initial_ms = 150;
  c.retained_answer_max_delay_ms = 90;
  c.timestamp_window_s = 45;
  c.limits.max_pending = 9;
  c.default_ttl_s = 60;
  c.max_retries = 4;
  c.v1_publish_layout = wire::V1Layout::device16;
  const EngineConfig e = to_engine_config(c);
  EXPECT_EQ(e.wire, WireVersion::v1);
  EXPECT_EQ(e.epoch_offset, kEpoch2000Offset);
  EXPECT_EQ(e.timers.heartbeat_interval, std::chrono::seconds{7});
  EXPECT_EQ(e.timers.retransmit_initial, std::chrono::milliseconds{150});
  EXPECT_EQ(e.timers.retained_answer_max_delay, std::chrono::milliseconds{90});
  EXPECT_EQ(e.timers.session_timeout, std::chrono::seconds{300});
  EXPECT_EQ(e.timestamp_window_s, 45u);
  EXPECT_EQ(e.limits.max_pending, 9u);
  EXPECT_EQ(e.default_ttl_s, 60);
  EXPECT_EQ(e.max_retries, 4u);
  EXPECT_EQ(e.v1_publish_layout, wire::V1Layout::device16);
  // The node's defaults are the engine's defaults.
  const EngineConfig d = to_engine_config(NodeConfig{});
  const EngineConfig ref;
  EXPECT_EQ(d.timers.heartbeat_interval, ref.timers.heartbeat_interval);
  EXPECT_EQ(d.timers.session_timeout, ref.timers.session_timeout);
  EXPECT_EQ(d.timers.retransmit_initial, ref.timers.retransmit_initial);
  EXPECT_EQ(d.timers.retransmit_max, ref.timers.retransmit_max);
  EXPECT_EQ(d.timers.session_lifetime, ref.timers.session_lifetime);
  EXPECT_EQ(d.timers.retained_answer_max_delay, ref.timers.retained_answer_max_delay);
  EXPECT_EQ(d.timers.inbound_state_lifetime, ref.timers.inbound_state_lifetime);
  EXPECT_EQ(d.timestamp_window_s, ref.timestamp_window_s);
  EXPECT_EQ(d.replay_window, ref.replay_window);
  EXPECT_EQ(d.v1_nonce_cache, ref.v1_nonce_cache);
  EXPECT_EQ(d.default_ttl_s, ref.default_ttl_s);
  EXPECT_EQ(d.max_retries, ref.max_retries);
  EXPECT_EQ(d.wire, ref.wire);
}

}  // namespace
}  // namespace nomq
