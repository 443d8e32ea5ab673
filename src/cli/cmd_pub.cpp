// `nomq pub`: publish one message, or one per input line, like mosquitto_pub. Exits 0 only when
// every QoS 1/2 message was acknowledged by every recipient; otherwise names the ones that were
// not and exits 1.
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/command.hpp"
#include "cli/key_reload.hpp"
#include "cli/node_setup.hpp"
#include "nomq/endpoint_io.hpp"
#include "wire/utf8.hpp"

namespace nomq::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_pub_signal(int) { g_stop.store(true); }
constexpr auto on_signal = on_pub_signal;

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
  double linger = 3;
  bool json = false;
};

// How a message is named in a report line: its first 40 characters when it is text, its size
// when it is not (a binary file is never echoed to the terminal).
std::string preview(const std::string& m) {
  bool text = detail::is_valid_utf8(as_bytes(std::string_view{m}));
  for (unsigned char c : m)
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) text = false;
  if (!text) return "<" + std::to_string(m.size()) + " bytes of binary>";
  std::size_t cut = m.size() > 40 ? 40 : m.size();
  while (cut < m.size() && (static_cast<unsigned char>(m[cut]) & 0xC0) == 0x80) --cut;  // whole characters
  std::string p = m.substr(0, cut) + (cut < m.size() ? "..." : "");
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

// The whole file into `out`; "" or the OS's reason ("No such file or directory").
std::string read_file(const std::string& path, std::string& out) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return std::strerror(errno);
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  return err != 0 ? std::strerror(err) : std::string{};
}

