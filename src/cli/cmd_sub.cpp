// `nomq sub`: subscribe and print one line per message as it arrives, like mosquitto_sub.
// Exit 0 after -C messages or on SIGINT/SIGTERM, 3 when -W seconds pass first.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cctype>
#include <ctime>
#include <exception>
#include <string_view>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/key_reload.hpp"
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
  bool ready = false;
  std::optional<std::string> qos;  // refused with the reason (mosquitto_sub habit)
  bool no_retained = false;        // -R
  bool retained_only = false;      // --retained-only
  bool no_newline = false;         // -N
  std::vector<std::string> filter_out;  // -T
  bool remove_retained = false;    // --remove-retained
  std::vector<std::string> withdraw;  // -U
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

// ISO 8601 times of the moment a message is printed: "2026-12-05T12:00:00+0000" (-F %I, as
// mosquitto_sub) and "2026-12-05T12:00:00.123Z" (JSON "timestamp", UTC with milliseconds).
std::string iso_local(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::localtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
  return buf;
}

std::string iso_utc_ms(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

nlohmann::json json_of(const Message& m, std::chrono::system_clock::time_point at, bool embed) {
  nlohmann::json j = {{"timestamp", iso_utc_ms(at)},
                      {"channel", m.channel},
                      {"qos", static_cast<int>(m.qos)},
                      {"retain", m.retain},
                      {"priority", m.priority},
                      {"sender", endpoint_text(m.from)},
                      {"session", m.sender_session},
                      {"message_id", m.message_id}};
  if (embed) {  // %J: a message that is JSON goes in as JSON
    auto parsed = nlohmann::json::parse(m.message, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) {
      j["message"] = std::move(parsed);
      return j;
    }
  }
  j["message"] = m.message;
  return j;
}

std::string json_line(const Message& m, std::chrono::system_clock::time_point at, bool embed = false) {
  nlohmann::json j = json_of(m, at, embed);
  try {
    return j.dump();
  } catch (const nlohmann::json::type_error&) {  // not UTF-8: give the bytes as hex instead
    j.erase("message");
    j["message_hex"] = hex(m.message);
    return j.dump();
  }
}

constexpr const char* kFormatSpecifiers = "%t %p %q %r %P %l %x %X %m %s %U %I %j %J %%";

// -F checked once, before anything runs: "" or what is wrong ("-F: unknown specifier '%z' ...").
std::string format_problem(const std::string& f) {
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] == '\\') {
      ++i;  // \n, \t, \\ and any other character as itself
      continue;
    }
    if (f[i] != '%') continue;
    if (i + 1 == f.size()) return "-F: '%' at the end of the format (use %% for a '%')";
    const char n = f[++i];
    if (std::string_view{"tpqrPlxXmsUIjJ%"}.find(n) == std::string_view::npos)
      return std::string{"-F: unknown specifier '%"} + n + "' (known: " + kFormatSpecifiers + ", \\n, \\t)";
  }
  return {};
}

// mosquitto_sub's -F subset plus ours: %t channel, %p message, %q qos, %r retain, %P priority,
// %l length, %x / %X message as hex, %m message id, %s sender address, %U unix time, %I ISO 8601
// time, %j / %J JSON (%J: a JSON message embedded), %% and \n \t.
std::string format_message(const std::string& f, const Message& m,
                           std::chrono::system_clock::time_point at) {
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
        case 'X': {
          std::string h = hex(m.message);
          for (char& d : h) d = static_cast<char>(std::toupper(static_cast<unsigned char>(d)));
          out += h;
          break;
        }
        case 'm': out += std::to_string(m.message_id); break;
        case 's': out += endpoint_text(m.from); break;
        case 'U': out += std::to_string(std::chrono::system_clock::to_time_t(at)); break;
        case 'I': out += iso_local(at); break;
        case 'j': out += json_line(m, at); break;
        case 'J': out += json_line(m, at, true); break;
        default: out += '%'; break;  // "%%" (format_problem refused the rest)
      }
      continue;
    }
    out += c;
  }
  return out;
}

