// Wall-clock steps (NTP at boot, a manual correction) during QoS 1/2 streams. Timers run on the
// monotonic clock, so a step changes only what goes on the wire: while a node's wall clock
// disagrees with the others beyond the timestamp window its datagrams are refused (counted
// stale_timestamp, raised as clock_skew peer events on both sides), its QoS 1/2 publishes keep
// being retransmitted at their usual pace, and once the clocks agree again every message is
// delivered (QoS 2 exactly once) or reported failed by its publisher: nothing is lost silently.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "sim/simulator.hpp"
#include "sim_test_support.hpp"

namespace nomq::sim {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kPublisher = 0;
constexpr std::size_t kSubscribers = 2;  // nodes 1 and 2
const char* const kChannels[2] = {"clock/q1", "clock/q2"};

struct Published {
  Qos qos = Qos::at_least_once;
  Instant at{};
  bool reported = false;
  Errc reason = Errc::ok;
  std::vector<Recipient> recipients;
};

// Everything the hooks saw, keyed by (channel, message text).
struct Observed {
  std::map<std::string, Published> published;                   // by message text
  std::map<std::pair<std::size_t, std::string>, int> received;  // (node, text) -> deliveries
  std::map<std::pair<std::size_t, std::string>, Instant> first_received;
  std::vector<std::pair<std::size_t, PeerEvent>> skews;         // (observing node, event)
};

struct StepPlan {
  std::size_t node = kPublisher;          // whose wall clock is stepped
  std::optional<WallTime> boot_wall;      // set at the start (before NTP), if any
  Duration step{0};                       // applied at step_at
  Duration step_at{0};                    // offsets from the start of the stream
  Duration restore_at{0};                 // the clocks agree again from here
  std::uint16_t ttl_s = 3600;
  Duration stream = 90s;                  // one publish every `gap` for this long
  Duration gap = 500ms;
};

class ClockStep {
 public:
  ClockStep(std::uint64_t seed, const StepPlan& plan) : plan_(plan), sim_(options(seed)) {
    EngineConfig c;
    c.timers.heartbeat_interval = 2s;
    c.timers.session_timeout = 3600s;  // a stepped node is not forgotten while it is refused
    c.limits.max_pending = 256;        // everything published while refused stays pending
    sim_.set_hooks(hooks());
    for (std::size_t i = 0; i <= kSubscribers; ++i) sim_.add_node(c);
    if (plan_.boot_wall) sim_.set_wall_clock(plan_.node, *plan_.boot_wall);
    for (std::size_t s = 1; s <= kSubscribers; ++s) {
      for (const char* ch : kChannels) EXPECT_TRUE(sim_.subscribe(s, ch).ok());
    }
  }

  // Runs the stream, the step and its restoration, then lets every publish finish.
  void run() {
    sim_.run_until(sim_.now() + 10s);  // discovery settles (unless a clock is already off)
    start_ = sim_.now();
    sim_.at(start_ + plan_.step_at, [this] {
      if (plan_.step.count() != 0) sim_.step_wall_clock(plan_.node, plan_.step);
    });
    sim_.at(start_ + plan_.restore_at, [this] {
      // NTP (or the operator) brings the node back to the others' time.
      sim_.set_wall_clock(plan_.node, sim_.wall_now(plan_.node == 0 ? 1 : 0));
    });
    for (Duration t{0}; t < plan_.stream; t += plan_.gap, ++planned_) {
      sim_.at(start_ + t, [this, n = static_cast<int>(planned_)] { publish(n); });
    }
    const Instant limit = start_ + plan_.stream + std::chrono::seconds(plan_.ttl_s) + 300s;
    sim_.run_until([this] { return all_reported(); }, limit);
    sim_.run_until(sim_.now() + 30s);  // late duplicates would show up here
  }

  const Observed& seen() const { return seen_; }
  Simulator& sim() { return sim_; }
  Instant start() const { return start_; }
  Instant restored_at() const { return start_ + plan_.restore_at; }

  bool all_reported() const {
    if (seen_.published.size() < planned_) return false;
    for (const auto& [text, p] : seen_.published)
      if (!p.reported) return false;
    return true;
  }

  // The message's lifetime overlapped the time the stepped node's clock disagreed.
  bool lifetime_overlaps_skew(const Published& p) const {
    const Instant from = plan_.boot_wall ? Instant{} : start_ + plan_.step_at;
    return p.at + std::chrono::seconds(plan_.ttl_s) > from && p.at < start_ + plan_.restore_at;
  }

 private:
  static Simulator::Options options(std::uint64_t seed) {
    Simulator::Options o;
    o.seed = seed;
    o.link.delay = 5ms;
    o.link.jitter = 3ms;
    o.link.loss = 0.1;
    o.link.duplicate = 0.05;
    o.link.reorder = 0.05;
    return o;
  }

