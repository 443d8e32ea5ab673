// A fast first publish (docs/engine.md §3; issue 15 §2): a fresh publisher reports a QoS 1/2
// group publish about one round trip after the subscribers' answers to its first solicitation,
// not at the end of the 1.5 s discovery period; a subscriber that answers later still gets the
// message (the tail), counted in stats().late_recipients. Simulated clock and network.
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace nomq::engine_test {
namespace {

using namespace std::chrono_literals;
using wire::PacketType;

// `n` subscribers of "plant/temp", their own start-up over; node indices 0..n-1.
void running_subscribers(TestNet& net, int n) {
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(net.add(EngineConfig{}, 100 + static_cast<std::uint64_t>(i))
                    .engine.subscribe("plant/temp", 0, net.now));
  }
  net.run_for(3s, 1ms);
}

Instant report_time(TestNet& net, Node& pub, Duration limit) {
  const Instant end = net.now + limit;
  while (pub.reports.empty() && net.now < end) net.run_for(1ms, 1ms);
  return net.now;
}

TEST(EngineFirstPublish, FreshPublisherIsReportedAboutOneRoundTripAfterTheAnswers) {
  for (Qos qos : {Qos::at_least_once, Qos::exactly_once}) {
    SCOPED_TRACE(static_cast<int>(qos));
    TestNet net;
    running_subscribers(net, 1);
    Node& pub = net.add(EngineConfig{}, 7);
    PublishOptions o;
    o.qos = qos;
    const Instant t0 = net.now;
    ASSERT_TRUE(pub.engine.publish("plant/temp", bytes_of("21.5"), o, t0));
    const Instant at = report_time(net, pub, 2s);
    ASSERT_EQ(pub.reports.size(), 1u);
    EXPECT_EQ(pub.reports[0].reason, Errc::ok);
    ASSERT_EQ(pub.reports[0].recipients.size(), 1u);
    EXPECT_EQ(pub.reports[0].recipients[0].state, RecipientState::acknowledged);
    // The subscriber knows one peer (the publisher): it answers within 2 ms; the publisher
    // reports once that window plus discovery_settle (30 ms) has passed. The period is 1.5 s.
    EXPECT_LE(at - t0, 33ms);
    EXPECT_GE(at - t0, 30ms);
    EXPECT_EQ(net.nodes[0]->received.size(), 1u);
    EXPECT_EQ(pub.engine.stats().late_recipients, 0u);
    // The tail ends with the period: no second report, nothing left open.
    net.run_for(2s, 5ms);
    EXPECT_EQ(pub.reports.size(), 1u);
    EXPECT_EQ(pub.engine.pending_count(), 0u);
    EXPECT_FALSE(pub.engine.next_deadline() && *pub.engine.next_deadline() < net.now + 20s);
  }
}

TEST(EngineFirstPublish, SubscriberAnsweringLateStillGetsTheMessage) {
  TestNet net;
  running_subscribers(net, 2);
  Node& late = *net.nodes[1];
  Node& pub = net.add(EngineConfig{}, 7);
  const Instant t0 = net.now;
  // Subscriber 1's answers to the first four rounds (0 to 41 ms) are lost.
  net.filter = [&](const Datagram& d) {
    return !(d.from == 1 && d.type == PacketType::subscribe && d.at < t0 + 50ms);
  };
  PublishOptions o1;
  o1.qos = Qos::at_least_once;
  PublishOptions o2;
  o2.qos = Qos::exactly_once;
  ASSERT_TRUE(pub.engine.publish("plant/temp", bytes_of("q1"), o1, t0));
  ASSERT_TRUE(pub.engine.publish("plant/temp", bytes_of("q2"), o2, t0));
  const Instant at = report_time(net, pub, 2s);
  EXPECT_LE(at - t0, 40ms);
  net.run_for(1ms, 1ms);  // both reports
  ASSERT_EQ(pub.reports.size(), 2u);
  for (const auto& r : pub.reports) {
    EXPECT_EQ(r.reason, Errc::ok);
    ASSERT_EQ(r.recipients.size(), 1u);  // only subscriber 0 had answered
    EXPECT_EQ(r.recipients[0].endpoint, net.nodes[0]->endpoint);
  }
  EXPECT_TRUE(late.received.empty());
  // Its answer to the round at 87.9 ms gets through: it joins both publishes and gets them.
  net.run_for(2s, 1ms);
  ASSERT_EQ(late.received.size(), 2u);
  EXPECT_EQ(late.received[0].message, "q1");
  EXPECT_EQ(late.received[1].message, "q2");
  EXPECT_EQ(pub.engine.stats().late_recipients, 2u);
  EXPECT_EQ(pub.engine.stats().late_recipients_failed, 0u);
  EXPECT_EQ(pub.reports.size(), 2u);  // no second report
  EXPECT_EQ(pub.engine.pending_count(), 0u);
  EXPECT_EQ(late.engine.inbound_qos2_open(), 0u);  // the QoS 2 handshake completed
}

TEST(EngineFirstPublish, LateRecipientThatNeverAcknowledgesIsCountedAtTtl) {
  TestNet net;
  running_subscribers(net, 2);
  Node& pub = net.add(EngineConfig{}, 7);
  const Endpoint late = net.nodes[1]->endpoint;
  const Instant t0 = net.now;
  // Subscriber 1 answers only after 50 ms, and nothing the publisher sends it arrives.
  net.filter = [&](const Datagram& d) {
    if (d.from == 1 && d.type == PacketType::subscribe && d.at < t0 + 50ms) return false;
    return !(d.from == 2 && !d.to_group && d.to == late);
  };
  PublishOptions o;
  o.qos = Qos::at_least_once;
  o.ttl_s = 5;
  ASSERT_TRUE(pub.engine.publish("plant/temp", bytes_of("x"), o, t0));
  net.run_for(2s, 1ms);
  ASSERT_EQ(pub.reports.size(), 1u);
  EXPECT_EQ(pub.reports[0].reason, Errc::ok);
  EXPECT_EQ(pub.engine.stats().late_recipients, 1u);
  EXPECT_EQ(pub.engine.stats().late_recipients_failed, 0u);  // still retransmitting
  EXPECT_TRUE(net.nodes[1]->received.empty());
  net.run_for(5s, 10ms);  // past the TTL
  EXPECT_EQ(pub.engine.stats().late_recipients_failed, 1u);
  EXPECT_EQ(pub.reports.size(), 1u);
  EXPECT_EQ(pub.engine.pending_count(), 0u);
}

TEST(EngineFirstPublish, CloseDuringTheTailEndsItWithoutASecondReport) {
  TestNet net;
  running_subscribers(net, 1);
  Node& pub = net.add(EngineConfig{}, 7);
  PublishOptions o;
  o.qos = Qos::at_least_once;
  ASSERT_TRUE(pub.engine.publish("plant/temp", bytes_of("x"), o, net.now));
  (void)report_time(net, pub, 2s);
  ASSERT_EQ(pub.reports.size(), 1u);
  pub.engine.close(net.now);
  pub.drain_events();
  EXPECT_EQ(pub.reports.size(), 1u);
  // The slot is free again: a publish after close is refused as closed, not too_many_pending.
  EXPECT_EQ(pub.engine.publish("plant/temp", bytes_of("y"), o, net.now).error(), Errc::closed);
}

// max_pending bounds the publishes awaiting their report, not the tails: a fresh publisher that
// awaits each report goes on publishing through its discovery period, each publish taking the
// slot of a tail (asio/python "many coroutines" tests: 50 reported, then too_many_pending).
TEST(EngineFirstPublish, TailsGiveTheirSlotsToNewPublishes) {
  TestNet net;
  running_subscribers(net, 1);
  EngineConfig cfg;
  cfg.limits.max_pending = 4;
  Node& pub = net.add(cfg, 7);
  PublishOptions o;
  o.qos = Qos::at_least_once;
  const Instant t0 = net.now;
  constexpr int kPublishes = 12;
  for (int i = 0; i < kPublishes; ++i) {
    SCOPED_TRACE(i);
    const std::size_t before = pub.reports.size();
    ASSERT_TRUE(pub.engine.publish("plant/temp", bytes_of(std::string("m").append(std::to_string(i))), o, net.now));
    for (int ms = 0; ms < 2000 && pub.reports.size() == before; ++ms) net.run_for(1ms, 1ms);
    ASSERT_EQ(pub.reports.size(), before + 1);
    EXPECT_EQ(pub.reports.back().reason, Errc::ok);
  }
  EXPECT_LT(net.now - t0, 1500ms);  // all made and reported within the discovery period
  EXPECT_EQ(pub.engine.stats().late_recipients_failed, 0u);
  // Awaiting reports: at most one open publish; the table still holds the remaining tails.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(pub.engine.publish("plant/temp", bytes_of("x"), o, net.now)) << i;
  }
  net.run_for(2s, 1ms);
  EXPECT_EQ(net.nodes[0]->received.size(), static_cast<std::size_t>(kPublishes + 4));
  EXPECT_EQ(pub.reports.size(), static_cast<std::size_t>(kPublishes + 4));
  EXPECT_EQ(pub.engine.pending_count(), 0u);
  // A table full of publishes awaiting their reports is still refused.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(pub.engine.publish("plant/temp", bytes_of("y"), o, net.now));
  EXPECT_EQ(pub.engine.publish("plant/temp", bytes_of("z"), o, net.now).error(),
            Errc::too_many_pending);
}

}  // namespace
}  // namespace nomq::engine_test
