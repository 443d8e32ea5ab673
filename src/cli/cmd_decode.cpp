// `nomq decode`: verify and decode datagrams given as hex, with the receiver state the original
// keeps (subscribed channels, seen publish nonces) so every verdict can be reproduced offline.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cli/cli_config.hpp"
#include "cli/command.hpp"
#include "cli/pcap_reader.hpp"
#include "nomq/endpoint_io.hpp"
#include "nomq/config.hpp"
#include "nomq/crypto_backend.hpp"
#include "nomq/wire.hpp"
#include "wire/utf8.hpp"

namespace nomq::cli {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Empty string when `s` is an even number of hex digits; otherwise why not.
std::string hex_problem(const std::string& s) {
  if (s.empty()) return "empty datagram";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (hex_value(s[i]) < 0) {
      return "not hex: character '" + std::string(1, s[i]) + "' at position " + std::to_string(i);
    }
  }
  if (s.size() % 2 != 0) return "odd number of hex digits (" + std::to_string(s.size()) + ")";
  if (s.size() / 2 > 65535) return "longer than any UDP datagram";
  return {};
}

std::vector<std::uint8_t> hex_decode(const std::string& s) {
  std::vector<std::uint8_t> out(s.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::uint8_t>(hex_value(s[2 * i]) * 16 + hex_value(s[2 * i + 1]));
  }
  return out;
}

std::string hex_encode(Bytes b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * b.size());
  for (std::uint8_t x : b) {
    s.push_back(kDigits[x >> 4]);
    s.push_back(kDigits[x & 0x0F]);
  }
  return s;
}

struct DecodeArgs {
  ConfigOptions config;
  std::optional<double> now;
  std::vector<std::string> channels;
  std::vector<std::string> hex;
  std::optional<std::string> pcap;  // --pcap FILE ("-": stdin)
  std::uint16_t port = 0;           // --port: only datagrams from or to it (captures)
};

// One datagram to judge: from the command line, stdin, or a capture (which brings its own
// time, source and frame number).
struct Input {
  std::vector<std::uint8_t> bytes;
  std::optional<WallTime> captured;  // set for a capture's datagrams
  std::size_t frame = 0;
  Endpoint from, to;
  // "" or " (frame 3, 127.0.0.1:40000 -> 127.255.255.255:8888)"
  std::string where() const {
    if (!captured) return {};
    return " (frame " + std::to_string(frame) + ", " + to_string(from) + " -> " + to_string(to) + ")";
  }
};

nlohmann::ordered_json describe(const wire::Packet& p, const std::string* known_channel) {
  nlohmann::ordered_json j;
  j["version"] = static_cast<int>(p.version);
  j["type"] = std::string{wire::to_string(p.type)};
  j["flags"] = p.flags;
  j["qos"] = p.qos();
  j["retain"] = p.retain();
  j["priority"] = p.priority();
  j["packet_id"] = p.packet_id;
  j["session_id"] = p.session_id;
  j["ttl"] = p.ttl;
  j["timestamp"] = p.timestamp;
  j["channel_id"] = hex_encode(p.channel_id);
  // v2 carries the name inside the ciphertext (checked against channel_id by the codec); v1
  // SUBSCRIBE/UNSUBSCRIBE carry it as their plaintext; otherwise it is known from -t.
  if (!p.body.channel.empty()) {
    j["channel"] = std::string{p.body.channel};
  } else if (known_channel != nullptr) {
    j["channel"] = *known_channel;
  }
  if (p.type == wire::PacketType::publish) {
    j["message_id"] = p.body.message_id;
    if (detail::is_valid_utf8(p.body.message)) {
      j["message"] = std::string{as_string_view(p.body.message)};
    } else {
      j["message_hex"] = hex_encode(p.body.message);
    }
    if (p.version == WireVersion::v1) {
      j["nonce"] = p.body.message_id;
      j["inner_timestamp"] = p.body.inner_timestamp;
      j["layout"] = std::string{wire::to_string(p.body.v1_layout)};
    }
  }
  if (wire::is_ack_type(p.type)) j["acked_packet_id"] = p.body.acked_id;
  return j;
}

