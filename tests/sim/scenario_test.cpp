// The simulator's guarantees, over many seeds: QoS 1/2 lose nothing and QoS 2 duplicates
// nothing under 30 % loss, duplication and reordering; partitions heal or are reported; a
// restarted subscriber still gets its messages or a report; short TTLs expire and are reported.
#include <gtest/gtest.h>

#include "sim/prng.hpp"
#include "sim/scenario.hpp"
#include "sim_test_support.hpp"

namespace nomq::sim {
namespace {

using namespace std::chrono_literals;
using testing::kSeeds;
using testing::lossy_base;
using testing::too_many_failures;
using testing::trace;

void expect_no_violations(const ScenarioResult& r) {
  EXPECT_TRUE(r.violations.empty()) << ::testing::PrintToString(r.violations);
  EXPECT_EQ(r.acked_not_delivered, 0u);
  EXPECT_EQ(r.delivered_after_expiry, 0u);
  EXPECT_EQ(r.unreported, 0u);
  EXPECT_EQ(r.foreign_deliveries, 0u);
  EXPECT_EQ(r.unknown_reports, 0u);
  EXPECT_LE(r.delivered, r.expected_deliveries);
}

// QoS 1/2: nothing lost, QoS 2 not duplicated, no invariant broken.
void expect_nothing_lost(const ScenarioOptions& o, const ScenarioResult& r) {
  EXPECT_EQ(r.lost, 0u);
  if (o.qos == Qos::exactly_once) {
    EXPECT_EQ(r.duplicates, 0u);
  }
  expect_no_violations(r);
}

// Odd seeds QoS 1, even seeds QoS 2.
Qos reliable_qos(std::uint64_t seed) {
  return seed % 2 ? Qos::at_least_once : Qos::exactly_once;
}

// Clean links, QoS 1/2 by seed, 2 publishes a second, and the last subscriber cut off from
// 2 s until `heal`.
ScenarioOptions cut_off_last_subscriber(std::uint64_t seed, Duration heal, std::uint16_t ttl_s) {
  ScenarioOptions o = lossy_base(seed);
  o.qos = reliable_qos(seed);
  o.loss = 0;
  o.duplicate = 0;
  o.reorder = 0;
  o.rate = 2;
  o.ttl_s = ttl_s;
  o.partitions.push_back({2s, heal, {}});
  return o;
}

// The lossy base scenario (sim_test_support.hpp) at one QoS, as a maker for for_each_seed.
auto lossy_at(Qos qos) {
  return [qos](std::uint64_t seed) {
    ScenarioOptions o = lossy_base(seed);
    o.qos = qos;
    return o;
  };
}

// Runs the scenario `make(seed)` for every seed and hands each result to `check`. A failure is
// traced with the seed and the `nomq sim` command that replays it; the loop stops after a few
// failing seeds.
template <class Make, class Check>
void for_each_seed(Make make, Check check) {
  int failed = 0;
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const ScenarioOptions o = make(seed);
    SCOPED_TRACE(trace(o));
    const ScenarioResult r = run_scenario(o);
    check(o, r);
    if (too_many_failures(failed)) break;
  }
}

// The ratio of QoS 0 deliveries to expected ones over all seeds: one datagram per subscriber,
// each lost with probability 0.3, so about 70 % arrive.
struct DeliveryTotals {
  std::uint64_t delivered = 0;
  std::uint64_t expected = 0;
  void add(const ScenarioResult& r) {
    delivered += r.delivered;
    expected += r.expected_deliveries;
  }
  void expect_about_70_percent() const {
    const double ratio = static_cast<double>(delivered) / static_cast<double>(expected);
    EXPECT_GT(ratio, 0.62);
    EXPECT_LT(ratio, 0.78);
  }
};

TEST(SimLossy, Qos1LosesNothing) {
  DeliveryTotals totals;
  for_each_seed(
      lossy_at(Qos::at_least_once),
      [&](const ScenarioOptions& o, const ScenarioResult& r) {
        EXPECT_EQ(r.published, o.messages);
        expect_nothing_lost(o, r);
        totals.add(r);
      });
  // Nothing reaches the TTL of 300 s at this loss rate: everything arrives.
  EXPECT_EQ(totals.delivered, totals.expected);
}

TEST(SimLossy, Qos2LosesNothingAndDuplicatesNothing) {
  for_each_seed(
      lossy_at(Qos::exactly_once),
      [](const ScenarioOptions& o, const ScenarioResult& r) {
        EXPECT_EQ(r.published, o.messages);
        EXPECT_EQ(r.duplicates, 0u);
        EXPECT_EQ(r.delivered, r.expected_deliveries);
        expect_nothing_lost(o, r);
      });
}

// Subscribers follow a wildcard filter (one of four forms by seed) instead of the channel:
// publishers learn them from their SUBSCRIBEs and deliver QoS 1/2 as to an exact one.
TEST(SimLossy, WildcardSubscribersLoseNothing) {
  static const char* const kFilters[] = {"sim/#", "sim/+", "#", "+/data"};
  for_each_seed(
      [](std::uint64_t seed) {
        ScenarioOptions o = lossy_base(seed);
        o.qos = reliable_qos(seed);
        o.subscribe_filter = kFilters[seed % 4];
        return o;
      },
      [](const ScenarioOptions& o, const ScenarioResult& r) {
        EXPECT_EQ(r.published, o.messages);
        EXPECT_EQ(r.delivered, r.expected_deliveries);
        expect_nothing_lost(o, r);
      });
}

// v2 with explicit destinations: each message published once per subscriber endpoint.
TEST(SimLossy, UnicastQos1And2LoseNothing) {
  for_each_seed(
      [](std::uint64_t seed) {
        ScenarioOptions o = lossy_base(seed);
        o.qos = reliable_qos(seed);
        o.unicast = true;
        return o;
      },
      [](const ScenarioOptions& o, const ScenarioResult& r) {
        EXPECT_EQ(r.published, o.messages);
        expect_nothing_lost(o, r);
      });
}

TEST(SimLossy, Qos0SurvivesAndNeverDuplicates) {
  DeliveryTotals totals;
  for_each_seed(
      lossy_at(Qos::at_most_once),
      [&](const ScenarioOptions& o, const ScenarioResult& r) {
        EXPECT_EQ(r.published, o.messages);
        // v2 gives every transmission its own sequence number, so a copy made by the link is
        // a replay and is dropped: no duplicates even with dup > 0.
        EXPECT_EQ(r.duplicates, 0u);
        EXPECT_EQ(r.reports.size(), 0u);
        expect_no_violations(r);
        totals.add(r);
      });
  totals.expect_about_70_percent();
}

TEST(SimLossy, Qos0WithoutDuplicationOnCleanLinksDeliversEverythingOnce) {
  for_each_seed(
      [](std::uint64_t seed) {
        ScenarioOptions o = lossy_base(seed);
        o.qos = Qos::at_most_once;
        o.loss = 0;
        o.duplicate = 0;
        return o;
      },
      [](const ScenarioOptions&, const ScenarioResult& r) {
        EXPECT_EQ(r.duplicates, 0u);
        EXPECT_EQ(r.delivered, r.expected_deliveries);
        EXPECT_EQ(r.deliveries, r.expected_deliveries);
        EXPECT_EQ(r.lost, 0u);
      });
}

// The last subscriber is cut off from 2 s to 32 s of a 12 s publishing run; TTL 200 s outlasts
// the partition plus the 60 s backoff cap, so on clean links everything arrives after the heal.
TEST(SimPartition, MessagesPublishedDuringPartitionArriveAfterHeal) {
  for_each_seed(
      [](std::uint64_t seed) { return cut_off_last_subscriber(seed, 32s, 200); },
      [](const ScenarioOptions&, const ScenarioResult& r) {
        EXPECT_GT(r.dropped_partition, 0u);
        EXPECT_EQ(r.lost, 0u);
        EXPECT_EQ(r.delivered, r.expected_deliveries);
        EXPECT_EQ(r.reported_failed, 0u);
        expect_no_violations(r);
      });
}

// The same partition under 30 % loss: a message may now run out of TTL, but then it is
// reported; none is silently lost. The side cut off varies with the seed: the last subscriber,
// the first publisher, or both together (they still reach each other).
TEST(SimPartition, LossyPartitionNeverLosesSilently) {
  for_each_seed(
      [](std::uint64_t seed) {
        ScenarioOptions o = lossy_base(seed);
        o.qos = reliable_qos(seed);
        o.rate = 2;
        o.ttl_s = 90;
        const std::size_t last = o.nodes - 1;
        const std::vector<std::vector<std::size_t>> sides{{last}, {0}, {0, last}};
        o.partitions.push_back({2s, 32s, sides[seed % 3]});
        return o;
      },
      expect_nothing_lost);
}

// The last subscriber crashes mid-run and comes back as a new session at once: QoS 1/2
// messages still reach it (either session) or are reported.
TEST(SimRestart, RestartedSubscriberStillGetsMessagesOrReports) {
  std::uint64_t restarted_deliveries = 0, restarted_expected = 0;
  for_each_seed(
      [](std::uint64_t seed) {
        ScenarioOptions o = lossy_base(seed);
        o.qos = reliable_qos(seed);
        o.loss = 0.1;
        o.duplicate = 0.05;
        o.rate = 10;
        o.messages = 40;
        o.ttl_s = 120;
        o.subscriber_restarts.push_back(std::chrono::milliseconds(1500 + 37 * (seed % 20)));
        return o;
      },
      [&](const ScenarioOptions& o, const ScenarioResult& r) {
        EXPECT_EQ(r.restarts, 1u);
        expect_nothing_lost(o, r);
        restarted_deliveries += r.delivered_by_node.back();
        restarted_expected += r.published;
      });
  // Within a TTL of 120 s the new session is discovered and served: nearly everything arrives.
  EXPECT_GT(restarted_deliveries, restarted_expected * 95 / 100);
}

// Two restarts in quick succession at 30 % loss: each new session's HEARTBEAT may arrive
// before (or without) its SUBSCRIBE. The new session inherits the old one's subscriptions
// (tentatively), so publishes keep tracking it: nothing is lost, silently or otherwise.
// (docs/simulation.md recorded seed 5 losing 9 messages, reported ok, when a replaced
// session's subscriptions were dropped.)
TEST(SimRestart, QuickRestartsUnderHeavyLossLoseNothing) {
  for_each_seed(
      [](std::uint64_t seed) {
        ScenarioOptions o;
        o.seed = seed;
        o.messages = 300;  // publishing from 0 s to 3 s: both restarts fall inside
        o.qos = Qos::at_least_once;
        o.loss = 0.3;
        o.duplicate = 0.1;
        o.reorder = 0.1;
        o.nodes = 4;
        o.subscriber_restarts = {1s, 2500ms};
        return o;
      },
      [](const ScenarioOptions& o, const ScenarioResult& r) {
        EXPECT_EQ(r.restarts, 2u);
        // At 30 % loss a (message, subscriber) pair fails all nine tries within the 60 s TTL
        // about once in 500: those are reported expired, by name. Nothing else may fail.
        EXPECT_EQ(r.reported_failed, r.expired);
        expect_nothing_lost(o, r);
      });
}

// Every node renews its session every 7 s (QoS 2, two publishers, 10 % loss): each renewal is
// a restart as far as the peers can tell. Nothing is lost or duplicated.
// (docs/simulation.md recorded 9 of 30 seeds losing messages when a replaced session's
// subscriptions were dropped.)
TEST(SimRestart, FrequentSessionRenewalLosesNothing) {
  for_each_seed(
      [](std::uint64_t seed) {
        ScenarioOptions o;
        o.seed = seed;
        o.messages = 600;
        o.qos = Qos::exactly_once;
        o.loss = 0.1;
        o.nodes = 4;
        o.publishers = 2;
        o.session_lifetime = 7s;
        return o;
      },
      [](const ScenarioOptions& o, const ScenarioResult& r) {
        EXPECT_EQ(r.reported_failed, 0u);
        expect_nothing_lost(o, r);  // QoS 2: duplicates too
      });
}

// A datagram slower than its message's TTL: the receiver bounds expiry by the sender's
// timestamp (+ 1 s for its truncation), so transit time counts and nothing is delivered after
// the message expired. (Before, every one of these deliveries came 0.5 s after expiry.)
TEST(SimTtl, TransitLongerThanTtlIsNeverDeliveredLate) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    ScenarioOptions o;
    o.seed = seed;
    o.messages = 100;
    o.qos = Qos::at_most_once;
    o.ttl_s = 1;
    o.delay = 2500ms;
    SCOPED_TRACE(trace(o));
    const ScenarioResult r = run_scenario(o);
    EXPECT_EQ(r.delivered, 0u);
    EXPECT_EQ(r.delivered_after_expiry, 0u);
  }
}

