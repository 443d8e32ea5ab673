// `nomq sub`: subscribe and print one line per message as it arrives, like mosquitto_sub.
// Exit 0 after -C messages or on SIGINT/SIGTERM, 3 when -W seconds pass first.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/node_setup.hpp"

namespace nomq::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

struct SubArgs {
  NodeArgs node;
  std::vector<std::string> channels;
  int count = 0;
  double timeout = 0;
  bool verbose = false;
  std::optional<std::string> format;
  bool json = false;
  int priority = 0;
};

std::string hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// mosquitto_sub's -F subset plus ours: %t channel, %p message, %q qos, %r retain, %P priority,
// %l length, %x message as hex, %m message id, %s sender address, %U unix time, %% and \n \t.
std::string format_message(const std::string& f, const Message& m) {
  std::string out;
  for (std::size_t i = 0; i < f.size(); ++i) {
    const char c = f[i];
    if ((c == '%' || c == '\\') && i + 1 < f.size()) {
      const char n = f[++i];
      if (c == '\\') {
        out += n == 'n' ? '\n' : n == 't' ? '\t' : n;
        continue;
      }
      switch (n) {
        case 't': out += m.channel; break;
        case 'p': out += m.message; break;
        case 'q': out += std::to_string(static_cast<int>(m.qos)); break;
        case 'r': out += m.retain ? "1" : "0"; break;
        case 'P': out += std::to_string(m.priority); break;
        case 'l': out += std::to_string(m.message.size()); break;
        case 'x': out += hex(m.message); break;
        case 'm': out += std::to_string(m.message_id); break;
        case 's': out += endpoint_text(m.from); break;
        case 'U': out += std::to_string(std::time(nullptr)); break;
        case '%': out += '%'; break;
        default: out += '%'; out += n; break;
      }
      continue;
    }
    out += c;
  }
  return out;
}

std::string json_line(const Message& m) {
  nlohmann::json j = {{"channel", m.channel},
                      {"qos", static_cast<int>(m.qos)},
                      {"retain", m.retain},
                      {"priority", m.priority},
                      {"sender", endpoint_text(m.from)},
                      {"session", m.sender_session},
                      {"message_id", m.message_id}};
  j["message"] = m.message;
  try {
    return j.dump();
  } catch (const nlohmann::json::type_error&) {  // not UTF-8: give the bytes as hex instead
    j.erase("message");
    j["message_hex"] = hex(m.message);
    return j.dump();
  }
}

// stdout written per burst, not per line (a system call per message capped `nomq sub` into a
// file or pipe well below what the node receives): lines are written when the listener has been
// idle for a millisecond (the caller's flush()), or 10 ms after the first unwritten one at the
// latest, so a line that comes alone still shows at once.
class LineOutput {
 public:
  void write(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    const auto now = std::chrono::steady_clock::now();
    if (!pending_) {
      pending_ = true;
      first_ = now;
    } else if (now - first_ >= std::chrono::milliseconds{10}) {
      flush();
    }
  }
  void flush() {
    if (!pending_) return;
    std::fflush(stdout);
    pending_ = false;
  }
  bool pending() const { return pending_; }

 private:
  bool pending_ = false;
  std::chrono::steady_clock::time_point first_;
};

