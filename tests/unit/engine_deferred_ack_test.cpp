// Deferred acknowledgement (EngineConfig::deferred_ack, docs/engine.md §6): the receiver's
// ACK/PUBREC waits for Engine::accept(token); refuse or no answer leaves the publisher
// retransmitting and, in the end, reporting the receiver as failed by name.
#include <gtest/gtest.h>

#include <algorithm>

#include "test_support.hpp"

namespace nomq::engine_test {
namespace {

using namespace std::chrono_literals;
using wire::PacketType;

EngineConfig deferring() {
  EngineConfig c;
  c.deferred_ack = true;
  c.limits.max_deferred_acks = 4;
  c.timers.deferred_ack_timeout = 5s;
  return c;
}

std::size_t count_type(const TestNet& net, PacketType t, std::size_t from) {
  return static_cast<std::size_t>(std::count_if(net.log.begin(), net.log.end(), [&](const Datagram& d) {
    return d.type == t && d.from == from && !d.lost;
  }));
}

// Node 0 publishes (plain config); node 1 subscribes to "store/x" with deferred_ack.
struct Fixture {
  explicit Fixture(EngineConfig sub_cfg = deferring()) {
    net.add(EngineConfig{}, 1);
    Node& s = net.add(sub_cfg, 2);
    EXPECT_TRUE(s.engine.subscribe("store/x", 0, net.now));
    net.run_for(EngineConfig{}.timers.discovery_period);
  }
  Node& pub() { return *net.nodes[0]; }
  Node& sub() { return *net.nodes[1]; }
  Result<MessageId> publish(std::string_view m, Qos q, std::uint16_t ttl_s = 0) {
    PublishOptions o;
    o.qos = q;
    o.ttl_s = ttl_s;
    return pub().engine.publish("store/x", bytes_of(m), o, net.now);
  }
  TestNet net;
};

TEST(DeferredAck, Qos1IsAcknowledgedOnlyOnAccept) {
  Fixture f;
  ASSERT_TRUE(f.publish("m", Qos::at_least_once));
  f.net.pump();
  ASSERT_EQ(f.sub().received.size(), 1u);
  const AckToken token = f.sub().received[0].ack_token;
  ASSERT_NE(token, 0u);
  EXPECT_EQ(count_type(f.net, PacketType::ack, 1), 0u);
  EXPECT_TRUE(f.pub().reports.empty());
  // Retransmissions meanwhile are duplicates, neither delivered again nor answered.
  f.net.run_for(700ms);
  EXPECT_EQ(f.sub().received.size(), 1u);
  EXPECT_EQ(count_type(f.net, PacketType::ack, 1), 0u);
  EXPECT_GE(f.sub().engine.stats().dropped_by(Errc::duplicate), 1u);
  ASSERT_TRUE(f.sub().engine.accept(token, f.net.now));
  f.net.pump();
  EXPECT_EQ(count_type(f.net, PacketType::ack, 1), 1u);
  ASSERT_EQ(f.pub().reports.size(), 1u);
  EXPECT_EQ(f.pub().reports[0].reason, Errc::ok);
  EXPECT_EQ(f.sub().engine.stats().deferred_accepted, 1u);
  // A token answers once.
  const auto again = f.sub().engine.accept(token, f.net.now);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::expired);
}

TEST(DeferredAck, DuplicateAfterAcceptIsAnsweredNotDelivered) {
  Fixture f;
  f.net.filter = [n = 0](const Datagram& d) mutable {
    return !(d.type == PacketType::ack && n++ == 0);  // the first ACK is lost
  };
  ASSERT_TRUE(f.publish("m", Qos::at_least_once));
  f.net.pump();
  ASSERT_EQ(f.sub().received.size(), 1u);
  ASSERT_TRUE(f.sub().engine.accept(f.sub().received[0].ack_token, f.net.now));
  f.net.run_for(1s);
  EXPECT_EQ(f.sub().received.size(), 1u);
  ASSERT_EQ(f.pub().reports.size(), 1u);
  EXPECT_EQ(f.pub().reports[0].reason, Errc::ok);
}

TEST(DeferredAck, Qos2PubrecWaitsForAcceptThenTheHandshakeCompletes) {
  Fixture f;
  ASSERT_TRUE(f.publish("v", Qos::exactly_once));
  f.net.run_for(500ms);
  ASSERT_EQ(f.sub().received.size(), 1u);
  EXPECT_EQ(count_type(f.net, PacketType::pubrec, 1), 0u);
  EXPECT_EQ(count_type(f.net, PacketType::pubrel, 0), 0u);
  ASSERT_TRUE(f.sub().engine.accept(f.sub().received[0].ack_token, f.net.now));
  f.net.run_for(1s);
  EXPECT_EQ(count_type(f.net, PacketType::pubrec, 1), 1u);
  EXPECT_EQ(count_type(f.net, PacketType::pubcomp, 1), 1u);
  ASSERT_EQ(f.pub().reports.size(), 1u);
  EXPECT_EQ(f.pub().reports[0].reason, Errc::ok);
  EXPECT_EQ(f.pub().reports[0].recipients[0].state, RecipientState::acknowledged);
  EXPECT_EQ(f.sub().received.size(), 1u);  // exactly once
  EXPECT_EQ(f.sub().engine.inbound_qos2_open(), 0u);
}

TEST(DeferredAck, RefusedMessageIsRetransmittedDeliveredAgainAndCanBeAcceptedLater) {
  Fixture f;
  ASSERT_TRUE(f.publish("m", Qos::exactly_once));
  f.net.pump();
  ASSERT_EQ(f.sub().received.size(), 1u);
  ASSERT_TRUE(f.sub().engine.refuse(f.sub().received[0].ack_token, f.net.now));
  f.net.run_for(300ms);  // the first retransmission (200 ms)
  ASSERT_EQ(f.sub().received.size(), 2u);
  EXPECT_EQ(f.sub().received[1].message, "m");
  EXPECT_NE(f.sub().received[1].ack_token, f.sub().received[0].ack_token);
  EXPECT_EQ(count_type(f.net, PacketType::pubrec, 1), 0u);
  ASSERT_TRUE(f.sub().engine.accept(f.sub().received[1].ack_token, f.net.now));
  f.net.run_for(1s);
  ASSERT_EQ(f.pub().reports.size(), 1u);
  EXPECT_EQ(f.pub().reports[0].reason, Errc::ok);
  EXPECT_EQ(f.sub().engine.stats().deferred_refused, 1u);
  EXPECT_EQ(f.sub().engine.inbound_qos2_open(), 0u);
}

TEST(DeferredAck, AlwaysRefusedEndsWithTheReceiverFailedInTheReport) {
  Fixture f;
  ASSERT_TRUE(f.publish("m", Qos::at_least_once, /*ttl_s=*/3));
  for (int i = 0; i < 400 && f.pub().reports.empty(); ++i) {
    for (const Received& r : f.sub().received) (void)f.sub().engine.refuse(r.ack_token, f.net.now);
    f.net.run_for(10ms);
  }
  ASSERT_EQ(f.pub().reports.size(), 1u);
  const Report& r = f.pub().reports[0];
  EXPECT_EQ(r.reason, Errc::expired);
  ASSERT_EQ(r.recipients.size(), 1u);
  EXPECT_EQ(r.recipients[0].state, RecipientState::failed);
  EXPECT_EQ(r.recipients[0].endpoint, f.sub().endpoint);  // named: where the refusal is
  EXPECT_EQ(r.recipients[0].session_id, f.sub().engine.session_id());
  EXPECT_GE(f.sub().engine.stats().deferred_refused, 2u);
  EXPECT_EQ(count_type(f.net, PacketType::ack, 1), 0u);
}

TEST(DeferredAck, UnansweredTokenLapsesAndTheRetransmissionIsDeliveredAgain) {
  Fixture f;
  ASSERT_TRUE(f.publish("m", Qos::at_least_once));
  f.net.pump();
  ASSERT_EQ(f.sub().received.size(), 1u);
  const AckToken token = f.sub().received[0].ack_token;
  // The subscriber's next deadline includes the lapse.
  const auto dl = f.sub().engine.next_deadline();
  ASSERT_TRUE(dl);
  EXPECT_LE(*dl, f.net.now + 5s);
  f.net.run_for(5s + 10ms);
  EXPECT_EQ(f.sub().engine.stats().deferred_lapsed, 1u);
  const auto late = f.sub().engine.accept(token, f.net.now);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code(), Errc::expired);
  // The publisher's next retransmission (backoff: 6.2 s, 12.6 s ...) is delivered again.
  f.net.run_for(8s);
  ASSERT_GE(f.sub().received.size(), 2u);
  ASSERT_TRUE(f.sub().engine.accept(f.sub().received.back().ack_token, f.net.now));
  f.net.run_for(100ms);
  ASSERT_EQ(f.pub().reports.size(), 1u);
  EXPECT_EQ(f.pub().reports[0].reason, Errc::ok);
}