// TTL 5 s against a partition from 2 s to 60 s: messages published during the partition
// cannot reach the cut-off subscriber before they expire. They are reported expired and never
// delivered late.
TEST(SimTtl, ShortTtlUnderLongPartitionIsReportedExpired) {
  for_each_seed(
      [](std::uint64_t seed) {
        ScenarioOptions o = cut_off_last_subscriber(seed, 60s, 5);
        o.messages = 20;  // publishing from 0 s to 9.5 s
        return o;
      },
      [](const ScenarioOptions& o, const ScenarioResult& r) {
        const std::uint64_t per_publisher_before = 4;  // at 0, 0.5, 1 and 1.5 s
        const std::uint64_t before = per_publisher_before * o.publishers;
        const std::uint64_t during = o.messages - before;
        EXPECT_EQ(r.expired, during);
        EXPECT_EQ(r.reported_failed, during);
        EXPECT_EQ(r.delivered_by_node.back(), before);
        EXPECT_EQ(r.delivered, r.expected_deliveries - during);
        EXPECT_EQ(r.lost, 0u);
        expect_no_violations(r);
      });
}

// Wire v1 between our engines: no announcements, QoS 1/2 to each subscriber's endpoint.
class SimV1 : public ::testing::TestWithParam<Qos> {};

