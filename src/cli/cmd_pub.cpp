// `nomq pub`: publish one message, or one per input line, like mosquitto_pub. Exits 0 only when
// every QoS 1/2 message was acknowledged by every recipient; otherwise names the ones that were
// not and exits 1.
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/command.hpp"
#include "cli/node_setup.hpp"
#include "nomq/endpoint_io.hpp"

namespace nomq::cli {
namespace {

struct PubArgs {
  NodeArgs node;
  std::string channel;
  std::optional<std::string> message;
  std::optional<std::string> file;
  bool lines = false;
  bool whole_stdin = false;
  bool null_message = false;
  int qos = 0;
  bool retain = false;
  int priority = 0;
  std::optional<int> ttl;
  std::string host;
  int repeat = 1;
  double repeat_delay = 0;
  double wait = 10;
  bool json = false;
};

std::string preview(const std::string& m) {
  std::string p = m.size() > 40 ? m.substr(0, 40) + "..." : m;
  for (char& c : p)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return p;
}

nlohmann::json report_json(const Delivery& d, std::size_t index) {
  nlohmann::json recipients = nlohmann::json::array();
  for (const Recipient& r : d.recipients)
    recipients.push_back({{"endpoint", endpoint_text(r.endpoint)},
                          {"session", r.session_id},
                          {"state", std::string{to_string(r.state)}},
                          {"transmissions", r.transmissions}});
  return {{"index", index},
          {"message_id", d.message_id},
          {"channel", d.channel},
          {"qos", static_cast<int>(d.qos)},
          {"acknowledged", d.all_acknowledged()},
          {"reason", std::string{to_string(d.reason)}},
          {"recipients", recipients}};
}

struct Sent {
  std::size_t index = 0;  // 1-based, in the order published
  std::string text;
  PublishHandle handle;
};

int run_pub(const PubArgs& a) {
  const int sources = (a.message ? 1 : 0) + (a.file ? 1 : 0) + (a.lines ? 1 : 0) +
                      (a.whole_stdin ? 1 : 0) + (a.null_message ? 1 : 0);
  if (sources != 1)
    return usage_error("pub", "give exactly one of -m, -f, -l, -s, -n");
  if (a.repeat < 1) return usage_error("pub", "--repeat needs a count of 1 or more");
  if (a.repeat_delay < 0) return usage_error("pub", "--repeat-delay needs 0 or more seconds");
  if (a.wait < 0) return usage_error("pub", "--wait needs 0 or more seconds");
  if (a.lines && a.repeat > 1) return usage_error("pub", "--repeat cannot be used with -l");

  std::string single;
  if (a.message) single = *a.message;
  if (a.file) {
    std::ifstream in(*a.file, std::ios::binary);
    if (!in) return usage_error("pub", "cannot read -f file '" + *a.file + "'");
    single.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (a.whole_stdin) single.assign(std::istreambuf_iterator<char>(std::cin), {});

  PublishOptions opts;
  opts.qos = static_cast<Qos>(a.qos);
  opts.retain = a.retain;
  opts.priority = static_cast<std::uint8_t>(a.priority);
  if (a.ttl) opts.ttl_s = static_cast<std::uint16_t>(*a.ttl);
  opts.wait_for_subscribers = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.wait));

  NodeConfig config;
  int code = 0;
  // With -h the publish is unicast and needs no group traffic. Not binding the group port
  // matters: a unicast datagram to a port that several sockets share reaches only one of them,
  // and it must be the destination's, not ours.
  const bool unicast = !a.host.empty();
  auto node = make_node("pub", a.node, config, code, [unicast](NodeOptions& o) {
    if (unicast) o.network.listen_group = false;
  });
  if (!node) return code;
  if (!a.host.empty()) {
    auto dest = parse_endpoint(a.host, config.port);
    if (!dest) return usage_error("pub", "-h needs a numeric IPv4 or IPv6 address, got '" + a.host + "'");
    opts.destination = *dest;
  }
  if (auto r = node->start(); !r) {
    std::fprintf(stderr, "Error: cannot start the node: %s\n", error_text(r.error()).c_str());
    return kExitFailure;
  }


  std::deque<Sent> in_flight;
  std::vector<std::string> not_acknowledged;  // one error line each, printed after the run
  std::size_t count = 0;
  bool refused = false;

  // A message's report: its JSON line (in publication order), and an error line when a QoS 1/2
  // message was not acknowledged by every recipient.
  auto report = [&](std::size_t index, const std::string& text, const Delivery& d) {
    if (a.json) std::printf("%s\n", report_json(d, index).dump().c_str());
    if (d.qos == Qos::at_most_once || d.all_acknowledged()) return;
    std::string who;
    for (const Recipient& r : d.recipients)
      if (r.state != RecipientState::acknowledged)
        who += " " + endpoint_text(r.endpoint) + " " + std::string{to_string(r.state)} + ";";
    if (d.reason == Errc::no_subscribers) who = " no subscriber of the channel appeared";
    not_acknowledged.push_back("Error: message " + std::to_string(index) + " (\"" + preview(text) +
                               "\", id " + std::to_string(d.message_id) + ") not acknowledged: " +
                               std::string{to_string(d.reason)} + ";" + who);
  };