  void publish(int n) {
    const Qos qos = n % 2 == 0 ? Qos::at_least_once : Qos::exactly_once;
    const std::string text = std::string("m").append(std::to_string(n));  // not "m" + ...: g++ 12 -O3 false -Wrestrict
    PublishOptions po;
    po.qos = qos;
    po.ttl_s = plan_.ttl_s;
    const auto r = sim_.publish(kPublisher, kChannels[n % 2], as_bytes(text), po);
    ASSERT_TRUE(r.ok()) << "publish " << n << ": " << to_string(r.error());
    ids_[*r] = text;
    Published& p = seen_.published[text];
    p.qos = qos;
    p.at = sim_.now();
  }

  SimHooks hooks() {
    SimHooks h;
    h.on_message = [this](std::size_t node, std::uint32_t, const MessageEvent& m, Instant t) {
      const std::pair<std::size_t, std::string> key{node, std::string(as_string_view(m.message))};
      if (seen_.received[key]++ == 0) seen_.first_received[key] = t;
    };
    h.on_report = [this](std::size_t, std::uint32_t, const DeliveryReport& r, Instant) {
      const auto it = ids_.find(r.message_id);
      ASSERT_NE(it, ids_.end()) << "report for an unknown message id";
      Published& p = seen_.published[it->second];
      EXPECT_FALSE(p.reported) << it->second << " reported twice";
      p.reported = true;
      p.reason = r.reason;
      p.recipients.assign(r.recipients.begin(), r.recipients.end());
    };
    h.on_peer = [this](std::size_t node, std::uint32_t, const PeerEvent& e, Instant) {
      if (e.kind == PeerEvent::Kind::clock_skew) seen_.skews.emplace_back(node, e);
    };
    return h;
  }

  StepPlan plan_;
  Simulator sim_;
  Instant start_{};
  std::size_t planned_ = 0;  // publishes the stream schedules
  std::map<MessageId, std::string> ids_;
  Observed seen_;
};

// Whether the report lists node `s` (by its session) as having the message.
bool report_names_as_delivered(ClockStep& run, const Published& p, std::size_t s) {
  const std::uint32_t session = run.sim().engine(s).session_id();
  for (const Recipient& r : p.recipients) {
    if (r.session_id == session &&
        (r.state == RecipientState::acknowledged || r.state == RecipientState::received)) {
      return true;
    }
  }
  return false;
}

// Every publish was reported, and its report tells the truth: a subscriber it names as
// acknowledged received the message (QoS 2 exactly once); with reason ok, every recipient it
// names did. `require_all`: moreover every subscriber got every message whose report is ok
// (false where a publish waited for subscribers and went to the first ones found: a
// subscriber discovered after the report is not among its recipients, docs/engine.md).
// Returns how many deliveries came late (published before the clocks agreed again, first
// received after).
int check_nothing_lost(ClockStep& run, bool require_all = true) {
  int late = 0;
  for (const auto& [text, p] : run.seen().published) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(p.reported);
    int delivered_to = 0;
    for (std::size_t s = 1; s <= kSubscribers; ++s) {
      const auto it = run.seen().received.find({s, text});
      const int count = it == run.seen().received.end() ? 0 : it->second;
      if (p.qos == Qos::exactly_once) {
        EXPECT_LE(count, 1) << "QoS 2 delivered twice to node " << s;
      }
      if (count == 0) {
        EXPECT_FALSE(report_names_as_delivered(run, p, s))
            << "node " << s << " never got it, its report says it did";
        if (require_all) {
          EXPECT_NE(p.reason, Errc::ok) << "node " << s << " never got it, report says ok";
        }
        continue;
      }
      ++delivered_to;
      const Instant first = run.seen().first_received.at({s, text});
      if (p.at < run.restored_at() && first >= run.restored_at()) ++late;
    }
    if (p.reason == Errc::ok) {
      EXPECT_GE(delivered_to, 1) << "reported ok, delivered to nobody";
    }
  }
  return late;
}

std::size_t skews_seen_by(const ClockStep& run, std::size_t node, std::int64_t near_s) {
  std::size_t n = 0;
  for (const auto& [observer, e] : run.seen().skews) {
    if (observer == node && e.clock_offset_s >= near_s - 2 && e.clock_offset_s <= near_s + 2) ++n;
  }
  return n;
}

constexpr std::uint64_t kStepSeeds = 5;

// `node`'s wall clock steps by `step` 20 s into the stream and is put back 30 s later.
StepPlan step_for_30s(Duration step, std::size_t node = kPublisher) {
  StepPlan plan;
  plan.node = node;
  plan.step = step;
  plan.step_at = 20s;
  plan.restore_at = 50s;
  return plan;
}

void expect_every_report_ok(const ClockStep& run) {
  for (const auto& [text, p] : run.seen().published) {
    EXPECT_EQ(p.reason, Errc::ok) << text << ": " << to_string(p.reason);
  }
}

