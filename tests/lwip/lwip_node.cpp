// nomq_lwip_node: a NoMQ node whose IP stack is lwIP, not Linux: lwIP's unix port drives a TAP
// device (tapif), so every datagram this program exchanges is built and parsed by lwIP, as on an
// ESP32. The node is the reference device loop (nomq/device_loop.hpp) over the lwIP platform
// (nomq/lwip_platform.hpp), with its engine's state in a static buffer (Engine::state_bytes_for)
// and its crypto on mbedTLS seeded from the platform's entropy (OpenSSL's make_crypto() when
// the build has no mbedTLS). The namespace test (lwip_netns_test.cpp) runs it.
//
//   nomq_lwip_node -c CONFIG --tap DEV --address A.B.C.D/PREFIX [-t CHANNEL]... [-p CHANNEL]
//                  [--to A.B.C.D:PORT] [--profile small|seed|file]
//
// -t subscribes (repeatable); every message received is printed on stdout as
// "<qos> <retain 0|1> <message>". -p names the channel for stdin: each line "<qos> <retain 0|1>
// <message>" is published there (to --to instead of the group when given: wire v1 QoS 1/2 needs
// a destination). --profile takes the engine limits from EngineConfig::small_profile() or
// seed_profile() instead of the file (default: the file's). Stdin's end stops the node once every publish has its delivery report, the
// discovery tail is over and no QoS 2 handshake is owed (at most 20 s). Stderr: a "ready" line
// once lwIP is up, the engine created and the subscriptions sent; one line per delivery report;
// a summary at the end. Exit 0 when every QoS 1/2 publish was acknowledged by every recipient,
// 1 otherwise, 2 on a usage or start-up error.
#include <sys/random.h>

// lwipopts.h (sys_lock_tcpip_core, ...) and the unix port's tapif.h declare C functions
// without extern "C" guards.
extern "C" {
#include <lwip/ip4_addr.h>
#include <lwip/netif.h>
#include <lwip/tcpip.h>
#include <netif/tapif.h>
}

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <future>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nomq/config.hpp"
#include "nomq/crypto_backend.hpp"
#include "nomq/device_loop.hpp"
#include "nomq/endpoint_io.hpp"
#include "nomq/lwip_platform.hpp"
#ifdef NOMQ_LWIP_NODE_MBEDTLS
#include "nomq/mbedtls_crypto.hpp"
#endif