  auto finish_oldest = [&] {
    Sent s = std::move(in_flight.front());
    in_flight.pop_front();
    report(s.index, s.text, s.handle.wait());
  };

  // QoS 0 without --json has nothing to report: the handle is dropped at once (no copy of the
  // message kept per publish, nothing to wait for).
  const bool keep_handles = opts.qos != Qos::at_most_once || a.json;
  auto publish_one = [&](const std::string& text) -> bool {
    ++count;
    for (;;) {
      auto h = node->publish(a.channel, text, opts);
      if (h) {
        if (!keep_handles) return true;
        in_flight.push_back(Sent{count, text, std::move(*h)});
        // QoS 0 handles are ready at once; keep only what still needs an answer.
        while (!in_flight.empty() && in_flight.front().handle.ready()) finish_oldest();
        return true;
      }
      if ((h.error() == Errc::too_many_pending || h.error() == Errc::queue_full) && !in_flight.empty()) {
        finish_oldest();  // the engine's table is full: wait for the oldest, then retry
        continue;
      }
      std::fprintf(stderr, "Error: message %zu (\"%s\") refused: %s\n", count, preview(text).c_str(),
                   error_text(h.error()).c_str());
      refused = true;
      return false;
    }
  };

  if (a.lines) {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!publish_one(line)) break;
    }
  } else {
    for (int i = 0; i < a.repeat; ++i) {
      if (i > 0 && a.repeat_delay > 0)
        std::this_thread::sleep_for(std::chrono::duration<double>(a.repeat_delay));  // pacing, asked for
      if (!publish_one(single)) break;
    }
  }
  while (!in_flight.empty()) finish_oldest();
  node->close();

  for (const std::string& line : not_acknowledged) std::fprintf(stderr, "%s\n", line.c_str());
  const auto failed = not_acknowledged.size();
  std::fflush(stdout);
  if (a.node.debug) {
    const NodeStats s = node->stats();
    std::fprintf(stderr, "nomq pub: %zu message(s), %zu not acknowledged, %llu datagrams sent, %llu retransmissions\n",
                 count, failed, static_cast<unsigned long long>(s.engine.datagrams_sent),
                 static_cast<unsigned long long>(s.engine.retransmissions));
  }
  return (failed > 0 || refused) ? kExitFailure : kExitOk;
}

std::function<int()> setup_pub(CLI::App& app) {
  auto a = std::make_shared<PubArgs>();
  app.set_help_flag("--help", "Print this help message and exit");  // -h is the host
  add_node_options(app, a->node);
  app.add_option("-t,--channel,--topic", a->channel, "Channel to publish on")->required();
  app.add_option("-m,--message", a->message, "Message to send");
  app.add_option("-f,--file", a->file, "Send the whole file as one message");
  app.add_flag("-l,--stdin-line", a->lines, "Send each line of stdin as a message");
  app.add_flag("-s,--stdin-file", a->whole_stdin, "Send all of stdin as one message");
  app.add_flag("-n,--null-message", a->null_message, "Send an empty message");
  app.add_option("-q,--qos", a->qos, "Quality of service: 0, 1 or 2")
      ->check(CLI::IsMember({0, 1, 2}))
      ->capture_default_str();
  app.add_flag("-r,--retain", a->retain, "Retain: late subscribers get the message too");
  app.add_option("--priority", a->priority, "Priority 0..15, higher leaves first")
      ->check(CLI::Range(0, 15))
      ->capture_default_str();
  app.add_option("--ttl", a->ttl, "Time to live in seconds, 1..65535 [default: config default_ttl_s, 3600]")
      ->check(CLI::Range(1, 65535));
  app.add_option("-h,--host", a->host,
                 "Send to this node only (unicast, numeric address, port from -p) [default: the group]");
  app.add_option("--repeat", a->repeat, "Publish the message this many times")->capture_default_str();
  app.add_option("--repeat-delay", a->repeat_delay, "Seconds between repeats")->capture_default_str();
  app.add_option("--wait", a->wait,
                 "QoS 1/2 to the group: seconds to wait for a first subscriber (capped by the TTL)")
      ->capture_default_str();
  app.add_flag("--json", a->json, "Print each message's delivery report as one JSON line");
  return [a] { return run_pub(*a); };
}

NOMQ_CLI_COMMAND("pub", "Publish a message (like mosquitto_pub)", setup_pub);

}  // namespace
}  // namespace nomq::cli
