// `nomq sim`: runs a scenario on the deterministic network simulator (engines in virtual time
// over lossy simulated links; no socket is opened) and prints what became of every message.
// Same options and seed, same output, byte for byte. Exit 0 when the run kept every invariant
// (QoS 1/2: nothing lost; QoS 2: no duplicates; nothing delivered after expiry...), 1 when it
// broke one (listed under "violations"), 2 on a bad command line.
#include <charconv>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/command.hpp"
#include "sim/scenario.hpp"

namespace nomq::cli {
namespace {

struct SimArgs {
  std::uint64_t seed = 1;
  std::size_t nodes = 3;
  std::size_t publishers = 1;
  std::uint64_t messages = 1000;
  int qos = 1;
  double loss = 0.0;
  double dup = 0.0;
  double reorder = 0.0;
  double delay_ms = 5.0;
  double jitter_ms = 1.0;
  double reorder_delay_ms = 50.0;
  int ttl_s = 60;
  std::string wire = "v2";
  std::vector<std::string> partitions;
  std::vector<double> restarts;
  double rate = 100.0;
  std::size_t payload_size = 32;
  double warmup_s = 60.0;
  double heartbeat_s = 2.0;
  double retransmit_ms = 200.0;
  double session_lifetime_s = 86400.0;
  std::size_t max_pending = 50;
  std::string profile;
  bool mixed_priority = false;
  bool unicast = false;
  bool json = false;
  bool trace = false;
};

int usage(const std::string& message) {
  std::fprintf(stderr, "Error: %s\nUse 'nomq sim --help' to see usage.\n", message.c_str());
  return kExitUsage;
}

Duration from_ms(double ms) { return Duration{static_cast<std::int64_t>(ms * 1000.0)}; }
Duration from_s(double s) { return Duration{static_cast<std::int64_t>(s * 1e6)}; }

bool parse_double(std::string_view s, double& out) {
  if (s.empty()) return false;
  try {
    std::size_t used = 0;
    out = std::stod(std::string(s), &used);
    return used == s.size() && out >= 0.0 && out < 1e9;
  } catch (const std::exception&) {
    return false;
  }
}

// START:END[:N,N...] in seconds from the start of publishing.
bool parse_partition(const std::string& text, sim::ScenarioWindow& w) {
  const auto c1 = text.find(':');
  if (c1 == std::string::npos) return false;
  const auto c2 = text.find(':', c1 + 1);
  double start = 0, end = 0;
  if (!parse_double(std::string_view(text).substr(0, c1), start)) return false;
  const std::string_view end_text =
      std::string_view(text).substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1);
  if (!parse_double(end_text, end) || end <= start) return false;
  w.start = from_s(start);
  w.end = from_s(end);
  if (c2 != std::string::npos) {
    std::string_view rest = std::string_view(text).substr(c2 + 1);
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view item = rest.substr(0, comma);
      std::size_t n = 0;
      auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
      if (ec != std::errc{} || p != item.data() + item.size() || item.empty()) return false;
      w.nodes.push_back(n);
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
      if (rest.empty()) return false;
    }
  }
  return true;
}