// stdout written per burst, not per line (a system call per message capped `nomq sub` into a
// file or pipe well below what the node receives): lines are written when the listener has been
// idle for a millisecond (the caller's flush()), or 10 ms after the first unwritten one at the
// latest, so a line that comes alone still shows at once.
class LineOutput {
 public:
  void write(const std::string& text, bool newline) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (newline) std::fputc('\n', stdout);
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
  if (a.count < 0) return usage_error("sub", "-C needs a count of 0 (never) or more");
  if (a.timeout < 0) return usage_error("sub", "-W needs a number of seconds, 0 (never) or more");
  if (a.qos)
    return usage_error("sub", "-q: nomq sub takes no QoS: each message arrives with the QoS its "
                              "publisher chose (nomq pub -q)");
  // -t a -t a subscribes once (as mosquitto_sub does), in the order first given.
  std::vector<std::string> channels;
  for (const auto& ch : a.channels) {
    if (std::string problem = channel_problem(ch); !problem.empty()) return usage_error("sub", problem);
    if (std::find(channels.begin(), channels.end(), ch) == channels.end()) channels.push_back(ch);
  }
  if (a.json && (a.verbose || a.format)) return usage_error("sub", "--json cannot be combined with -v or -F");
  if (a.format)
    if (std::string problem = format_problem(*a.format); !problem.empty()) return usage_error("sub", problem);
  if (a.retained_only && a.no_retained) return usage_error("sub", "--retained-only cannot be combined with -R");
  if (channels.empty() && a.withdraw.empty())
    return usage_error("sub", "give -t CHANNEL to subscribe (or -U CHANNEL to withdraw a subscription)");
  // -U: channels this node announces it does not follow (mosquitto_sub's -U, see docs/cli.md).
  std::vector<std::string> withdraw;
  for (const auto& ch : a.withdraw) {
    if (std::string problem = channel_problem(ch); !problem.empty())
      return usage_error("sub", "-U" + problem.substr(2));  // "-t: ..." said of -U
    if (std::find(channels.begin(), channels.end(), ch) != channels.end())
      return usage_error("sub", "-U " + ch + ": also given with -t (a channel is followed or withdrawn, not both)");
    if (std::find(withdraw.begin(), withdraw.end(), ch) == withdraw.end()) withdraw.push_back(ch);
  }
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
  install_sighup_flag();  // SIGHUP: reload the config's key epoch (docs/security.md §4)

