// The config schema table (config_keys.hpp) and NodeConfig's defaults, which it sets.
#include "config/config_keys.hpp"

#include "nomq/crypto_backend.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <iterator>
#include <type_traits>

namespace nomq::detail {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The engine side of a key: one member of EngineConfig, EngineLimits or EngineTimers (a timer
// in the key's unit), read for the default and written by to_engine_config().
template <auto Member>
void knob_set(EngineConfig& e, std::uint64_t v) {
  e.*Member = static_cast<std::remove_reference_t<decltype(e.*Member)>>(v);
}
template <auto Member>
std::uint64_t knob_get(const EngineConfig& e) {
  return static_cast<std::uint64_t>(e.*Member);
}
template <auto Member>
void limit_set(EngineConfig& e, std::uint64_t v) {
  e.limits.*Member = static_cast<std::size_t>(v);
}
template <auto Member>
std::uint64_t limit_get(const EngineConfig& e) {
  return e.limits.*Member;
}
template <auto Member, class Unit>
void timer_set(EngineConfig& e, std::uint64_t v) {
  e.timers.*Member = Unit{static_cast<typename Unit::rep>(v)};
}
template <auto Member, class Unit>
std::uint64_t timer_get(const EngineConfig& e) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<Unit>(e.timers.*Member).count());
}
void epoch_set(EngineConfig& e, std::uint64_t v) { e.epoch_offset = epoch_offset(static_cast<Epoch>(v)); }
std::uint64_t epoch_get(const EngineConfig& e) {
  return static_cast<std::uint64_t>(e.epoch_offset == kEpoch2000Offset ? Epoch::e2000 : Epoch::e1970);
}

// NodeConfig's side: get/set of a member (enums as their value).
#define NOMQ_NODE(member)                                                                      \
  .get = [](const NodeConfig& c) { return static_cast<std::uint64_t>(c.member); },            \
  .set = [](NodeConfig& c, std::uint64_t v) { c.member = static_cast<decltype(c.member)>(v); }
#define NOMQ_KNOB(member) .to_engine = knob_set<&EngineConfig::member>, \
                          .from_engine = knob_get<&EngineConfig::member>
#define NOMQ_LIMIT(member) .to_engine = limit_set<&EngineLimits::member>, \
                           .from_engine = limit_get<&EngineLimits::member>
#define NOMQ_TIMER(member, unit) .to_engine = timer_set<&EngineTimers::member, unit>, \
                                 .from_engine = timer_get<&EngineTimers::member, unit>

constexpr std::array<Choice, 2> kWires{{{"v1", static_cast<std::uint64_t>(WireVersion::v1)},
                                        {"v2", static_cast<std::uint64_t>(WireVersion::v2)}}};
constexpr std::array<Choice, 2> kEpochs{{{"1970", static_cast<std::uint64_t>(Epoch::e1970)},
                                         {"2000", static_cast<std::uint64_t>(Epoch::e2000)}}};
constexpr std::array<Choice, 5> kLevels{{{"debug", static_cast<std::uint64_t>(LogLevel::debug)},
                                         {"info", static_cast<std::uint64_t>(LogLevel::info)},
                                         {"warning", static_cast<std::uint64_t>(LogLevel::warning)},
                                         {"error", static_cast<std::uint64_t>(LogLevel::error)},
                                         {"off", static_cast<std::uint64_t>(LogLevel::off)}}};
constexpr std::array<Choice, 2> kLayouts{
    {{"gap20", static_cast<std::uint64_t>(wire::V1Layout::gap20)},
     {"device16", static_cast<std::uint64_t>(wire::V1Layout::device16)}}};