int run_sim(const SimArgs& a) {
  sim::ScenarioOptions o;
  o.seed = a.seed;
  o.nodes = a.nodes;
  o.publishers = a.publishers;
  o.messages = a.messages;
  o.qos = static_cast<Qos>(a.qos);
  o.loss = a.loss;
  o.duplicate = a.dup;
  o.reorder = a.reorder;
  if (a.delay_ms < 0 || a.jitter_ms < 0 || a.reorder_delay_ms < 0)
    return usage("--delay, --jitter and --reorder-delay need 0 or more milliseconds");
  o.delay = from_ms(a.delay_ms);
  o.jitter = from_ms(a.jitter_ms);
  o.reorder_delay = from_ms(a.reorder_delay_ms);
  o.ttl_s = static_cast<std::uint16_t>(a.ttl_s);
  o.wire = a.wire == "v1" ? WireVersion::v1 : WireVersion::v2;
  for (const auto& p : a.partitions) {
    sim::ScenarioWindow w;
    if (!parse_partition(p, w))
      return usage("--partition needs START:END[:NODE,...] in seconds with START < END, got '" + p +
                   "'");
    o.partitions.push_back(std::move(w));
  }
  for (double t : a.restarts) {
    if (t < 0) return usage("--restart-subscriber-at needs 0 or more seconds");
    o.subscriber_restarts.push_back(from_s(t));
  }
  o.rate = a.rate;
  o.payload_size = a.payload_size;
  if (a.warmup_s < 0) return usage("--warmup needs 0 or more seconds");
  if (a.heartbeat_s <= 0) return usage("--heartbeat needs more than 0 seconds");
  if (a.retransmit_ms <= 0) return usage("--retransmit needs more than 0 milliseconds");
  o.warmup = from_s(a.warmup_s);
  o.heartbeat = from_s(a.heartbeat_s);
  o.retransmit_initial = from_ms(a.retransmit_ms);
  if (a.session_lifetime_s <= 0) return usage("--session-lifetime needs more than 0 seconds");
  o.session_lifetime = from_s(a.session_lifetime_s);
  o.max_pending = a.max_pending;
  o.profile = a.profile;
  o.mixed_priority = a.mixed_priority;
  o.unicast = a.unicast;
  if (a.trace) {
    o.trace = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  }

  sim::ScenarioResult r;
  try {
    r = sim::run_scenario(o);
  } catch (const std::invalid_argument& e) {
    return usage(e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Error: simulation failed: %s\n", e.what());
    return kExitFailure;
  }
  const std::string out = a.json ? sim::to_json(o, r) : sim::to_summary(o, r);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return r.violations.empty() ? kExitOk : kExitFailure;
}

std::function<int()> setup_sim(CLI::App& app) {
  auto a = std::make_shared<SimArgs>();
  app.add_option("--seed", a->seed, "Seed of every random draw (links, IVs, session ids)")
      ->capture_default_str();
  app.add_option("--nodes", a->nodes, "Nodes in the simulated network")
      ->check(CLI::Range(2, 250))
      ->capture_default_str();
  app.add_option("--publishers", a->publishers, "How many of the nodes publish (the first ones)")
      ->check(CLI::Range(1, 249))
      ->capture_default_str();
  app.add_option("--messages", a->messages, "Messages to publish in total")->capture_default_str();
  app.add_option("-q,--qos", a->qos, "QoS of every message")
      ->check(CLI::IsMember({0, 1, 2}))
      ->capture_default_str();
  app.add_option("--loss", a->loss, "Probability that a link drops a datagram")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--dup", a->dup, "Probability that a link duplicates a datagram")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--reorder", a->reorder,
                 "Probability that a link holds a datagram back (up to --reorder-delay)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--delay", a->delay_ms, "Link delay in milliseconds")->capture_default_str();
  app.add_option("--jitter", a->jitter_ms, "Extra uniform link delay in milliseconds")
      ->capture_default_str();
  app.add_option("--reorder-delay", a->reorder_delay_ms,
                 "Upper bound of the hold-back of a reordered datagram, milliseconds")
      ->capture_default_str();
  app.add_option("--ttl", a->ttl_s, "Message TTL in seconds")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--wire", a->wire, "Wire version (v1: no announcements; QoS 1/2 go to each "
                                    "subscriber explicitly)")
      ->check(CLI::IsMember({"v1", "v2"}))
      ->capture_default_str();
  app.add_option("--partition", a->partitions,
                 "START:END[:NODE,...] seconds after publishing starts: cut the nodes (default: "
                 "the last) off; repeatable");
  app.add_option("--restart-subscriber-at", a->restarts,
                 "Seconds after publishing starts: the last node crashes and restarts with a new "
                 "session; repeatable");
  app.add_option("--rate", a->rate, "Messages per second per publisher")
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  app.add_option("--payload-size", a->payload_size, "Bytes per message")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1024}))
      ->capture_default_str();
  app.add_option("--warmup", a->warmup_s, "Seconds between the subscriptions and the first publish")
      ->capture_default_str();
  app.add_option("--heartbeat", a->heartbeat_s, "Engine heartbeat interval, seconds")
      ->capture_default_str();
  app.add_option("--retransmit", a->retransmit_ms, "First retransmission timeout, milliseconds")
      ->capture_default_str();
  app.add_option("--session-lifetime", a->session_lifetime_s,
                 "Engine session lifetime, seconds: every node renews its session id after it")
      ->capture_default_str();
  app.add_option("--max-pending", a->max_pending, "Engine limit on QoS 1/2 messages in flight")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->capture_default_str();
  app.add_option("--profile", a->profile,
                 "Engine limits to start from: seed or small (docs/embedded.md); --max-pending "
                 "still applies")
      ->check(CLI::IsMember({"seed", "small"}));
  app.add_flag("--mixed-priority", a->mixed_priority, "Give messages priorities 0-15 in turn");
  app.add_flag("--unicast", a->unicast,
               "Publish each message to every subscriber's endpoint instead of the group "
               "(always so in v1 at QoS 1/2)");
  app.add_flag("--trace", a->trace,
               "Print peer changes, restarts, partitions and incomplete delivery reports to "
               "stderr, with virtual time relative to the start of publishing");
  app.add_flag("--json", a->json, "Print one JSON object instead of a summary");
  return [a] { return run_sim(*a); };
}

}  // namespace

NOMQ_CLI_COMMAND("sim", "Run a publish/subscribe scenario on the deterministic network simulator",
                 setup_sim);

}  // namespace nomq::cli