  auto listener = node->listen();
  for (const auto& ch : channels) {
    if (auto r = node->subscribe(ch, static_cast<std::uint8_t>(a.priority)); !r)
      return usage_error("sub", "cannot subscribe to '" + ch + "': " + error_text(r.error()));
  }
  if (auto r = node->start(); !r) {
    std::fprintf(stderr, "Error: cannot start the node: %s\n", error_text(r.error()).c_str());
    return kExitFailure;
  }
  for (const auto& ch : withdraw) {
    if (auto r = node->withdraw(ch); !r)
      return usage_error("sub", "-U " + ch + ": " + error_text(r.error()));
  }
  if (channels.empty()) {
    // -U alone: the UNSUBSCRIBEs leave with close() (it sends what is queued), then exit 0.
    node->close();
    if (a.node.debug || a.ready) {
      std::string list;
      for (const auto& ch : withdraw) list += (list.empty() ? "" : ", ") + ch;
      std::fprintf(stderr, "nomq sub: withdrew %s (UNSUBSCRIBE to group %s)\n", list.c_str(),
                   endpoint_text(node->group()).c_str());
    }
    return kExitOk;
  }
  if (a.node.debug || a.ready) {
    std::string list;
    for (const auto& ch : channels) list += (list.empty() ? "" : ", ") + ch;
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
  std::size_t cleared = 0;
  bool owes_answers = false;
  int exit_code = kExitOk;
  while (!g_stop.load()) {
    if (take_sighup()) reload_keys(*node, "sub", a.node.config_path, a.node.insecure_key_file);
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
    if (m->qos != Qos::at_most_once) owes_answers = true;  // answered by the engine, printed or not
    // --remove-retained: every retained value received (on any of our filters, printed or not)
    // is cleared with an empty retained publish to the group (QoS 0, which reaches every node
    // that keeps it, publishers included; docs/engine.md §7). An empty one is itself a clear:
    // answering it would make two such subscribers clear each other forever.
    if (a.remove_retained && m->retain && !m->message.empty()) {
      PublishOptions clear;
      clear.retain = true;
      clear.priority = m->priority;
      if (auto r = node->publish(m->channel, std::string_view{}, clear); r) {
        ++cleared;
      } else {
        std::fprintf(stderr, "Warning: cannot clear the retained value of '%s': %s\n",
                     m->channel.c_str(), error_text(r.error()).c_str());
      }
    }
    if (a.retained_only && !m->retain) break;  // the retained values are over (mosquitto_sub habit)
    if (a.no_retained && m->retain) continue;
    if (std::find(a.filter_out.begin(), a.filter_out.end(), m->channel) != a.filter_out.end()) continue;
    ++received;
    const auto at = std::chrono::system_clock::now();
    const std::string line = a.json ? json_line(*m, at)
                             : a.format ? format_message(*a.format, *m, at)
                             : a.verbose ? m->channel + " " + m->message
                                         : std::string{};
    const std::string& text = a.json || a.format || a.verbose ? line : m->message;
    out.write(text, !a.no_newline);
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
    std::fprintf(stderr, "nomq sub: %d message(s), %zu retained value(s) cleared, %llu datagrams received, %llu duplicates suppressed, drops:%s\n",
                 received, cleared, static_cast<unsigned long long>(s.engine.datagrams_received),
                 static_cast<unsigned long long>(s.engine.duplicates_suppressed),
                 drops.empty() ? " none" : drops.c_str());
  }
  return exit_code;
}

// 0 or more (0: never), said plainly (CLI11's own range check prints a 300-digit bound).
CLI::Validator not_negative(const std::string& what, bool fractions) {
  return CLI::Validator(
      [what, fractions](std::string& s) -> std::string {
        std::size_t used = 0;
        double v = -1;
        try {
          v = fractions ? std::stod(s, &used) : static_cast<double>(std::stol(s, &used));
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == s.size() && !s.empty() && v >= 0) return {};
        return "needs " + what + ", 0 (never) or more, got '" + s + "'";
      },
      "");
}

std::function<int()> setup_sub(CLI::App& app) {
  auto a = std::make_shared<SubArgs>();
  app.set_help_flag("--help", "Print this help message and exit");
  add_node_options(app, a->node);
  app.add_option("-t,--channel,--topic", a->channels, "Channel to subscribe to (repeat for more)");
  app.add_option("-C,--count", a->count, "Exit 0 after this many messages [default: 0, never]")
      ->check(not_negative("a count", false));
  app.add_option("-W,--timeout", a->timeout, "Exit 3 if -C messages have not arrived after this many seconds [default: 0, never]")
      ->check(not_negative("seconds", true));
  app.add_option("-q,--qos", a->qos, "Not taken: the publisher chooses each message's QoS")
      ->group("");  // hidden: only there to explain itself
  app.add_flag("-v,--verbose", a->verbose, "Print \"channel message\"");
  app.add_option("-F,--format", a->format,
                 "Output format: %t channel, %p message, %q qos, %r retain, %P priority, %l length, "
                 "%x/%X hex, %m message id, %s sender, %U unix time, %I ISO 8601 time, %j JSON, "
                 "%J JSON with a JSON message embedded, %%, \\n, \\t");
  app.add_flag("--json", a->json,
               "One JSON object per message: timestamp, channel, message, qos, retain, priority, sender, "
               "session, message_id");
  app.add_flag("-R,--no-retained", a->no_retained,
               "Do not print messages with the retain flag (retained values handed to a new "
               "subscriber, retained publishes)");
  app.add_flag("--retained-only", a->retained_only,
               "Print only messages with the retain flag; exit 0 at the first without it");
  app.add_flag("-N,--no-newline", a->no_newline, "No newline after each message");
  app.add_option("-T,--filter-out", a->filter_out, "Do not print messages on this channel (repeatable)");
  app.add_flag("--remove-retained", a->remove_retained,
               "Clear every retained value received (an empty retained QoS 0 publish to the group)");
  app.add_option("-U,--unsubscribe", a->withdraw,
                 "Announce that this node does not follow CHANNEL: peers drop a subscription left by "
                 "this address's previous session at once (repeatable; alone: announce and exit)");
  app.add_flag("--ready", a->ready,
               "Print 'nomq sub: ready on ...' on stderr once subscribed (as -d does), for scripts");
  app.add_option("--priority", a->priority, "Subscription priority 0..15")
      ->check(CLI::Range(0, 15))
      ->capture_default_str();
  return [a] { return run_sub(*a); };
}

NOMQ_CLI_COMMAND("sub", "Subscribe and print messages (like mosquitto_sub)", setup_sub);

}  // namespace
}  // namespace nomq::cli