TEST(DeferredAck, FullTableDropsUnacknowledgedUntilASlotIsFree) {
  Fixture f;  // 4 slots
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(f.publish(std::string("m").append(std::to_string(i)), Qos::at_least_once));
  f.net.pump();
  ASSERT_EQ(f.sub().received.size(), 4u);
  EXPECT_EQ(f.sub().engine.stats().dropped_by(Errc::inbox_full), 1u);
  for (const Received& r : f.sub().received) ASSERT_TRUE(f.sub().engine.accept(r.ack_token, f.net.now));
  f.net.run_for(1s);  // the fifth is retransmitted and now delivered
  ASSERT_EQ(f.sub().received.size(), 5u);
  ASSERT_TRUE(f.sub().engine.accept(f.sub().received[4].ack_token, f.net.now));
  f.net.run_for(100ms);
  ASSERT_EQ(f.pub().reports.size(), 5u);
  for (const Report& r : f.pub().reports) EXPECT_EQ(r.reason, Errc::ok);
}

TEST(DeferredAck, Qos0AndNonDeferringNodesCarryNoToken) {
  Fixture f;
  ASSERT_TRUE(f.publish("q0", Qos::at_most_once));
  f.net.pump();
  ASSERT_EQ(f.sub().received.size(), 1u);
  EXPECT_EQ(f.sub().received[0].ack_token, 0u);
  Fixture plain{EngineConfig{}};
  ASSERT_TRUE(plain.publish("q1", Qos::at_least_once));
  plain.net.pump();
  ASSERT_EQ(plain.sub().received.size(), 1u);
  EXPECT_EQ(plain.sub().received[0].ack_token, 0u);
  ASSERT_EQ(plain.pub().reports.size(), 1u);  // acknowledged at once, as before
  const auto bad = plain.sub().engine.accept(0x10001, plain.net.now);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::invalid_argument);
}