CLI::Validator qos_validator() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        return s == "0" || s == "1" || s == "2" ? std::string{} : "qos must be 0, 1 or 2, got '" + s + "'";
      },
      "{0,1,2}");
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
  if (std::string problem = channel_problem(a.channel); !problem.empty()) return usage_error("pub", problem);

  std::string single;
  if (a.message) single = *a.message;
  if (a.file) {
    if (std::string reason = read_file(*a.file, single); !reason.empty())
      return usage_error("pub", "-f " + *a.file + ": " + reason);
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
  auto node = make_node("pub", a.node, config, code, [&](NodeOptions& o) -> std::string {
    if (!unicast) return {};
    o.network.listen_group = false;
    auto dest = parse_endpoint(a.host, o.network.group.port);
    if (!dest) return "-h needs a numeric IPv4 or IPv6 address, got '" + a.host + "'";
    // An IPv4 node has an IPv4 socket: it could never send there (and would retry until the
    // TTL ends). Say so at once.
    if (dest->family != o.network.group.family) {
      const bool v6 = dest->family == Endpoint::Family::ipv6;
      return "-h " + a.host + " is an " + (v6 ? "IPv6" : "IPv4") + " address but the node is " +
             (v6 ? "IPv4" : "IPv6") + " (group " + address_to_string(o.network.group) +
             "): give an " + (v6 ? "IPv4" : "IPv6") + " address, or a config with an " +
             (v6 ? "IPv6" : "IPv4") + " group";
    }
    opts.destination = *dest;
    return {};
  });
  if (!node) return code;
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
    if (a.json) {  // one line per report as it comes: a reader of a pipe sees it at once
      std::printf("%s\n", report_json(d, index).dump().c_str());
      std::fflush(stdout);
    }
    if (d.qos == Qos::at_most_once || d.all_acknowledged()) return;
    std::string who;
    for (const Recipient& r : d.recipients)
      if (r.state != RecipientState::acknowledged)
        who += " " + endpoint_text(r.endpoint) + " " + std::string{to_string(r.state)} + ";";
    if (d.reason == Errc::no_subscribers) who = " no subscriber of the channel appeared";
    // The most common deployment mistake looks like silence: say what was heard but not
    // understood.
    for (const AuthFailureSource& f : node->stats().auth_failures)
      who += "; " + auth_failure_text(f.address, f.datagrams);
    not_acknowledged.push_back("Error: message " + std::to_string(index) + " (\"" + preview(text) +
                               "\", id " + std::to_string(d.message_id) + ") not acknowledged: " +
                               std::string{to_string(d.reason)} + ";" + who);
  };

  // Waits for the oldest message's report. false: a signal came first (it stays in flight).
  auto finish_oldest = [&]() -> bool {
    std::optional<Delivery> d;
    while (!(d = in_flight.front().handle.wait_for(std::chrono::milliseconds{100}))) {
      if (g_stop.load()) return false;
      if (take_sighup()) reload_keys(*node, "pub", a.node.config_path, a.node.insecure_key_file);
    }
    Sent s = std::move(in_flight.front());
    in_flight.pop_front();
    report(s.index, s.text, *d);
    return true;
  };

  // QoS 0 without --json has nothing to report: the handle is dropped at once (no copy of the
  // message kept per publish, nothing to wait for).
  const bool keep_handles = opts.qos != Qos::at_most_once || a.json;
  auto publish_one = [&](const std::string& text) -> bool {
    if (take_sighup()) reload_keys(*node, "pub", a.node.config_path, a.node.insecure_key_file);
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
        // The engine's table is full: wait for the oldest, then retry. With every report
        // taken (nothing in flight), too_many_pending cannot happen: a publish reported early
        // within the discovery period (its tail) gives its slot up to a new one (docs/engine.md
        // §3), so a fast -l input needs no other wait.
        if (!finish_oldest()) return false;
        continue;
      }
      std::fprintf(stderr, "Error: message %zu (\"%s\") refused: %s\n", count, preview(text).c_str(),
                   error_text(h.error()).c_str());
      refused = true;
      return false;
    }
  };

  // SIGINT/SIGTERM: stop publishing, end what is in flight (closed) and name it. No SA_RESTART,
  // so a read of stdin (-l) returns at once.
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  install_sighup_flag();  // SIGHUP: reload the config's key epoch (docs/security.md §4)

  if (a.lines) {
    std::string line;
    while (!g_stop.load() && std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!publish_one(line)) break;
    }
  } else {
    using Clock = std::chrono::steady_clock;
    for (int i = 0; i < a.repeat && !g_stop.load(); ++i) {
      if (i > 0 && a.repeat_delay > 0) {  // pacing, asked for; a signal cuts it short
        const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(a.repeat_delay));
        while (!g_stop.load() && Clock::now() < until) {
          std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds{50}));
          if (take_sighup()) reload_keys(*node, "pub", a.node.config_path, a.node.insecure_key_file);
        }
        if (g_stop.load()) break;
      }
      if (!publish_one(single)) break;
    }
  }
  while (!in_flight.empty() && finish_oldest()) {
  }
  const bool interrupted = g_stop.load();
  // A fresh node reports its first QoS 1/2 publishes once the subscribers it heard from have
  // acknowledged; a subscriber answering later still joins them until the discovery period ends
  // (their tail, docs/engine.md §3). Exiting at the report would cut it off: keep serving it for
  // up to --linger seconds (not after a signal).
  const auto linger = interrupted ? Duration::zero()
                                  : std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.linger));
  node->close(linger);  // ends what is still in flight: reason closed
  while (!in_flight.empty()) finish_oldest();
  if (interrupted)
    std::fprintf(stderr, "nomq pub: interrupted after %zu message(s)%s\n", count,
                 not_acknowledged.empty() ? "" : "; not acknowledged:");

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
      ->check(qos_validator())
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
  app.add_option("--linger", a->linger,
                 "After the last report, seconds to keep delivering to subscribers that answered a fresh node late "
                 "(its first 1.5 s, the discovery period); 0 exits at the report")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_flag("--json", a->json, "Print each message's delivery report as one JSON line");
  return [a] { return run_pub(*a); };
}

NOMQ_CLI_COMMAND("pub", "Publish a message (like mosquitto_pub)", setup_pub);

}  // namespace
}  // namespace nomq::cli
