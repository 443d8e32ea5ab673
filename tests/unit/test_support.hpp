// Engine test support: a deterministic Crypto (real AES/HMAC from the build's backend, randomness
// from a seeded generator) and a tiny in-memory network that pumps engines into each other
// with a stepped clock. Deliberately minimal: the simulator (src/sim) is the full version.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nomq/engine.hpp"
#include "nomq/crypto_backend.hpp"
#include "sim/same_clock.hpp"
#include "sim/seeded_rng.hpp"

namespace nomq::engine_test {

using sim::wall_at;

using sim::SeededRng;

// The build's crypto backend with the fixed test keys (0x00.., 0xA0..); `key_salt` other than
// 0: other keys (a node that cannot talk to the default ones).
inline std::unique_ptr<CryptoRng> make_test_crypto(std::uint8_t key_salt = 0) {
  Key e{};
  Key h{};
  for (std::size_t i = 0; i < e.size(); ++i) {
    e[i] = static_cast<std::uint8_t>(i + key_salt);
    h[i] = static_cast<std::uint8_t>(0xA0 + i + key_salt);
  }
  auto r = make_crypto(e, h);
  return r ? std::move(r).value() : nullptr;
}

// What a test engine takes: the test keys' crypto and a seeded generator (sim::SeededRng, the
// one seeded generator of every test), so a run is a function of the seed.
struct TestCrypto {
  explicit TestCrypto(std::uint64_t seed, std::uint8_t key_salt = 0)
      : real(make_test_crypto(key_salt)), rng(seed) {}
  std::unique_ptr<CryptoRng> real;
  SeededRng rng;
  Crypto& crypto() noexcept { return *real; }
};

// Engine::create with a TestCrypto, failing the test (and returning an engine of the default
// config) if the config is refused.
inline Engine make_engine(const EngineConfig& cfg, TestCrypto& c, Instant now) {
  auto made = Engine::create(cfg, c.crypto(), c.rng, now);
  EXPECT_TRUE(made.ok()) << made.error();
  if (!made) return Engine::create(EngineConfig{}, c.crypto(), c.rng, now).value();
  return std::move(made).value();
}

// 2023-11-14T22:13:20Z: a realistic wall clock for wire timestamps.
inline constexpr Instant kT0{std::chrono::seconds(1'700'000'000)};

struct Received {
  std::string channel;
  std::string message;
  Qos qos{};
  bool retain = false;
  std::uint8_t priority = 0;
  std::uint32_t sender_session = 0;
  MessageId message_id = 0;
  AckToken ack_token = 0;
};

struct Report {
  MessageId message_id = 0;
  std::string channel;
  Errc reason = Errc::ok;
  std::vector<Recipient> recipients;
};

struct Node {
  Node(const EngineConfig& cfg, std::uint64_t seed, Endpoint ep, Instant now,
       std::uint8_t key_salt = 0)
      : crypto(seed, key_salt), engine(make_engine(cfg, crypto, now)), endpoint(ep) {}
  TestCrypto crypto;
  Engine engine;
  Endpoint endpoint;
  bool up = true;
  std::vector<Received> received;
  std::vector<Report> reports;
  std::vector<PeerEvent> peers;

  void drain_events() {
    while (auto ev = engine.poll_event()) {
      if (auto* m = std::get_if<MessageEvent>(&*ev)) {
        received.push_back({std::string(m->channel), std::string(as_string_view(m->message)),
                            m->qos, m->retain, m->priority, m->sender_session, m->message_id,
                            m->ack_token});
      } else if (auto* r = std::get_if<DeliveryReport>(&*ev)) {
        reports.push_back({r->message_id, std::string(r->channel), r->reason,
                           {r->recipients.begin(), r->recipients.end()}});
      } else if (auto* p = std::get_if<PeerEvent>(&*ev)) {
        peers.push_back(*p);
      }
    }
  }
};

struct Datagram {
  std::size_t from = 0;  // node index
  bool to_group = false;
  Endpoint to;
  std::vector<std::uint8_t> bytes;
  std::uint64_t serial = 0;  // 1-based count of datagrams sent on this net
  wire::PacketType type{};
  bool lost = false;
  Instant at{};
};

// Pumps datagrams between nodes instantly (no delay) until quiet. `filter` may drop a datagram
// (return false); `duplicate` may deliver one twice.
class TestNet {
 public:
  explicit TestNet(Instant start = kT0) : now(start) {}

  Node& add(const EngineConfig& cfg, std::uint64_t seed, std::uint8_t key_salt = 0) {
    const auto ep = Endpoint::v4(127, 0, 0, 1, static_cast<std::uint16_t>(40000 + nodes.size()));
    nodes.push_back(std::make_unique<Node>(cfg, seed, ep, now, key_salt));
    return *nodes.back();
  }

  void pump() {
    for (int round = 0; round < 10000; ++round) {
      bool any = false;
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        Node& n = *nodes[i];
        if (!n.up) continue;
        while (auto tx = n.engine.poll_transmit(now, wall_at(now), buffer_)) {
          any = true;
          Datagram d{i, tx->to_group, tx->to, {buffer_.begin(), buffer_.begin() + tx->size},
                     ++serial_, static_cast<wire::PacketType>(buffer_[3])};
          d.at = now;
          if (filter && !filter(d)) {
            d.lost = true;
            log.push_back(d);
            continue;
          }
          log.push_back(d);
          deliver(d);
          if (duplicate && duplicate(d)) deliver(d);
        }
      }
      for (auto& n : nodes) n->drain_events();
      if (!any) return;
    }
    ADD_FAILURE() << "network never went quiet";
  }

  // Steps the clock in `step` increments up to `d` later, running due timers and pumping.
  void run_for(Duration d, Duration step = std::chrono::milliseconds(10)) {
    const Instant end = now + d;
    pump();
    while (now < end) {
      now = std::min(end, now + step);
      for (auto& n : nodes) {
        if (!n->up) continue;
        if (auto dl = n->engine.next_deadline(); dl && *dl <= now) n->engine.handle_timeout(now);
      }
      pump();
    }
  }

  std::size_t index_of(const Endpoint& ep) const {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i]->endpoint == ep) return i;
    }
    return nodes.size();
  }

  Instant now;
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<Datagram> log;
  std::function<bool(const Datagram&)> filter;
  std::function<bool(const Datagram&)> duplicate;

 private:
  void deliver(const Datagram& d) {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      Node& n = *nodes[i];
      if (!n.up) continue;
      // Group traffic reaches every node, the sender included (loopback); unicast one node.
      if (d.to_group || n.endpoint == d.to) {
        n.engine.handle_datagram(nodes[d.from]->endpoint, d.bytes, now, wall_at(now));
      }
    }
  }
  std::array<std::uint8_t, wire::kMaxDatagram> buffer_{};
  std::uint64_t serial_ = 0;
};

inline Bytes bytes_of(std::string_view s) { return as_bytes(s); }

}  // namespace nomq::engine_test