TEST(ClockStep, PublisherOneHourAheadThenBack) {
  for (std::uint64_t seed = 1; seed <= kStepSeeds; ++seed) {
    SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
    ClockStep run{seed, step_for_30s(3600s)};
    run.run();
    const int delivered_late = check_nothing_lost(run);
    expect_every_report_ok(run);
    EXPECT_GT(delivered_late, 0) << "messages published while skewed arrived only after restore";
    // Reported, on both sides: subscribers saw the publisher an hour ahead, the publisher saw
    // the subscribers an hour behind.
    EXPECT_GE(skews_seen_by(run, 1, 3600), 1u);
    EXPECT_GE(skews_seen_by(run, 2, 3600), 1u);
    EXPECT_GE(skews_seen_by(run, kPublisher, -3600), 1u);
    EXPECT_GT(run.sim().engine(1).stats().dropped_by(Errc::stale_timestamp), 0u);
  }
}

TEST(ClockStep, PublisherOneHourBehindThenBackKeepsTimerPace) {
  for (std::uint64_t seed = 1; seed <= kStepSeeds; ++seed) {
    SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
    const StepPlan plan = step_for_30s(-3600s);
    ClockStep run{seed, plan};
    // Probes of the publisher's next deadline, once a second while its clock is behind
    // (run() starts the stream 10 s after set-up).
    Duration longest{0};
    for (Duration t = 10s + plan.step_at + 1s; t < 10s + plan.restore_at; t += 1s) {
      run.sim().at(run.sim().now() + t, [&run, &longest] {
        if (const auto d = run.sim().engine(kPublisher).next_deadline()) {
          longest = std::max(longest, *d - run.sim().now());
        }
      });
    }
    run.run();
    check_nothing_lost(run);
    expect_every_report_ok(run);
    // Heartbeats every 2 s and retransmissions keep the publisher's next deadline close.
    EXPECT_GT(longest, Duration{0});
    EXPECT_LE(longest, 2s) << "a timer drifted while the wall clock was an hour behind";
    EXPECT_GE(skews_seen_by(run, 1, -3600), 1u);
    EXPECT_GE(skews_seen_by(run, kPublisher, 3600), 1u);
  }
}

TEST(ClockStep, SubscriberOneHourAheadThenBack) {
  for (std::uint64_t seed = 1; seed <= kStepSeeds; ++seed) {
    SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
    ClockStep run{seed, step_for_30s(3600s, 2)};
    run.run();
    EXPECT_GT(check_nothing_lost(run), 0);
    expect_every_report_ok(run);
    EXPECT_GE(skews_seen_by(run, 2, -3600), 1u);           // the stepped node sees the others
    EXPECT_GE(skews_seen_by(run, kPublisher, 3600), 1u);   // and they see it
  }
}

// An ESP32 boots with its clock at 2000-01-01 and publishes before NTP sets it.
TEST(ClockStep, BootAt2000ThenNtp) {
  for (std::uint64_t seed = 1; seed <= kStepSeeds; ++seed) {
    SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
    StepPlan plan;
    plan.boot_wall = WallTime{std::chrono::seconds(kEpoch2000Offset)};
    plan.restore_at = 15s;
    ClockStep run{seed, plan};
    run.run();
    // The booting node heard no subscriber before NTP: its publishes waited, and went to the
    // subscribers it found first once its clock was right.
    EXPECT_GT(check_nothing_lost(run, false), 0);
    expect_every_report_ok(run);
    // The simulator's wall clocks start at 2026-01-01 (1767225600).
    const std::int64_t behind = std::int64_t{kEpoch2000Offset} - 1767225600;
    EXPECT_GE(skews_seen_by(run, 1, behind), 1u);
  }
}

// Messages whose TTL runs out while the clocks disagree are not delivered, and their publisher
// reports them expired with the recipients that never acknowledged: reported, not dropped.
TEST(ClockStep, ExpiryDuringSkewIsReported) {
  for (std::uint64_t seed = 1; seed <= kStepSeeds; ++seed) {
    SCOPED_TRACE(std::string("seed ").append(std::to_string(seed)));
    StepPlan plan = step_for_30s(3600s);
    plan.restore_at = 80s;  // 60 s: longer than the TTL
    plan.ttl_s = 15;
    ClockStep run{seed, plan};
    run.run();
    check_nothing_lost(run);
    int expired = 0;
    for (const auto& [text, p] : run.seen().published) {
      if (p.reason == Errc::expired) {
        ++expired;
        EXPECT_TRUE(run.lifetime_overlaps_skew(p)) << text << " expired, clocks agreed all its life";
        for (const Recipient& r : p.recipients) {
          EXPECT_NE(r.state, RecipientState::pending);
        }
      }
    }
    EXPECT_GT(expired, 0);
  }
}

}  // namespace
}  // namespace nomq::sim