// Ranges keep the engine's up-front allocation sane and the timers meaningful. max_message_size:
// the largest message that fits a 2048-byte datagram whatever the channel name: v2 = 2048 - 53
// header - 32 MAC, rounded down to whole cipher blocks (1952), minus one padding byte, the
// 5-byte body prefix and a 255-byte name: 1691 (v1 allows more).
// A plain array, so its size is the number of rows (a std::array would zero-fill missing ones).
const ConfigKey kKeys[] = {
    // --- the original's keys
    {.name = "ip", .type = KeyType::text, .legacy = true, .default_text = "0.0.0.0",
     .text = &NodeConfig::ip},
    {.name = "port", .legacy = true, .min = 0, .max = 65535, .node_default = 8888, NOMQ_NODE(port)},
    {.name = "use_ipv6", .type = KeyType::boolean, .legacy = true, NOMQ_NODE(use_ipv6)},
    // The raw key form (the original's): both required unless master_secret is given, and
    // then neither may be (read_fields checks the forms).
    {.name = "encryption_key", .type = KeyType::hex_key, .legacy = true,
     .key = &NodeConfig::encryption_key},
    {.name = "hmac_key", .type = KeyType::hex_key, .legacy = true, .key = &NodeConfig::hmac_key},
    // --- the master-secret key form (docs/protocol.md, key schedule)
    {.name = "master_secret", .type = KeyType::hex_key, .key = &NodeConfig::master_secret},
    {.name = "group_id", .type = KeyType::text, .text = &NodeConfig::group_id},
    {.name = "key_epoch", .min = 0, .max = 4294967295u, NOMQ_NODE(key_epoch)},
    {.name = "key_overlap_s", .min = 2, .max = 604800, .node_default = 300, NOMQ_NODE(key_overlap_s)},
    // --- ours
    {.name = "wire", .type = KeyType::choice, .choices = kWires, NOMQ_NODE(wire), NOMQ_KNOB(wire)},
    {.name = "epoch", .type = KeyType::choice, .choices = kEpochs, .choice_is_integer = true,
     NOMQ_NODE(epoch), .to_engine = epoch_set, .from_engine = epoch_get},
    {.name = "group", .type = KeyType::text, .default_text = kDefaultGroupV4,
     .text = &NodeConfig::group},
    {.name = "group_interface", .type = KeyType::text, .text = &NodeConfig::group_interface},
    {.name = "log_level", .type = KeyType::choice, .node_default = static_cast<std::uint64_t>(LogLevel::warning),
     .choices = kLevels, .ignore_case = true, NOMQ_NODE(log_level)},
    {.name = "v1_publish_layout", .type = KeyType::choice, .choices = kLayouts,
     NOMQ_NODE(v1_publish_layout), NOMQ_KNOB(v1_publish_layout)},
    {.name = "unicast_port", .min = 0, .max = 65535, NOMQ_NODE(unicast_port)},
    {.name = "timestamp_window_s", .min = 1, .max = 86400, NOMQ_NODE(timestamp_window_s),
     NOMQ_KNOB(timestamp_window_s)},
    {.name = "timestamp_future_s", .min = 0, .max = 86400, NOMQ_NODE(timestamp_future_s),
     NOMQ_KNOB(timestamp_future_s)},
    {.name = "default_ttl_s", .min = 1, .max = 65535, NOMQ_NODE(default_ttl_s),
     NOMQ_KNOB(default_ttl_s)},
    {.name = "max_retries", .min = 0, .max = 1000000, NOMQ_NODE(max_retries), NOMQ_KNOB(max_retries)},
    {.name = "replay_window", .min = 64, .max = 65536, NOMQ_NODE(replay_window),
     NOMQ_KNOB(replay_window)},
    {.name = "v1_nonce_cache", .min = 1, .max = 1048576, NOMQ_NODE(v1_nonce_cache),
     NOMQ_KNOB(v1_nonce_cache)},
    // --- engine limits
    {.name = "max_pending", .min = 1, .max = 65534, NOMQ_NODE(limits.max_pending),
     NOMQ_LIMIT(max_pending)},
    {.name = "max_channels", .min = 1, .max = 4096, NOMQ_NODE(limits.max_channels),
     NOMQ_LIMIT(max_channels)},
    {.name = "max_message_size", .min = 1, .max = 1691, NOMQ_NODE(limits.max_message_size),
     NOMQ_LIMIT(max_message_size)},
    {.name = "max_retained_per_channel", .min = 1, .max = 1000,
     NOMQ_NODE(limits.max_retained_per_channel), NOMQ_LIMIT(max_retained_per_channel)},
    {.name = "max_retained_channels", .min = 1, .max = 4096,
     NOMQ_NODE(limits.max_retained_channels), NOMQ_LIMIT(max_retained_channels)},
    {.name = "max_peers", .min = 1, .max = 65534, NOMQ_NODE(limits.max_peers), NOMQ_LIMIT(max_peers)},
    {.name = "max_peer_subscriptions", .min = 1, .max = 1048576,
     NOMQ_NODE(limits.max_peer_subscriptions), NOMQ_LIMIT(max_peer_subscriptions)},
    {.name = "max_peer_filters", .min = 1, .max = 65534, NOMQ_NODE(limits.max_peer_filters),
     NOMQ_LIMIT(max_peer_filters)},
    {.name = "max_endpoints", .min = 1, .max = 65534, NOMQ_NODE(limits.max_endpoints),
     NOMQ_LIMIT(max_endpoints)},
    {.name = "max_senders_per_endpoint", .min = 1, .max = 65535,
     NOMQ_NODE(limits.max_senders_per_endpoint), NOMQ_LIMIT(max_senders_per_endpoint)},
    {.name = "max_qos2_per_session", .min = 1, .max = 1048576,
     NOMQ_NODE(limits.max_qos2_per_session), NOMQ_LIMIT(max_qos2_per_session)},
    {.name = "max_senders", .min = 1, .max = 65534, NOMQ_NODE(limits.max_senders),
     NOMQ_LIMIT(max_senders)},
    {.name = "max_inbound_qos", .min = 1, .max = 1048576, NOMQ_NODE(limits.max_inbound_qos),
     NOMQ_LIMIT(max_inbound_qos)},
    {.name = "max_inbox", .min = 1, .max = 1048576, NOMQ_NODE(limits.max_inbox), NOMQ_LIMIT(max_inbox)},
    {.name = "max_outbox", .min = 1, .max = 1048576, NOMQ_NODE(limits.max_outbox),
     NOMQ_LIMIT(max_outbox)},
    // --- timers
    {.name = "heartbeat_interval_s", .min = 1, .max = 86400, NOMQ_NODE(heartbeat_interval_s),
     NOMQ_TIMER(heartbeat_interval, seconds)},
    {.name = "session_timeout_s", .min = 2, .max = 864000, NOMQ_NODE(session_timeout_s),
     NOMQ_TIMER(session_timeout, seconds)},
    {.name = "retransmit_initial_ms", .min = 1, .max = 60000, NOMQ_NODE(retransmit_initial_ms),
     NOMQ_TIMER(retransmit_initial, milliseconds)},
    {.name = "retransmit_max_s", .min = 1, .max = 86400, NOMQ_NODE(retransmit_max_s),
     NOMQ_TIMER(retransmit_max, seconds)},
    {.name = "session_lifetime_s", .min = 60, .max = 31536000, NOMQ_NODE(session_lifetime_s),
     NOMQ_TIMER(session_lifetime, seconds)},
    {.name = "retained_answer_max_delay_ms", .min = 0, .max = 60000,
     NOMQ_NODE(retained_answer_max_delay_ms), NOMQ_TIMER(retained_answer_max_delay, milliseconds)},
    {.name = "inbound_state_lifetime_s", .min = 1, .max = 86400, NOMQ_NODE(inbound_state_lifetime_s),
     NOMQ_TIMER(inbound_state_lifetime, seconds)},
    {.name = "discovery_period_ms", .min = 0, .max = 60000, NOMQ_NODE(discovery_period_ms),
     NOMQ_TIMER(discovery_period, milliseconds)},
    {.name = "solicit_answer_interval_ms", .min = 1, .max = 600000,
     NOMQ_NODE(solicit_answer_interval_ms), NOMQ_TIMER(solicit_answer_interval, milliseconds)},
    {.name = "retained_replay_interval_ms", .min = 1, .max = 3600000,
     NOMQ_NODE(retained_replay_interval_ms), NOMQ_TIMER(retained_replay_interval, milliseconds)},
    {.name = "solicit_answer_spread_ms", .min = 0, .max = 60000,
     NOMQ_NODE(solicit_answer_spread_ms), NOMQ_TIMER(solicit_answer_spread, milliseconds)},
    {.name = "discovery_settle_ms", .min = 0, .max = 60000, NOMQ_NODE(discovery_settle_ms),
     NOMQ_TIMER(discovery_settle, milliseconds)},
};
#undef NOMQ_NODE
#undef NOMQ_KNOB
#undef NOMQ_LIMIT
#undef NOMQ_TIMER

}  // namespace

