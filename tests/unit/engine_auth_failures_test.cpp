// Datagrams that fail authentication are counted by source host, raise a rate-limited
// PeerEvent auth_failed and (v2) draw one authenticated HEARTBEAT back, so that a node with
// other keys hears something it cannot authenticate too (docs/engine.md §13; issue 15 §1).
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace nomq::engine_test {
namespace {

using namespace std::chrono_literals;
using wire::PacketType;

std::vector<PeerEvent> auth_events(const Node& n) {
  std::vector<PeerEvent> out;
  for (const PeerEvent& p : n.peers)
    if (p.kind == PeerEvent::Kind::auth_failed) out.push_back(p);
  return out;
}

TEST(EngineAuthFailures, BothSidesOfAKeyMismatchCountTheOtherByHost) {
  TestNet net;
  Node& sub = net.add(EngineConfig{}, 1);
  ASSERT_TRUE(sub.engine.subscribe("plant/temp", 0, net.now));
  net.run_for(3s, 10ms);  // the subscriber's start-up is over
  EXPECT_TRUE(auth_events(sub).empty());
  Node& pub = net.add(EngineConfig{}, 2, /*key_salt=*/7);  // other keys
  PublishOptions o;
  o.qos = Qos::at_least_once;
  o.wait_for_subscribers = 2s;
  const Instant t0 = net.now;
  ASSERT_TRUE(pub.engine.publish("plant/temp", bytes_of("21.5"), o, t0));
  net.run_for(3s, 10ms);

  // The subscriber could authenticate none of the publisher's datagrams (its solicitations):
  // one event, at the first, naming the publisher's endpoint.
  const auto at_sub = auth_events(sub);
  ASSERT_EQ(at_sub.size(), 1u);
  EXPECT_EQ(at_sub[0].endpoint, pub.endpoint);
  EXPECT_EQ(at_sub[0].session_id, 0u);
  EXPECT_EQ(at_sub[0].failures, 1u);
  const auto table = sub.engine.auth_failures();
  ASSERT_EQ(table.size(), 1u);
  Endpoint host = pub.endpoint;
  host.port = 0;
  EXPECT_EQ(table[0].address, host);
  EXPECT_EQ(table[0].datagrams, sub.engine.stats().dropped_by(Errc::bad_mac));
  EXPECT_GE(table[0].datagrams, 8u);  // the start-up rounds at least
  EXPECT_EQ(table[0].first, t0);

  // The publisher heard the subscriber's answer to the first one: the HEARTBEAT unicast back.
  const auto at_pub = auth_events(pub);
  ASSERT_EQ(at_pub.size(), 1u);
  EXPECT_EQ(at_pub[0].endpoint, sub.endpoint);
  ASSERT_EQ(pub.engine.auth_failures().size(), 1u);
  std::size_t probes = 0;
  for (const Datagram& d : net.log) {
    if (d.from == 0 && d.type == PacketType::heartbeat && !d.to_group) {
      EXPECT_EQ(d.to, pub.endpoint);
      ++probes;
    }
  }
  EXPECT_EQ(probes, 1u);  // one per event, not one per failed datagram
  ASSERT_EQ(pub.reports.size(), 1u);
  EXPECT_EQ(pub.reports[0].reason, Errc::no_subscribers);
  EXPECT_TRUE(sub.received.empty());
}

TEST(EngineAuthFailures, EventsAreRateLimitedPerHostAndCarryTheCount) {
  EngineConfig cfg;
  cfg.timers.auth_failure_report_interval = 10s;
  TestCrypto mine(1);
  TestCrypto theirs(2, 9);
  Engine node = make_engine(cfg, mine, kT0);
  Engine other = make_engine(cfg, theirs, kT0);
  std::array<std::uint8_t, wire::kMaxDatagram> buf{};
  const Endpoint from = Endpoint::v4(127, 0, 0, 1, 41000);
  auto feed = [&](Instant now) {
    ASSERT_TRUE(other.publish("x", bytes_of("m"), PublishOptions{}, now));
    auto tx = other.poll_transmit(now, wall_at(now), buf);
    while (tx && static_cast<PacketType>(buf[3]) != PacketType::publish) {
      tx = other.poll_transmit(now, wall_at(now), buf);
    }
    ASSERT_TRUE(tx);
    node.handle_datagram(from, Bytes{buf.data(), tx->size}, now, wall_at(now));
  };
  auto events = [&] {
    std::vector<PeerEvent> out;
    while (auto ev = node.poll_event()) {
      if (auto* p = std::get_if<PeerEvent>(&*ev); p && p->kind == PeerEvent::Kind::auth_failed) {
        out.push_back(*p);
      }
    }
    return out;
  };
  Instant t = kT0;
  for (int i = 0; i < 50; ++i, t += 100ms) feed(t);  // 5 s of failures: one event
  auto e = events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].failures, 1u);
  for (int i = 0; i < 60; ++i, t += 100ms) feed(t);  // past the interval: one more, with the count
  e = events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].failures, 101u);  // the first datagram at or after kT0 + 10 s is the 101st
  EXPECT_EQ(node.auth_failures()[0].datagrams, 110u);
  EXPECT_EQ(node.stats().dropped_by(Errc::bad_mac), 110u);
}