namespace {

using namespace std::chrono_literals;
constexpr const char* kName = "nomq_lwip_node";

// The engine's state, as on a device: one static block, no heap (Engine::create with a span).
// 512 KiB holds the small and the seed profiles (about 27 and 98 KB on x86-64); a config at the
// engine's default limits needs more and is refused with the size it needs.
alignas(nomq::Engine::kStateAlign) std::byte g_state[512 * 1024];

// --- the board: Linux clocks and getrandom() stand in for esp_timer, SNTP time and the TRNG.
nomq::Instant board_monotonic(void*) noexcept {
  return nomq::Instant{std::chrono::duration_cast<nomq::Duration>(
      std::chrono::steady_clock::now().time_since_epoch())};
}
nomq::WallTime board_wall(void*) noexcept {
  return nomq::WallTime{std::chrono::duration_cast<nomq::Duration>(
      std::chrono::system_clock::now().time_since_epoch())};
}
bool board_entropy(void*, nomq::MutableBytes out) noexcept {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// lwIP up: its thread (tcpip_init), then the TAP netif with a static IPv4 address. The TAP
// device exists already (the test creates it in its namespace): PRECONFIGURED_TAPIF tells the
// unix port's tapif to attach to it instead of creating tap0 and running ifconfig.
bool bring_up_lwip(const std::string& tap, const std::string& address, netif& nif) {
  const auto slash = address.find('/');
  const std::string ip = address.substr(0, slash);
  const int prefix = slash == std::string::npos ? 24 : std::atoi(address.c_str() + slash + 1);
  ip4_addr_t addr, mask, gw;
  if (!ip4addr_aton(ip.c_str(), &addr) || prefix < 1 || prefix > 30) {
    std::fprintf(stderr, "%s: --address: need A.B.C.D/PREFIX, got '%s'\n", kName, address.c_str());
    return false;
  }
  ip4_addr_set_u32(&mask, lwip_htonl(0xffffffffu << (32 - prefix)));
  ip4_addr_set_zero(&gw);
  ::setenv("PRECONFIGURED_TAPIF", tap.c_str(), 1);

  std::promise<void> started;
  tcpip_init([](void* arg) { static_cast<std::promise<void>*>(arg)->set_value(); }, &started);
  started.get_future().wait();

  LOCK_TCPIP_CORE();
  const bool added = netif_add(&nif, &addr, &mask, &gw, nullptr, tapif_init, tcpip_input) != nullptr;
  if (added) {
    netif_set_default(&nif);
    netif_set_up(&nif);
  }
  UNLOCK_TCPIP_CORE();
  if (!added) std::fprintf(stderr, "%s: lwIP could not add the TAP netif '%s'\n", kName, tap.c_str());
  return added;
}

struct App {
  std::uint64_t published = 0, reports = 0, acknowledged = 0, failed = 0, received = 0;
};

void on_event(void* context, const nomq::Event& event) {
  auto& app = *static_cast<App*>(context);
  if (const auto* m = std::get_if<nomq::MessageEvent>(&event)) {
    ++app.received;
    std::printf("%d %d %.*s\n", static_cast<int>(m->qos), m->retain ? 1 : 0,
                static_cast<int>(m->message.size()), reinterpret_cast<const char*>(m->message.data()));
    std::fflush(stdout);
  } else if (const auto* r = std::get_if<nomq::DeliveryReport>(&event)) {
    ++app.reports;
    std::size_t acked = 0;
    for (const auto& rc : r->recipients) acked += rc.state == nomq::RecipientState::acknowledged;
    if (r->all_acknowledged())
      ++app.acknowledged;
    else
      ++app.failed;
    std::fprintf(stderr, "%s: report %u qos %d %s: %zu/%zu acknowledged\n", kName, r->message_id,
                 static_cast<int>(r->qos), std::string(nomq::to_string(r->reason)).c_str(), acked,
                 r->recipients.size());
  } else if (const auto* p = std::get_if<nomq::PeerEvent>(&event)) {
    std::fprintf(stderr, "%s: peer %s %s session %u\n", kName,
                 std::string(nomq::to_string(p->kind)).c_str(), nomq::to_string(p->endpoint).c_str(),
                 p->session_id);
  }
}

// Stdin lines, read by a thread of their own (the loop thread never blocks on stdin).
struct Input {
  std::mutex mutex;
  std::deque<std::string> lines;
  std::atomic<bool> eof{false};
};

int usage(const char* why) {
  std::fprintf(stderr,
               "%s: %s\nusage: %s -c CONFIG --tap DEV --address A.B.C.D/PREFIX [-t CHANNEL]... "
               "[-p CHANNEL] [--to A.B.C.D:PORT] [--profile small|seed|file]\n",
               kName, why, kName);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, tap, address, pub_channel, to, profile = "file";
  std::vector<std::string> subscriptions;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage(("missing value after " + a).c_str());
    const std::string v = argv[++i];
    if (a == "-c") config_path = v;
    else if (a == "--tap") tap = v;
    else if (a == "--address") address = v;
    else if (a == "-t") subscriptions.push_back(v);
    else if (a == "-p") pub_channel = v;
    else if (a == "--to") to = v;
    else if (a == "--profile") profile = v;
    else return usage(("unknown option " + a).c_str());
  }
  if (config_path.empty() || tap.empty() || address.empty()) return usage("-c, --tap and --address are required");

  auto loaded = nomq::load_config(config_path, nomq::LoadOptions{true});
  if (!loaded) {
    std::fprintf(stderr, "%s: %s\n", kName, loaded.error().c_str());
    return 2;
  }
  const nomq::NodeConfig& node = loaded->config;
  if (node.use_ipv6) return usage("this test program brings lwIP up with IPv4 only");
  // The file gives wire, keys, group, timers and its limits; --profile replaces the limits by a
  // device profile's (a config file has no key for the byte budgets that make the small one).
  nomq::EngineConfig engine_config = nomq::to_engine_config(node);
  if (profile == "small" || profile == "seed") {
    const nomq::EngineConfig p = profile == "small" ? nomq::EngineConfig::small_profile()
                                                    : nomq::EngineConfig::seed_profile();
    engine_config.limits = p.limits;
    engine_config.replay_window = p.replay_window;
    engine_config.v1_nonce_cache = p.v1_nonce_cache;
  } else if (profile != "file") {
    return usage(("--profile: small, seed or file, got " + profile).c_str());
  }
  auto group = nomq::parse_endpoint(node.group, node.port);
  if (!group) return usage(("the config's group is not a numeric address: " + node.group).c_str());
  std::optional<nomq::Endpoint> destination;
  if (!to.empty()) {
    const auto colon = to.rfind(':');
    destination = nomq::parse_endpoint(to.substr(0, colon),
                                       static_cast<std::uint16_t>(std::atoi(to.c_str() + colon + 1)));
    if (colon == std::string::npos || !destination) return usage(("--to: need A.B.C.D:PORT, got " + to).c_str());
  }
  const std::size_t state_bytes = nomq::Engine::state_bytes_for(engine_config);
  if (state_bytes > sizeof g_state) {
    std::fprintf(stderr, "%s: the config's limits need %zu bytes of engine state, the static block holds %zu\n",
                 kName, state_bytes, sizeof g_state);
    return 2;
  }

  static netif nif;
  if (!bring_up_lwip(tap, address, nif)) return 2;

  nomq::LwipPlatform platform(nomq::LwipBoard{&board_monotonic, &board_wall, &board_entropy, nullptr});
  nomq::WireKeys keys;
  if (auto k = nomq::wire_keys_of(node, keys); !k) {
    std::fprintf(stderr, "%s: %s\n", kName, k.error().c_str());
    return 2;
  }
#ifdef NOMQ_LWIP_NODE_MBEDTLS
  const char* backend = "mbedTLS (DRBG seeded from the platform's entropy)";
  auto crypto = nomq::MbedTlsCrypto::create(keys.encryption, keys.mac,
                                            nomq::EntropySource{&nomq::platform_entropy_poll, &platform});
#else
  const char* backend = "OpenSSL (make_crypto)";
  auto crypto = nomq::make_crypto(keys.encryption, keys.mac);
#endif
  nomq::wipe_secret(keys.bytes());
  if (!crypto) {
    std::fprintf(stderr, "%s: %s\n", kName, crypto.error().c_str());
    return 2;
  }

  nomq::Endpoint local = nomq::Endpoint::v4(0, 0, 0, 0, node.port);
  if (auto r = platform.udp_open(local); !r) {
    std::fprintf(stderr, "%s: %s\n", kName, r.error().c_str());
    return 2;
  }
  if ((group->address[0] & 0xf0) == 0xe0) {
    if (auto r = platform.udp_join(*group); !r) {
      std::fprintf(stderr, "%s: %s\n", kName, r.error().c_str());
      return 2;
    }
  }

  auto engine = nomq::Engine::create(engine_config, **crypto, **crypto, platform.monotonic_now(),
                                     std::span<std::byte>{g_state, state_bytes});
  if (!engine) {
    std::fprintf(stderr, "%s: %s\n", kName, engine.error().c_str());
    return 2;
  }
  App app;
  nomq::DeviceLoop loop(*engine, platform, *group, &on_event, &app);
  for (const auto& channel : subscriptions) {
    if (auto r = engine->subscribe(channel, 0, platform.monotonic_now()); !r) {
      std::fprintf(stderr, "%s: subscribe %s: %s\n", kName, channel.c_str(), r.error().c_str());
      return 2;
    }
  }
  loop.flush();
  std::fprintf(stderr, "%s: ready: lwIP %s on %s, wire %s, group %s, engine state %zu bytes (static), crypto %s\n",
               kName, address.c_str(), tap.c_str(), node.wire == nomq::WireVersion::v1 ? "v1" : "v2",
               nomq::to_string(*group).c_str(), state_bytes, backend);

  Input input;
  std::thread reader([&input] {
    std::string line;
    while (std::getline(std::cin, line)) {
      std::lock_guard lock(input.mutex);
      input.lines.push_back(line);
    }
    input.eof = true;
  });
  reader.detach();  // blocked in a read at exit is fine: the process ends

  std::optional<nomq::Instant> stop_by;
  for (;;) {
    if (auto r = loop.run_once(20ms); !r) {
      std::fprintf(stderr, "%s: %s\n", kName, r.error().c_str());
      return 2;
    }
    // Publish what stdin gave, as far as the engine takes it (a device's application work).
    for (;;) {
      std::string line;
      {
        std::lock_guard lock(input.mutex);
        if (input.lines.empty()) break;
        line = input.lines.front();
      }
      if (pub_channel.empty() || line.size() < 4 || line[1] != ' ' || line[3] != ' ' || line[0] < '0' ||
          line[0] > '2') {
        std::fprintf(stderr, "%s: stdin: need '<qos> <retain> <message>' and -p, got '%s'\n", kName, line.c_str());
        return 2;
      }
      nomq::PublishOptions options;
      options.qos = static_cast<nomq::Qos>(line[0] - '0');
      options.retain = line[2] == '1';
      if (destination && options.qos != nomq::Qos::at_most_once) options.destination = destination;
      const std::string message = line.substr(4);
      auto id = engine->publish(pub_channel,
                                nomq::Bytes{reinterpret_cast<const std::uint8_t*>(message.data()), message.size()},
                                options, platform.monotonic_now());
      if (!id && (id.error() == nomq::Errc::too_many_pending || id.error() == nomq::Errc::queue_full)) {
        break;  // the engine is full: the next turns send, take reports and free slots
      }
      if (!id) {
        std::fprintf(stderr, "%s: publish: %s\n", kName, id.error().c_str());
        return 2;
      }
      ++app.published;
      {
        std::lock_guard lock(input.mutex);
        input.lines.pop_front();
      }
      loop.flush();
    }
    bool drained;
    {
      std::lock_guard lock(input.mutex);
      drained = input.eof && input.lines.empty();
    }
    if (!drained) continue;
    const nomq::Instant now = platform.monotonic_now();
    if (!stop_by) stop_by = now + 20s;
    const bool done = engine->pending_count() == 0 && engine->tail_count() == 0 &&
                      engine->inbound_qos2_open() == 0;
    if (done || now >= *stop_by) break;
  }
  engine->close(platform.monotonic_now());
  loop.flush();
  const auto& ls = loop.stats();
  std::fprintf(stderr,
               "%s: done: published %llu, reports %llu (acknowledged %llu, not %llu), received %llu; "
               "datagrams sent %llu received %llu send errors %llu; dropped %llu; qos2 open %zu\n",
               kName, static_cast<unsigned long long>(app.published), static_cast<unsigned long long>(app.reports),
               static_cast<unsigned long long>(app.acknowledged), static_cast<unsigned long long>(app.failed),
               static_cast<unsigned long long>(app.received), static_cast<unsigned long long>(ls.sent),
               static_cast<unsigned long long>(ls.received), static_cast<unsigned long long>(ls.send_errors),
               static_cast<unsigned long long>(engine->stats().dropped_total), engine->inbound_qos2_open());
  std::string drops;  // the engine's drop counters that are not zero, by reason
  for (std::size_t e = 0; e < nomq::kErrcCount; ++e)
    if (const auto n = engine->stats().dropped[e])
      drops.append(" ").append(nomq::to_string(static_cast<nomq::Errc>(e))).append("=").append(std::to_string(n));
  std::fprintf(stderr, "%s: dropped by reason:%s\n", kName, drops.empty() ? " none" : drops.c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(app.failed == 0 ? 0 : 1);  // lwIP's threads (tcpip, tapif) never return
}
