// The scenario's reports: the JSON object and summary `nomq sim` prints, and the command line
// that replays a run. Hosted only (nlohmann-json, iostreams); scenario.cpp, which runs the
// scenario, builds for a microcontroller too (tests/mcu/sim_compare.cpp under qemu).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <sstream>

#include "sim/scenario.hpp"

namespace nomq::sim {

namespace {

std::int64_t to_ms(Duration d) { return d.count() / 1000; }
double to_s(Duration d) { return static_cast<double>(d.count()) / 1e6; }

}  // namespace

std::string command_line(const ScenarioOptions& o) {
  std::ostringstream s;
  auto ms = [](Duration d) { return static_cast<double>(d.count()) / 1e3; };
  auto sec = [](Duration d) { return static_cast<double>(d.count()) / 1e6; };
  s << "nomq sim --seed " << o.seed << " --nodes " << o.nodes << " --publishers " << o.publishers
    << " --messages " << o.messages << " --qos " << static_cast<int>(o.qos) << " --loss " << o.loss
    << " --dup " << o.duplicate << " --reorder " << o.reorder << " --delay " << ms(o.delay)
    << " --jitter " << ms(o.jitter) << " --reorder-delay " << ms(o.reorder_delay) << " --ttl "
    << o.ttl_s << " --wire " << to_string(o.wire) << " --rate " << o.rate << " --payload-size "
    << o.payload_size << " --warmup " << sec(o.warmup) << " --heartbeat " << sec(o.heartbeat)
    << " --retransmit " << ms(o.retransmit_initial) << " --max-pending " << o.max_pending
    << " --session-lifetime " << sec(o.session_lifetime);
  if (!o.profile.empty()) s << " --profile " << o.profile;
  for (const auto& w : o.partitions) {
    s << " --partition " << sec(w.start) << ":" << sec(w.end);
    for (std::size_t i = 0; i < w.nodes.size(); ++i) s << (i == 0 ? ":" : ",") << w.nodes[i];
  }
  for (auto t : o.subscriber_restarts) s << " --restart-subscriber-at " << sec(t);
  if (o.mixed_priority) s << " --mixed-priority";
  if (o.unicast) s << " --unicast";
  if (o.max_retries != 0) s << "  # max_retries " << o.max_retries << " (no CLI option)";
  if (o.channel != "sim/data") s << "  # channel " << o.channel << " (no CLI option)";
  if (!o.subscribe_filter.empty()) s << "  # filter " << o.subscribe_filter << " (no CLI option)";
  s << " --json";
  return s.str();
}

std::string to_json(const ScenarioOptions& o, const ScenarioResult& r) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["seed"] = o.seed;
  j["wire"] = std::string(to_string(o.wire));
  j["qos"] = static_cast<int>(o.qos);
  j["nodes"] = o.nodes;
  j["publishers"] = o.publishers;
  j["subscribers"] = r.subscribers;
  j["messages"] = o.messages;
  j["published"] = r.published;
  j["expected_deliveries"] = r.expected_deliveries;
  j["delivered"] = r.delivered;
  j["duplicates"] = r.duplicates;
  j["lost"] = r.lost;
  j["lost_deliveries"] = r.lost_deliveries;
  ordered_json examples = ordered_json::array();
  for (const auto& l : r.lost_examples)
    examples.push_back({{"message", l.message},
                        {"publisher", l.publisher},
                        {"subscriber", l.subscriber},
                        {"published_at_s", l.published_at_s},
                        {"report", l.report},
                        {"named", l.named}});
  j["lost_examples"] = examples;
  j["reported_failed"] = r.reported_failed;
  j["failed_recipients"] = r.failed_recipients;
  j["failed_but_delivered"] = r.failed_but_delivered;
  j["expired"] = r.expired;
  j["unreported"] = r.unreported;
  j["acked_not_delivered"] = r.acked_not_delivered;
  j["delivered_after_expiry"] = r.delivered_after_expiry;
  j["redelivered_new_session"] = r.redelivered_new_session;
  j["delivered_by_node"] = r.delivered_by_node;
  j["deliveries"] = r.deliveries;
  j["reports"] = r.reports;
  j["virtual_seconds"] = r.virtual_seconds;
  j["datagrams_sent"] = r.datagrams_sent;
  j["bytes_sent"] = r.bytes_sent;
  j["retransmissions"] = r.retransmissions;
  j["duplicates_suppressed"] = r.duplicates_suppressed;
  j["publish_backpressure"] = r.publish_backpressure;
  j["publish_abandoned"] = r.publish_abandoned;
  j["publish_errors"] = r.publish_errors;
  j["restarts"] = r.restarts;
  j["network"] = {{"dropped_loss", r.dropped_loss},
                  {"dropped_partition", r.dropped_partition},
                  {"dropped_no_route", r.dropped_no_route},
                  {"duplicated", r.link_duplicated},
                  {"reordered", r.link_reordered},
                  {"timer_stalls", r.timer_stalls}};
  j["engine_drops"] = r.engine_drops;
  char digest[17];
  std::snprintf(digest, sizeof digest, "%016llx", static_cast<unsigned long long>(r.trace_digest));
  j["trace_digest"] = std::string(digest);
  j["violations"] = r.violations;
  ordered_json parts = ordered_json::array();
  for (const auto& w : o.partitions) {
    ordered_json nodes = ordered_json::array();
    if (w.nodes.empty()) nodes.push_back(o.nodes - 1);
    for (auto n : w.nodes) nodes.push_back(n);
    parts.push_back({{"start_s", to_s(w.start)}, {"end_s", to_s(w.end)}, {"nodes", nodes}});
  }
  ordered_json restarts = ordered_json::array();
  for (auto t : o.subscriber_restarts) restarts.push_back(to_s(t));
  j["config"] = {{"loss", o.loss},
                 {"dup", o.duplicate},
                 {"reorder", o.reorder},
                 {"delay_ms", to_ms(o.delay)},
                 {"jitter_ms", to_ms(o.jitter)},
                 {"reorder_delay_ms", to_ms(o.reorder_delay)},
                 {"ttl_s", o.ttl_s},
                 {"rate", o.rate},
                 {"payload_size", o.payload_size},
                 {"warmup_s", to_s(o.warmup)},
                 {"heartbeat_s", to_s(o.heartbeat)},
                 {"retransmit_initial_ms", to_ms(o.retransmit_initial)},
                 {"session_lifetime_s", to_s(o.session_lifetime)},
                 {"max_pending", o.max_pending},
                 {"mixed_priority", o.mixed_priority},
                 {"unicast", o.unicast},
                 {"partitions", parts},
                 {"restart_subscriber_at_s", restarts}};
  if (!o.profile.empty()) j["config"]["profile"] = o.profile;
  return j.dump(2) + "\n";
}

std::string to_summary(const ScenarioOptions& o, const ScenarioResult& r) {
  std::ostringstream s;
  s << "seed " << o.seed << ", wire " << to_string(o.wire) << ", QoS " << static_cast<int>(o.qos)
    << ", " << o.nodes << " nodes (" << o.publishers << " publishing, " << r.subscribers
    << " subscribing)\n";
  s << "published " << r.published << " of " << o.messages << ", delivered " << r.delivered
    << " of " << r.expected_deliveries << " deliveries, duplicates " << r.duplicates << "\n";
  s << "lost " << r.lost << ", reported failed " << r.reported_failed << " (expired " << r.expired
    << "), unreported " << r.unreported << "\n";
  s << "virtual time " << r.virtual_seconds << " s, datagrams sent " << r.datagrams_sent
    << ", retransmissions " << r.retransmissions << ", link drops " << r.dropped_loss
    << " (loss) + " << r.dropped_partition << " (partition)\n";
  if (r.violations.empty()) {
    s << "invariants: ok\n";
  } else {
    s << "invariants broken:";
    for (const auto& v : r.violations) s << " " << v;
    s << "\n";
  }
  return s.str();
}

}  // namespace nomq::sim