int run_sub(const SubArgs& a) {
  if (a.count < 0) return usage_error("sub", "-C needs a count of 1 or more");
  if (a.timeout < 0) return usage_error("sub", "-W needs a number of seconds above 0");
  if (a.json && (a.verbose || a.format)) return usage_error("sub", "--json cannot be combined with -v or -F");
  NodeConfig config;
  int code = 0;
  // A publisher that starts after us finds us at once: a fresh node solicits announcements
  // (engine discovery, docs/engine.md), so the default heartbeat interval is kept.
  auto node = make_node("sub", a.node, config, code);
  if (!node) return code;

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  auto listener = node->listen();
  for (const auto& ch : a.channels) {
    if (auto r = node->subscribe(ch, static_cast<std::uint8_t>(a.priority)); !r)
      return usage_error("sub", "cannot subscribe to '" + ch + "': " + error_text(r.error()));
  }
  if (auto r = node->start(); !r) {
    std::fprintf(stderr, "Error: cannot start the node: %s\n", error_text(r.error()).c_str());
    return kExitFailure;
  }
  if (a.node.debug) {
    std::string list;
    for (const auto& ch : a.channels) list += (list.empty() ? "" : ", ") + ch;
    // Tests wait for this line: from here on, the node hears the group and has announced.
    std::fprintf(stderr, "nomq sub: ready on %s, group %s, subscribed to %s\n",
                 endpoint_text(node->local_endpoint()).c_str(), endpoint_text(node->group()).c_str(),
                 list.c_str());
    std::fflush(stderr);
  }

  using Clock = std::chrono::steady_clock;
  const auto deadline = a.timeout > 0
      ? Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.timeout))
      : Clock::time_point::max();
  LineOutput out;
  int received = 0;
  bool owes_answers = false;
  int exit_code = kExitOk;
  while (!g_stop.load()) {
    if (a.count > 0 && received >= a.count) break;
    const auto now = Clock::now();
    if (now >= deadline) {
      if (a.count > 0)
        std::fprintf(stderr, "Timed out after %g s with %d of %d message(s)\n", a.timeout, received, a.count);
      else
        std::fprintf(stderr, "Timed out after %g s (%d message(s))\n", a.timeout, received);
      exit_code = kExitTimeout;
      break;
    }
    // Short slices so a signal is noticed promptly.
    const auto slice = std::min<Clock::duration>(deadline - now, std::chrono::milliseconds{100});
    // While lines wait in stdout's buffer, a burst that goes on within a millisecond keeps
    // them there; otherwise they are written before we wait.
    auto m = listener.next(out.pending() ? std::chrono::milliseconds{1} : Duration::zero());
    if (!m) {
      out.flush();
      m = listener.next(std::chrono::duration_cast<Duration>(slice));
      if (!m) continue;
    }
    ++received;
    if (m->qos != Qos::at_most_once) owes_answers = true;
    const std::string line = a.json ? json_line(*m)
                             : a.format ? format_message(*a.format, *m)
                             : a.verbose ? m->channel + " " + m->message
                                         : std::string{};
    const std::string& text = a.json || a.format || a.verbose ? line : m->message;
    out.write(text);
  }
  out.flush();

  if (exit_code == kExitOk && owes_answers && !g_stop.load()) {
    // A QoS 2 message is handed over on PUBLISH, but the handshake we owe ends only when the
    // publisher's PUBREL has been answered with PUBCOMP: leaving earlier would make its report
    // say "received" instead of "acknowledged". Wait until the engine holds no open QoS 2
    // receiver state (bounded by the publisher's backoff cap, 60 s, so a vanished publisher
    // cannot hold us forever).
    const auto qos2_limit = Clock::now() + std::chrono::seconds{60};
    while (!g_stop.load() && node->stats().inbound_qos2_open > 0 && Clock::now() < qos2_limit)
      (void)listener.next(std::chrono::milliseconds{50});
    // A lost ACK/PUBREC brings a retransmission that must be answered again, or the report says
    // "failed" for a message we printed. No state tells us when the publisher has its answer,
    // so keep answering until our own socket (replies and handshakes; group traffic does not
    // count) has been quiet for a second, at most 5 s.
    auto foreign = [&] { return node->stats().unicast_received; };
    auto last = foreign();
    auto quiet_since = Clock::now();
    const auto give_up = Clock::now() + std::chrono::seconds{5};
    while (!g_stop.load() && Clock::now() < give_up &&
           Clock::now() - quiet_since < std::chrono::milliseconds{1000}) {
      (void)listener.next(std::chrono::milliseconds{100});
      const auto r = foreign();
      if (r != last) {
        last = r;
        quiet_since = Clock::now();
      }
    }
  }
  auto undelivered = node->close();
  (void)undelivered;  // sub publishes nothing
  if (a.node.debug) {
    const NodeStats s = node->stats();
    std::string drops;
    for (std::size_t i = 0; i < kErrcCount; ++i)
      if (s.engine.dropped[i] != 0)
        drops += " " + std::string{to_string(static_cast<Errc>(i))} + "=" + std::to_string(s.engine.dropped[i]);
    std::fprintf(stderr, "nomq sub: %d message(s), %llu datagrams received, %llu duplicates suppressed, drops:%s\n",
                 received, static_cast<unsigned long long>(s.engine.datagrams_received),
                 static_cast<unsigned long long>(s.engine.duplicates_suppressed),
                 drops.empty() ? " none" : drops.c_str());
  }
  return exit_code;
}

std::function<int()> setup_sub(CLI::App& app) {
  auto a = std::make_shared<SubArgs>();
  app.set_help_flag("--help", "Print this help message and exit");
  add_node_options(app, a->node);
  app.add_option("-t,--channel,--topic", a->channels, "Channel to subscribe to (repeat for more)")->required();
  app.add_option("-C,--count", a->count, "Exit 0 after this many messages [default: 0, never]")
      ->check(CLI::PositiveNumber);
  app.add_option("-W,--timeout", a->timeout, "Exit 3 if -C messages have not arrived after this many seconds [default: 0, never]")
      ->check(CLI::PositiveNumber);
  app.add_flag("-v,--verbose", a->verbose, "Print \"channel message\"");
  app.add_option("-F,--format", a->format,
                 "Output format: %t channel, %p message, %q qos, %r retain, %P priority, %l length, "
                 "%x hex, %m message id, %s sender, %U unix time, %%, \\n, \\t");
  app.add_flag("--json", a->json, "One JSON object per message: channel, message, qos, retain, priority, sender");
  app.add_option("--priority", a->priority, "Subscription priority 0..15")
      ->check(CLI::Range(0, 15))
      ->capture_default_str();
  return [a] { return run_sub(*a); };
}

NOMQ_CLI_COMMAND("sub", "Subscribe and print messages (like mosquitto_sub)", setup_sub);

}  // namespace
}  // namespace nomq::cli