TEST_P(SimV1, ExplicitDestinationsUnderLoss) {
  DeliveryTotals totals;
  for_each_seed(
      [qos = GetParam()](std::uint64_t seed) {
        ScenarioOptions o = lossy_base(seed);
        o.wire = WireVersion::v1;
        o.qos = qos;
        // QoS 1/2 always go to each subscriber's endpoint; QoS 0 alternates group and unicast.
        o.unicast = seed % 2 == 0;
        return o;
      },
      [&](const ScenarioOptions& o, const ScenarioResult& r) {
        EXPECT_EQ(r.published, o.messages);
        if (o.qos == Qos::at_most_once) {
          expect_no_violations(r);
        } else {
          expect_nothing_lost(o, r);
        }
        totals.add(r);
      });
  if (GetParam() == Qos::at_most_once) totals.expect_about_70_percent();
}

INSTANTIATE_TEST_SUITE_P(Qos, SimV1,
                         ::testing::Values(Qos::at_most_once, Qos::at_least_once,
                                           Qos::exactly_once),
                         [](const ::testing::TestParamInfo<Qos>& p) {
                           return std::string("qos").append(std::to_string(static_cast<int>(p.param)));
                         });

TEST(SimDeterminism, SameSeedSameResultDifferentSeedDifferentRun) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    ScenarioOptions o = lossy_base(seed);
    o.qos = static_cast<Qos>(seed % 3);
    if (seed % 4 == 0) o.partitions.push_back({1s, 3s, {}});
    if (seed % 5 == 0) o.subscriber_restarts.push_back(700ms);
    SCOPED_TRACE(trace(o));
    const std::string a = to_json(o, run_scenario(o));
    const std::string b = to_json(o, run_scenario(o));
    EXPECT_EQ(a, b);
    ScenarioOptions other = o;
    other.seed = seed + 1000;
    // The seed is printed too; compare what the network did.
    const ScenarioResult ra = run_scenario(o);
    const ScenarioResult rc = run_scenario(other);
    EXPECT_FALSE(ra.dropped_loss == rc.dropped_loss && ra.bytes_sent == rc.bytes_sent &&
                 ra.link_duplicated == rc.link_duplicated);
    if (::testing::Test::HasFailure()) break;
  }
}

