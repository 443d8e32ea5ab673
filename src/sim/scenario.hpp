// Scenarios on the simulator: publishers publish M messages on a schedule, subscribers count
// what arrives, and the run ends with an account of every message: delivered, duplicated,
// reported failed or expired, or lost. `nomq sim` and the simulation tests are built on this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nomq/engine.hpp"

namespace nomq::sim {

using namespace std::chrono_literals;

// A partition window, in time relative to the start of publishing. Empty `nodes`: the last
// node (a subscriber) is cut off.
struct ScenarioWindow {
  Duration start{0};
  Duration end{0};
  std::vector<std::size_t> nodes;
};

// Nodes 0..publishers-1 publish; the others subscribe to `channel` at the start. Publishing
// begins after `warmup` (subscriptions need announcing first: under loss, several heartbeats).
// Times given in options are relative to the start of publishing.
struct ScenarioOptions {
  std::uint64_t seed = 1;
  std::size_t nodes = 3;
  std::size_t publishers = 1;
  std::uint64_t messages = 1000;  // in total, spread round-robin over the publishers
  Qos qos = Qos::at_least_once;
  double loss = 0.0;
  double duplicate = 0.0;
  double reorder = 0.0;
  Duration delay = 5ms;
  Duration jitter = 1ms;
  Duration reorder_delay = 50ms;
  std::uint16_t ttl_s = 60;
  WireVersion wire = WireVersion::v2;
  std::vector<ScenarioWindow> partitions;
  std::vector<Duration> subscriber_restarts;  // the last node crashes and restarts (new session)
  double rate = 100.0;                        // messages per second, per publisher
  std::size_t payload_size = 32;              // bytes, at least the sequence number's text
  Duration warmup = 60s;
  Duration heartbeat = 2s;
  Duration retransmit_initial = 200ms;
  Duration session_lifetime = 24h;            // engine setting: renew the session id after this
  bool mixed_priority = false;                // priority = (message index * 7) % 16, else 0
  // Publish every message once per subscriber to its endpoint (PublishOptions::destination)
  // instead of to the group. Always so in v1 at QoS 1/2 (no announcements to learn from).
  bool unicast = false;
  std::uint32_t max_retries = 0;              // engine setting; 0: until acknowledged or TTL
  std::size_t max_pending = 50;               // engine setting
  // Engine limits to start from: "" (defaults), "seed" or "small" (EngineConfig::seed_profile(),
  // small_profile()); max_pending and the timers above still apply on top.
  std::string profile;
  std::string channel = "sim/data";
  // When set, subscribers subscribe to this filter (which must match `channel`) instead.
  std::string subscribe_filter;
  // When set, called with one line per notable event (peer changes, restarts, partitions,
  // delivery reports that are not ok or leave a subscriber out), for investigating a seed.
  std::function<void(const std::string&)> trace;
};

// One (message, subscriber) pair that was neither delivered nor reported failed: the first few
// are kept so that a failing seed can be investigated.
struct LostDelivery {
  std::uint64_t message = 0;    // index, as in the payload "m<index>:"
  std::size_t publisher = 0;
  std::size_t subscriber = 0;
  double published_at_s = 0;    // seconds after publishing started
  std::string report;           // reason of the publisher's report, or "none"
  bool named = false;           // the report listed this subscriber (acknowledged, then)
};

// What became of the messages. A "delivery" is a (message, subscriber node) pair.
struct ScenarioResult {
  std::uint64_t subscribers = 0;
  std::uint64_t published = 0;            // messages the engine accepted
  std::uint64_t expected_deliveries = 0;  // published * subscribers
  std::uint64_t delivered = 0;            // pairs delivered at least once
  std::vector<std::uint64_t> delivered_by_node;  // pairs delivered, per node (publishers: 0)
  std::uint64_t deliveries = 0;           // MessageEvents on the channel, repeats included
  std::uint64_t duplicates = 0;           // repeat deliveries to the same subscriber session
  std::uint64_t redelivered_new_session = 0;  // delivered again to a restarted subscriber
  // Messages not delivered to every subscriber and not reported failed for the ones missed.
  // At QoS 0 nothing is reported, so every message a subscriber missed counts here.
  std::uint64_t lost = 0;
  std::uint64_t lost_deliveries = 0;      // the pairs behind `lost`
  std::vector<LostDelivery> lost_examples;  // the first 10 of them
  std::uint64_t reported_failed = 0;      // messages whose report names a recipient not acknowledged
  std::uint64_t failed_recipients = 0;    // pairs so reported
  std::uint64_t failed_but_delivered = 0; // of which the subscriber had the message after all
  std::uint64_t expired = 0;              // messages with a report of reason expired
  std::map<std::string, std::uint64_t> reports;  // reason name -> reports
  std::uint64_t unreported = 0;           // QoS 1/2 publishes without a report at the end
  std::uint64_t acked_not_delivered = 0;  // reported acknowledged, never delivered: a bug
  std::uint64_t delivered_after_expiry = 0;  // delivered later than publish time + TTL: a bug
  std::uint64_t qos_mismatch = 0;         // delivered with another QoS than published
  std::uint64_t foreign_deliveries = 0;   // deliveries not matching any published message
  std::uint64_t unknown_reports = 0;      // reports for message ids never published
  std::uint64_t publish_backpressure = 0; // publish deferred: too_many_pending / queue_full
  std::uint64_t publish_abandoned = 0;    // deferred past TTL + 60 s: the pending set never drained
  std::map<std::string, std::uint64_t> publish_errors;  // other publish() errors by name
  std::uint64_t restarts = 0;
  double virtual_seconds = 0;             // from the first subscription to the end of the run
  std::uint64_t datagrams_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t retransmissions = 0;
  std::uint64_t duplicates_suppressed = 0;
  std::uint64_t dropped_loss = 0;
  std::uint64_t dropped_partition = 0;
  std::uint64_t dropped_no_route = 0;
  std::uint64_t link_duplicated = 0;
  std::uint64_t link_reordered = 0;
  std::uint64_t timer_stalls = 0;
  std::map<std::string, std::uint64_t> engine_drops;  // Errc name -> datagrams dropped
  std::uint64_t trace_digest = 0;         // Simulator::trace_digest() at the end of the run
  std::vector<std::string> violations;    // invariants the run broke (empty: none)
};

// Runs the scenario. Throws std::invalid_argument for impossible options (no subscriber,
// payload too small...) and std::runtime_error if the simulator cannot run.
ScenarioResult run_scenario(const ScenarioOptions& options);

// One JSON object (options and results); identical bytes for identical inputs.
std::string to_json(const ScenarioOptions& options, const ScenarioResult& result);
// A few readable lines.
std::string to_summary(const ScenarioOptions& options, const ScenarioResult& result);

// The `nomq sim` command line that reruns these options (for failure messages and docs).
std::string command_line(const ScenarioOptions& options);

// The payload the scenario publishes for message `index` ("m<index>:" padded with '.'), and
// its inverse (nullopt if `payload` is not one).
std::string scenario_payload(std::uint64_t index, std::size_t size);
std::optional<std::uint64_t> parse_scenario_payload(Bytes payload);

}  // namespace nomq::sim