TEST(DeferredAck, ConfigChecks) {
  EngineConfig c = deferring();
  c.wire = WireVersion::v1;
  EXPECT_EQ(Engine::validate(c).error().code(), Errc::config_bad_field);
  c = deferring();
  c.limits.max_deferred_acks = 70000;
  EXPECT_EQ(Engine::validate(c).error().code(), Errc::config_bad_field);
  // The table costs nothing when off, and its entries when on.
  EngineConfig off;
  EngineConfig on = off;
  on.deferred_ack = true;
  EXPECT_GT(Engine::state_bytes_for(on), Engine::state_bytes_for(off));
}

// A publisher that crashes after the subscriber's PUBREC and starts again under its session
// (EngineConfig::resume, sequence numbers reserved ahead) republishes under the same message
// id: the subscriber answers it as the duplicate it is, so QoS 2 stays exactly once across the
// crash (the bridge's SIGKILL case, docs/bridge.md). Under a fresh session it is delivered twice.
TEST(SessionResume, RepublishAfterACrashIsRecognisedUnderTheSameSession) {
  for (const bool resume : {true, false}) {
    SCOPED_TRACE(resume ? "resumed session" : "fresh session");
    Fixture f{EngineConfig{}};
    f.net.filter = [](const Datagram& d) { return d.type != PacketType::pubrel; };  // crash window
    PublishOptions o;
    o.qos = Qos::exactly_once;
    o.message_id = 4242;
    ASSERT_TRUE(f.pub().engine.publish("store/x", bytes_of("once"), o, f.net.now));
    f.net.pump();
    ASSERT_EQ(f.sub().received.size(), 1u);
    const SessionResume was = f.pub().engine.session_state();
    EXPECT_NE(was.session_id, 0u);
    // The crash: a new engine at the same endpoint.
    EngineConfig again;
    if (resume) again.resume = {was.session_id, was.next_sequence + 1000, 0};
    const Endpoint ep = f.pub().endpoint;
    f.net.nodes[0] = std::make_unique<Node>(again, 7, ep, f.net.now);
    EXPECT_EQ(f.pub().engine.session_id() == was.session_id, resume);
    f.net.filter = nullptr;
    f.net.run_for(2s);  // discovery of the subscriber
    ASSERT_TRUE(f.pub().engine.publish("store/x", bytes_of("once"), o, f.net.now));
    f.net.run_for(2s);
    ASSERT_EQ(f.pub().reports.size(), 1u);
    EXPECT_EQ(f.pub().reports[0].reason, Errc::ok);
    EXPECT_EQ(f.sub().received.size(), resume ? 1u : 2u);
  }
}

TEST(SessionResume, ChosenMessageIdOfAPendingPublishIsRefused) {
  Fixture f{EngineConfig{}};
  PublishOptions o;
  o.qos = Qos::at_least_once;
  o.message_id = 7;
  f.net.filter = [](const Datagram& d) { return d.type != PacketType::ack; };
  ASSERT_TRUE(f.pub().engine.publish("store/x", bytes_of("a"), o, f.net.now));
  const auto again = f.pub().engine.publish("store/x", bytes_of("b"), o, f.net.now);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::invalid_argument);
}

}  // namespace
}  // namespace nomq::engine_test
