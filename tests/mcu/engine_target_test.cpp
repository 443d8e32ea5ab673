// On the target, with the mbedTLS backend: three engines exchange QoS 0, 1 and 2 publishes over
// an in-memory network that loses 20 % of datagrams and duplicates 5 % (a fixed-seed LCG, so
// every run is the same). Checked: every QoS 1/2 publish is reported delivered to both
// subscribers, each subscriber gets every QoS 1 message at least once and every QoS 2 message
// exactly once, nothing is delivered that was not published. The engines keep their tables on
// picolibc's heap for now (Engine's constructor allocates; caller-provided memory is issue 8).
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <variant>

#include "mcu/target_crypto.hpp"
#include "nomq/engine.hpp"
#include "nomq/wire.hpp"
#include "sim/same_clock.hpp"

namespace nomq {
namespace {

constexpr std::size_t kNodes = 3;
constexpr std::uint32_t kMessages = 60;  // per QoS level
constexpr char kChannel[] = "plant/line1/temp";

EngineConfig small_config() {
  EngineConfig c;
  c.limits.max_pending = 16;
  c.limits.max_channels = 4;
  c.limits.max_message_size = 64;
  c.limits.max_retained_per_channel = 1;
  c.limits.max_retained_channels = 2;
  c.limits.max_peers = 8;
  c.limits.max_peer_subscriptions = 16;
  c.limits.max_senders = 8;
  c.limits.max_inbound_qos = 64;
  c.limits.max_inbox = 64;
  c.limits.max_outbox = 128;
  c.limits.max_queued_messages = 16;
  c.replay_window = 256;
  return c;
}

struct Lcg {
  std::uint32_t s;
  std::uint32_t next() {
    s = s * 1664525u + 1013904223u;
    return s >> 8;
  }
  bool percent(std::uint32_t p) { return next() % 100 < p; }
};

struct TargetNode {
  std::unique_ptr<MbedTlsCrypto> crypto;
  std::unique_ptr<Engine> engine;
  Endpoint endpoint;
  // received[qos][message number]: how many times delivered
  std::array<std::array<std::uint8_t, kMessages>, 3> received{};
  std::uint32_t foreign = 0;  // deliveries that match no publish
  std::uint32_t reports_ok = 0;
  std::uint32_t reports_failed = 0;
};

std::array<std::uint8_t, wire::kMaxDatagram> g_buffer;

struct Net {
  std::array<TargetNode, kNodes> nodes;
  Instant now{std::chrono::seconds(1'700'000'000)};
  Lcg rng{20251205u};
  std::uint32_t sent = 0, lost = 0, duplicated = 0;

  void deliver(std::size_t from, const Transmit& tx) {
    for (std::size_t i = 0; i < kNodes; ++i) {
      if (tx.to_group || nodes[i].endpoint == tx.to) {
        nodes[i].engine->handle_datagram(nodes[from].endpoint, Bytes{g_buffer.data(), tx.size},
                                         now, sim::wall_at(now));
      }
    }
  }

  void drain(TargetNode& n) {
    while (auto ev = n.engine->poll_event()) {
      if (auto* m = std::get_if<MessageEvent>(&*ev)) {
        const auto q = static_cast<std::size_t>(m->qos);
        std::uint32_t k = 0;
        if (m->message.size() == 4 && q < 3) k = load_be32(m->message.data());
        if (m->message.size() != 4 || q >= 3 || k >= kMessages) {
          ++n.foreign;
        } else if (n.received[q][k] < 255) {
          ++n.received[q][k];
        }
      } else if (auto* r = std::get_if<DeliveryReport>(&*ev)) {
        ++(r->all_acknowledged() ? n.reports_ok : n.reports_failed);
      }
    }
  }

  void pump() {
    for (int round = 0; round < 1000; ++round) {
      bool any = false;
      for (std::size_t i = 0; i < kNodes; ++i) {
        while (auto tx = nodes[i].engine->poll_transmit(now, sim::wall_at(now), g_buffer)) {
          any = true;
          ++sent;
          if (rng.percent(20)) {
            ++lost;
            continue;
          }
          deliver(i, *tx);
          if (rng.percent(5)) {
            ++duplicated;
            deliver(i, *tx);
          }
        }
      }
      for (auto& n : nodes) drain(n);
      if (!any) return;
    }
  }

  void run_ms(int ms) {
    for (int t = 0; t < ms; t += 10) {
      now = now + std::chrono::milliseconds(10);
      for (auto& n : nodes) {
        if (auto dl = n.engine->next_deadline(); dl && *dl <= now) n.engine->handle_timeout(now);
      }
      pump();
    }
  }
};

TEST(TargetEngine, ThreeEnginesUnderLossDeliverQos1AtLeastOnceAndQos2ExactlyOnce) {
  static Net net;  // large: keep it off the stack
  const Key enc{1, 2, 3};
  const Key mac{4, 5, 6};
  for (std::size_t i = 0; i < kNodes; ++i) {
    TargetNode& n = net.nodes[i];
    n.crypto = mcu_test::make_target_crypto(enc, mac);
    ASSERT_TRUE(n.crypto != nullptr);
    n.endpoint = Endpoint::v4(10, 0, 0, static_cast<std::uint8_t>(i + 1), 4000);
    n.engine = std::make_unique<Engine>(
        Engine::create(small_config(), *n.crypto, *n.crypto, net.now).value());
  }
  std::printf("engine state_bytes at the small test limits: %u\n",
              static_cast<unsigned>(net.nodes[0].engine->state_bytes()));
  for (std::size_t i : {std::size_t{0}, std::size_t{2}}) {
    ASSERT_TRUE(net.nodes[i].engine->subscribe(kChannel, 0, net.now).ok());
  }
  net.run_ms(3000);  // discovery

  TargetNode& pub = net.nodes[1];
  for (std::uint32_t k = 0; k < kMessages; ++k) {
    for (int q = 0; q < 3; ++q) {
      std::array<std::uint8_t, 4> body{};
      store_be32(body.data(), k);
      PublishOptions o;
      o.qos = static_cast<Qos>(q);
      const auto id = pub.engine->publish(kChannel, body, o, net.now);
      ASSERT_TRUE(id.ok()) << "publish " << k << " qos " << q << ": " << id.error();
    }
    net.run_ms(200);
  }
  net.run_ms(120000);  // retransmissions settle

  std::printf("datagrams sent %u, lost %u, duplicated %u\n", static_cast<unsigned>(net.sent),
              static_cast<unsigned>(net.lost), static_cast<unsigned>(net.duplicated));
  EXPECT_EQ(pub.reports_ok, 2 * kMessages);
  EXPECT_EQ(pub.reports_failed, 0u);
  EXPECT_EQ(pub.engine->pending_count(), 0u);
  for (std::size_t i : {std::size_t{0}, std::size_t{2}}) {
    const TargetNode& n = net.nodes[i];
    EXPECT_EQ(n.foreign, 0u);
    std::uint32_t qos0 = 0;
    for (std::uint32_t k = 0; k < kMessages; ++k) {
      qos0 += n.received[0][k];
      EXPECT_LE(n.received[0][k], 2) << "node " << i << " qos 0 message " << k;
      EXPECT_GE(n.received[1][k], 1) << "node " << i << " qos 1 message " << k;
      EXPECT_EQ(n.received[2][k], 1) << "node " << i << " qos 2 message " << k;
    }
    std::printf("node %u: QoS 0 delivered %u of %u\n", static_cast<unsigned>(i),
                static_cast<unsigned>(qos0), static_cast<unsigned>(kMessages));
  }
  EXPECT_EQ(net.nodes[1].foreign, 0u);
}

}  // namespace
}  // namespace nomq