TEST(SimScenario, PayloadRoundTripsAndRejectsOthers) {
  EXPECT_EQ(scenario_payload(42, 8), "m42:....");
  EXPECT_EQ(scenario_payload(123456, 3), "m123456:");
  EXPECT_EQ(parse_scenario_payload(as_bytes("m42:....")), 42u);
  EXPECT_EQ(parse_scenario_payload(as_bytes("m7:")), 7u);
  EXPECT_FALSE(parse_scenario_payload(as_bytes("m:..")));
  EXPECT_FALSE(parse_scenario_payload(as_bytes("x42:")));
  EXPECT_FALSE(parse_scenario_payload(as_bytes("m42:..x")));
  EXPECT_FALSE(parse_scenario_payload(as_bytes("m42")));
}

TEST(SimScenario, ImpossibleOptionsAreRejected) {
  ScenarioOptions o;
  o.nodes = 2;
  o.publishers = 2;
  EXPECT_THROW(run_scenario(o), std::invalid_argument);
  o = ScenarioOptions{};
  o.loss = 1.5;
  EXPECT_THROW(run_scenario(o), std::invalid_argument);
  o = ScenarioOptions{};
  o.payload_size = 2;
  EXPECT_THROW(run_scenario(o), std::invalid_argument);
  o = ScenarioOptions{};
  o.partitions.push_back({5s, 5s, {}});
  EXPECT_THROW(run_scenario(o), std::invalid_argument);
}

}  // namespace
}  // namespace nomq::sim

