// The review findings of issue 13 (docs/security.md §6) reproduced on engines over the
// in-memory TestNet (deterministic: seeded randomness, stepped clock). Each test states the
// reviewer's scenario, what it measures, and what the figure was before the fix.
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "nomq/wire.hpp"
#include "unit/test_support.hpp"

namespace nomq::engine_test {
namespace {

using namespace std::chrono_literals;

std::size_t delivered_on(const Node& n, std::string_view channel) {
  std::size_t k = 0;
  for (const auto& r : n.received) k += r.channel == channel ? 1 : 0;
  return k;
}

// A HEARTBEAT made by a key holder (the test nodes share one key pair) under `session` with
// sequence number `seq`, stamped with `net`'s clock.
std::vector<std::uint8_t> forged_heartbeat(TestCrypto& key_holder, std::uint32_t session,
                                           std::uint32_t seq, const TestNet& net) {
  wire::Packet p;
  p.type = wire::PacketType::heartbeat;
  p.packet_id = seq;
  p.session_id = session;
  p.ttl = 60;
  key_holder.rng.random_bytes(p.iv);
  p.timestamp = wire_seconds(wall_at(net.now), 0);
  std::array<std::uint8_t, wire::kMaxDatagram> out{};
  const auto n = wire::encode(p, key_holder.crypto(), out);
  EXPECT_TRUE(n.ok()) << n.error();
  return {out.begin(), out.begin() + (n ? *n : 0)};
}

// M2, the reviewer's scenario: a key holder sends ONE datagram under the victim's session id
// with sequence 0xFFFFFFF0 to the group. Every receiver's replay window for that session jumps
// there, so the victim's real traffic (small sequence numbers) is replay_window_old until its
// session is renewed (24 h by default). Measured: QoS 1 messages the victim publishes after
// the forgery that the subscriber delivers. Before the fix: 0 of 10 (the victim saw the
// forgery only as own_packet). Now the victim recognises a sequence number it never sent,
// renews its session at once (counted, impersonation event), and 10 of 10 arrive.
TEST(SecurityFindings, M2OneForgedDatagramNoLongerSilencesANode) {
  TestNet net;
  EngineConfig cfg;
  Node& victim = net.add(cfg, 11);
  Node& subscriber = net.add(cfg, 12);
  Node& attacker = net.add(cfg, 13);
  ASSERT_TRUE(subscriber.engine.subscribe("valve", 0, net.now));
  net.run_for(1s);
  PublishOptions q1;
  q1.qos = Qos::at_least_once;
  ASSERT_TRUE(victim.engine.publish("valve", bytes_of("control"), q1, net.now));
  net.run_for(1s);
  ASSERT_EQ(delivered_on(subscriber, "valve"), 1u) << "the honest control must get through";

  const std::uint32_t old_session = victim.engine.session_id();
  const auto forged = forged_heartbeat(attacker.crypto, old_session, 0xFFFFFFF0u, net);
  for (auto* n : {&victim, &subscriber}) {  // group traffic: every node hears it
    n->engine.handle_datagram(attacker.endpoint, forged, net.now, wall_at(net.now));
  }
  net.pump();
  EXPECT_EQ(victim.engine.stats().impersonations_detected, 1u);
  EXPECT_NE(victim.engine.session_id(), old_session);
  bool alarm = false;
  for (const auto& e : victim.peers) alarm = alarm || e.kind == PeerEvent::Kind::impersonation;
  EXPECT_TRUE(alarm);

  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(victim.engine.publish("valve", bytes_of(std::string("m").append(std::to_string(i))), q1, net.now));
  }
  net.run_for(2s);
  const std::size_t after = delivered_on(subscriber, "valve") - 1;
  EXPECT_EQ(after, 10u) << "honest QoS 1 messages delivered after the forgery";
  RecordProperty("m2_delivered_after_forgery", static_cast<int>(after));
}

// The same forgery sent only to the subscriber (unicast: the victim never hears it). The
// victim cannot notice; the subscriber's window for the old session is poisoned, so the
// victim's traffic stays out until the victim's QoS 1 retransmissions give up and the session
// is renewed. This documents the limit of the M2 fix (docs/security.md): measured here, the
// messages delivered within 2 s are 0 of 10; a receiver-side defence needs per-node
// signatures (sender authentication), not in this change.
TEST(SecurityFindings, M2ForgeryTheVictimDoesNotHearIsNotDetected) {
  TestNet net;
  EngineConfig cfg;
  Node& victim = net.add(cfg, 21);
  Node& subscriber = net.add(cfg, 22);
  Node& attacker = net.add(cfg, 23);
  ASSERT_TRUE(subscriber.engine.subscribe("valve", 0, net.now));
  net.run_for(1s);
  const auto forged = forged_heartbeat(attacker.crypto, victim.engine.session_id(), 0xFFFFFFF0u, net);
  subscriber.engine.handle_datagram(attacker.endpoint, forged, net.now, wall_at(net.now));
  PublishOptions q1;
  q1.qos = Qos::at_least_once;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(victim.engine.publish("valve", bytes_of(std::string("m").append(std::to_string(i))), q1, net.now));
  }
  net.run_for(2s);
  EXPECT_EQ(victim.engine.stats().impersonations_detected, 0u);
  EXPECT_EQ(delivered_on(subscriber, "valve"), 0u);
  EXPECT_GT(subscriber.engine.stats().dropped_by(Errc::replay_window_old), 0u);
}

}  // namespace
}  // namespace nomq::engine_test