std::span<const ConfigKey> config_keys() noexcept { return kKeys; }

const ConfigKey* find_config_key(std::string_view name) noexcept {
  const auto it = std::find_if(std::begin(kKeys), std::end(kKeys),
                               [&](const ConfigKey& k) { return k.name == name; });
  return it == std::end(kKeys) ? nullptr : &*it;
}

std::string range_text(const ConfigKey& key) {
  if (key.type != KeyType::choice) return std::to_string(key.min) + ".." + std::to_string(key.max);
  std::string all;
  for (std::size_t i = 0; i < key.choices.size(); ++i) {
    const bool last = i + 1 == key.choices.size();
    all += i == 0 ? "" : (key.choice_is_integer && last ? " or " : ", ");
    all += key.choices[i].text;
  }
  return all;
}

}  // namespace nomq::detail

namespace nomq {

NodeConfig::NodeConfig() {
  for (const auto& k : detail::config_keys()) {
    switch (k.type) {
      case detail::KeyType::text: this->*k.text = std::string{k.default_text}; break;
      case detail::KeyType::hex_key: break;  // required: zero until read or drawn
      default: k.set(*this, k.default_value()); break;
    }
  }
}

ChannelKeySpec::~ChannelKeySpec() { wipe_secret(secret); }

NodeConfig::~NodeConfig() {
  wipe_secret(encryption_key);
  wipe_secret(hmac_key);
  wipe_secret(master_secret);
}

}  // namespace nomq