namespace nomq::sim {
namespace {

// Everything at once, varied by seed: wire version, QoS, unicast, mixed priorities, restarts,
// partitions of either side, session renewal every few seconds, short TTLs, heavy duplication
// and long reordering. Asserts what must hold whatever the timing: nothing acknowledged that
// was not delivered, every QoS 1/2 publish reported, no QoS 2 duplicate to one session, no
// delivery of something never published, nothing abandoned. (Whether everything arrives is the
// other tests' business; here discovery windows after restarts and renewals are expected.)
TEST(SimChaos, InvariantsHoldUnderEverythingAtOnce) {
  for_each_seed(
      [](std::uint64_t seed) {
        Prng rng{derive_seed(seed, 0xc4a05)};
        ScenarioOptions o = lossy_base(seed);
        o.messages = 60;
        o.wire = rng.chance(0.25) ? WireVersion::v1 : WireVersion::v2;
        o.qos = static_cast<Qos>(rng.below(3));
        o.unicast = rng.chance(0.3);
        o.mixed_priority = rng.chance(0.5);
        o.loss = static_cast<double>(rng.below(40)) / 100.0;
        o.duplicate = static_cast<double>(rng.below(30)) / 100.0;
        o.reorder = static_cast<double>(rng.below(30)) / 100.0;
        o.reorder_delay = std::chrono::milliseconds(rng.between(10, 400));
        o.ttl_s = static_cast<std::uint16_t>(rng.between(3, 120));
        o.rate = static_cast<double>(rng.between(5, 200));
        if (rng.chance(0.5)) {
          o.subscriber_restarts.push_back(std::chrono::milliseconds(rng.between(0, 3000)));
        }
        if (rng.chance(0.5)) {
          const auto start = std::chrono::milliseconds(rng.between(0, 3000));
          const auto len = std::chrono::milliseconds(rng.between(100, 20000));
          o.partitions.push_back({start, start + len, {rng.below(o.nodes)}});
        }
        if (rng.chance(0.3)) o.session_lifetime = std::chrono::seconds(rng.between(3, 30));
        return o;
      },
      [](const ScenarioOptions& o, const ScenarioResult& r) {
        EXPECT_EQ(r.acked_not_delivered, 0u);
        EXPECT_EQ(r.unreported, 0u);
        EXPECT_EQ(r.unknown_reports, 0u);
        EXPECT_EQ(r.foreign_deliveries, 0u);
        EXPECT_EQ(r.publish_abandoned, 0u);
        EXPECT_EQ(r.qos_mismatch, 0u);
        EXPECT_LE(r.delivered, r.expected_deliveries);
        if (o.qos == Qos::exactly_once) {
          EXPECT_EQ(r.duplicates, 0u);
        }
      });
}

}  // namespace
}  // namespace nomq::sim