// The probe is the engine's own datagram: with the outbox full, the failing datagram is still
// exactly one drop (bad_mac, not also queue_full), and the probe owed for that event goes with
// the host's next failing datagram that finds room, once.
TEST(EngineAuthFailures, AProbeThatFindsTheOutboxFullIsOwedNotCountedAsADrop) {
  EngineConfig cfg;
  cfg.limits.max_outbox = 4;
  cfg.timers.auth_failure_report_interval = 10s;
  TestCrypto mine(1);
  TestCrypto theirs(2, 9);
  Engine node = make_engine(cfg, mine, kT0);
  Engine other = make_engine(cfg, theirs, kT0);
  std::array<std::uint8_t, wire::kMaxDatagram> buf{};
  const auto tx = other.poll_transmit(kT0, wall_at(kT0), buf);  // its first solicitation
  ASSERT_TRUE(tx);
  const Bytes datagram{buf.data(), tx->size};
  const Endpoint from = Endpoint::v4(10, 0, 0, 7, 5000);
  // Fill the node's outbox (nothing polled yet).
  int queued = 0;
  while (node.publish("x", bytes_of("m"), PublishOptions{}, kT0)) ++queued;
  ASSERT_LE(queued, 4);
  std::array<std::uint8_t, wire::kMaxDatagram> out{};
  auto probes_to_source = [&](Instant now) {
    std::size_t n = 0;
    while (auto t = node.poll_transmit(now, wall_at(now), out)) {
      if (!t->to_group && t->to == from && static_cast<PacketType>(out[3]) == PacketType::heartbeat)
        ++n;
    }
    return n;
  };
  auto auth_event_count = [&] {
    std::size_t n = 0;
    while (auto ev = node.poll_event()) {
      if (auto* p = std::get_if<PeerEvent>(&*ev); p && p->kind == PeerEvent::Kind::auth_failed) ++n;
    }
    return n;
  };

  node.handle_datagram(from, datagram, kT0, wall_at(kT0));
  EXPECT_EQ(node.stats().dropped_total, 1u);
  EXPECT_EQ(node.stats().dropped_by(Errc::bad_mac), 1u);
  EXPECT_EQ(node.stats().dropped_by(Errc::queue_full), 0u);
  EXPECT_EQ(auth_event_count(), 1u);
  EXPECT_EQ(probes_to_source(kT0), 0u);  // it did not fit

  // The next failing datagram from that host (within the interval: no new event) takes it.
  const Instant t1 = kT0 + 1s;
  node.handle_datagram(from, datagram, t1, wall_at(t1));
  EXPECT_EQ(auth_event_count(), 0u);
  EXPECT_EQ(probes_to_source(t1), 1u);
  // Owed once: the one after that draws nothing until the next event.
  const Instant t2 = kT0 + 2s;
  node.handle_datagram(from, datagram, t2, wall_at(t2));
  EXPECT_EQ(probes_to_source(t2), 0u);
  EXPECT_EQ(node.stats().dropped_total, 3u);
  EXPECT_EQ(node.stats().dropped_by(Errc::bad_mac), 3u);
}

TEST(EngineAuthFailures, TableIsBoundedAndKeepsTheRecentHosts) {
  EngineConfig cfg;
  TestCrypto mine(1);
  TestCrypto theirs(2, 9);
  Engine node = make_engine(cfg, mine, kT0);
  Engine other = make_engine(cfg, theirs, kT0);
  std::array<std::uint8_t, wire::kMaxDatagram> buf{};
  const auto tx = other.poll_transmit(kT0, wall_at(kT0), buf);  // its first solicitation
  ASSERT_TRUE(tx);
  const Bytes datagram{buf.data(), tx->size};
  Instant t = kT0;
  for (std::uint8_t host = 1; host <= 12; ++host, t += 1ms) {
    node.handle_datagram(Endpoint::v4(10, 0, 0, host, 5000), datagram, t, wall_at(t));
    // A second datagram from the same host at another port counts for that host.
    node.handle_datagram(Endpoint::v4(10, 0, 0, host, 5001), datagram, t, wall_at(t));
  }
  const auto table = node.auth_failures();
  ASSERT_EQ(table.size(), kMaxAuthFailureSources);  // 8
  for (const AuthFailureSource& s : table) {
    EXPECT_GE(s.address.address[3], 5) << "an old host was kept";
    EXPECT_EQ(s.address.port, 0);
    EXPECT_EQ(s.datagrams, 2u);
  }
  EXPECT_EQ(node.stats().dropped_by(Errc::bad_mac), 24u);
}

}  // namespace
}  // namespace nomq::engine_test