int run_decode(const DecodeArgs& args) {
  const auto config = args.config.load();
  if (!config) return kExitUsage;
  WireKeys keys;
  if (auto derived = wire_keys_of(*config, keys); !derived) {
    std::fprintf(stderr, "Error: %s\n", derived.error().c_str());
    return kExitFailure;
  }
  auto crypto = make_crypto(keys.encryption, keys.mac);
  wipe_secret(keys.bytes());
  if (!crypto) {
    std::fprintf(stderr, "Error: cannot set up %s: %s\n", std::string{crypto_backend_name()}.c_str(),
                 error_text(crypto.error()).c_str());
    return kExitFailure;
  }

  wire::DecodeOptions options;
  options.version = config->wire;
  options.epoch_offset = epoch_offset(config->epoch);
  options.timestamp_window_s = config->timestamp_window_s;
  options.check_timestamp = true;
  if (args.now) {
    options.wall = WallTime{Duration{static_cast<std::int64_t>(std::llround(*args.now * 1e6))}};
  } else {
    options.wall = WallTime{std::chrono::duration_cast<Duration>(
        std::chrono::system_clock::now().time_since_epoch())};
  }

  auto usage = [](const std::string& line) {
    std::fprintf(stderr, "Error: %s\nUse 'nomq decode --help' to see usage.\n", line.c_str());
    return kExitUsage;
  };
  if (args.pcap && !args.hex.empty()) return usage("give datagrams as HEX arguments or with --pcap, not both");
  std::vector<Input> inputs;
  if (args.pcap) {
    std::vector<CapturedDatagram> captured;
    std::size_t skipped = 0;
    if (std::string why = read_capture(*args.pcap, args.port, captured, skipped); !why.empty())
      return usage("--pcap " + why);
    if (skipped != 0)
      std::fprintf(stderr, "nomq decode: %zu UDP datagram(s) not decoded: fragmented, truncated by the "
                   "capture, or behind IPv6 extension headers\n", skipped);
    for (auto& c : captured) {
      inputs.push_back(Input{std::move(c.payload), c.captured, c.frame, c.from, c.to});
    }
  } else if (args.hex.empty()) {
    // Hex from stdin: datagrams separated by whitespace (one per line, as `tshark -T fields -e
    // data` prints them).
    std::string token;
    std::size_t n = 0;
    while (std::cin >> token) {
      ++n;
      if (const std::string why = hex_problem(token); !why.empty())
        return usage("stdin datagram " + std::to_string(n) + ": " + why);
      inputs.push_back(Input{hex_decode(token), std::nullopt, 0, {}, {}});
    }
    if (inputs.empty()) return usage("no datagram: give HEX arguments, hex on stdin, or --pcap FILE");
  } else {
    for (const auto& text : args.hex) inputs.push_back(Input{hex_decode(text), std::nullopt, 0, {}, {}});
  }
  const WallTime clock = options.wall;

  std::map<wire::ChannelId, std::string> subscribed;
  for (const auto& name : args.channels) subscribed.emplace(wire::channel_id(**crypto, name), name);

  // PUBLISH identities seen in this invocation: (session, v1 inner nonce / v2 message id).
  std::set<std::pair<std::uint32_t, std::uint32_t>> seen;
  int status = kExitOk;
  for (const Input& in : inputs) {
    const auto& datagram = in.bytes;
    // A capture is judged at the time it was captured, unless --now says otherwise.
    options.wall = in.captured && !args.now ? *in.captured : clock;
    std::vector<std::uint8_t> scratch(datagram.size());
    auto decoded = wire::decode(datagram, **crypto, options, scratch);
    Errc verdict = decoded.error().code();
    const std::string* known = nullptr;
    if (decoded) {
      const wire::Packet& p = *decoded;
      const auto it = subscribed.find(p.channel_id);
      if (it != subscribed.end()) known = &it->second;
      // v1 receivers drop every type on an unsubscribed channel (the original's check comes
      // before the type switch); v2 announcements and heartbeats concern every channel.
      const bool exempt = p.version == WireVersion::v2 &&
                          (p.type == wire::PacketType::subscribe ||
                           p.type == wire::PacketType::unsubscribe ||
                           p.type == wire::PacketType::heartbeat);
      if (!subscribed.empty() && known == nullptr && !exempt) {
        verdict = Errc::unknown_channel;
      } else if (p.type == wire::PacketType::publish &&
                 !seen.emplace(p.session_id, p.body.message_id).second) {
        verdict = Errc::replayed;
      }
    }
    if (verdict != Errc::ok) {
      std::fprintf(stderr, "rejected: %s%s\n", std::string{to_string(verdict)}.c_str(), in.where().c_str());
      status = kExitFailure;
      continue;
    }
    auto j = describe(*decoded, known);
    if (in.captured) {  // the capture's view: which frame, who sent it to whom
      j["frame"] = in.frame;
      j["from"] = to_string(in.from);
      j["to"] = to_string(in.to);
    }
    const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
  return status;
}

std::function<int()> setup_decode(CLI::App& app) {
  auto args = std::make_shared<DecodeArgs>();
  app.footer(
      "One JSON object per accepted datagram on stdout; 'rejected: <reason>' on stderr for the "
      "others (exit 1 if any). Exit codes: 0 all accepted, 1 some rejected, 2 usage or config "
      "error. See docs/cli.md.");
  args->config.add_to(app);
  app.add_option("--now", args->now,
                 "Receiver clock for the timestamp window, Unix seconds (fractions allowed; "
                 "default: the system clock)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber);
  app.add_option("-t,--channel", args->channels,
                 "Subscribed channel (repeatable): other channels are rejected as unknown_channel")
      ->type_name("CHANNEL")
      ->allow_extra_args(false);
  app.add_option("--pcap", args->pcap,
                 "Read the UDP datagrams of a capture (pcap or pcapng, '-': stdin), each judged at "
                 "its capture time unless --now is given")
      ->type_name("FILE");
  app.add_option("--port", args->port, "With --pcap: only datagrams from or to this UDP port")
      ->check(CLI::Range(1, 65535));
  app.add_option("hex", args->hex,
                 "Datagrams as hex (none: hex from stdin, whitespace-separated); PUBLISH replays "
                 "among them are rejected")
      ->type_name("HEX")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            const std::string why = hex_problem(s);
            if (why.empty()) return why;
            return why + " in '" + (s.size() > 24 ? s.substr(0, 21) + "..." : s) + "'";
          },
          ""));
  return [args] { return run_decode(*args); };
}

}  // namespace

NOMQ_CLI_COMMAND("decode", "Verify and decode datagrams (hex arguments, hex on stdin, or a pcap/pcapng capture)", setup_decode);

}  // namespace nomq::cli
