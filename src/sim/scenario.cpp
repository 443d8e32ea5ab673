#include "sim/scenario.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <optional>
#include <unordered_map>

#include "sim/fail.hpp"
#include "sim/simulator.hpp"

namespace nomq::sim {

namespace {

constexpr std::uint32_t kNoGeneration = std::numeric_limits<std::uint32_t>::max();

struct MessageRecord {
  std::optional<Instant> published_at;
  Errc report = Errc::ok;
  bool reported = false;
  bool published = false;
  bool report_not_ok = false;
  bool report_expired = false;
};

struct PairRecord {
  std::uint32_t last_generation = kNoGeneration;
  bool named = false;
  bool delivered = false;
  bool reported_acked = false;
  bool reported_failed = false;
};

struct PublisherState {
  std::uint64_t next_k = 0;       // k-th message of this publisher
  std::optional<Instant> deferred_since;        // first backpressure on the current message
};

std::uint64_t report_key(std::size_t node, std::uint32_t generation, MessageId id) {
  return (std::uint64_t{node} << 48) | (std::uint64_t{generation & 0xffff} << 32) | id;
}

class Runner {
 public:
  explicit Runner(const ScenarioOptions& o) : o_(o) {}

  ScenarioResult run();

 private:
  void publish_next(std::size_t p);
  void on_message(std::size_t node, std::uint32_t gen, const MessageEvent& m, Instant now);
  void on_report(std::size_t node, std::uint32_t gen, const DeliveryReport& r, Instant now);
  void finish();
  void trace(Instant t, const std::string& line) {
    if (!o_.trace) return;
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%+.6f ",
                  static_cast<double>((t - pub_start_).count()) / 1e6);
    o_.trace(stamp + line);
  }
  static std::string hex32(std::uint32_t v) {
    char b[12];
    std::snprintf(b, sizeof b, "%08" PRIx32, v);
    return b;
  }
  const std::string& subscription() const {
    return o_.subscribe_filter.empty() ? o_.channel : o_.subscribe_filter;
  }
  // Indexes fit size_t: check_options() refuses more messages than a vector can hold here
  // (size_t has 32 bits on a microcontroller).
  PairRecord& pair(std::uint64_t index, std::size_t node) {
    return pairs_[static_cast<std::size_t>(index) * subscribers_ + (node - o_.publishers)];
  }
  MessageRecord& msg(std::uint64_t index) { return msgs_[static_cast<std::size_t>(index)]; }

  const ScenarioOptions& o_;
  std::unique_ptr<Simulator> sim_;
  std::size_t subscribers_ = 0;
  Instant start_{};
  Instant pub_start_{};
  Duration interval_{0};
  std::vector<MessageRecord> msgs_;
  std::vector<PairRecord> pairs_;
  std::vector<PublisherState> pubs_;
  std::size_t publishers_done_ = 0;
  std::unordered_map<std::uint64_t, std::uint64_t> outstanding_;  // report key -> message index
  std::string payload_;
  ScenarioResult r_;
};

void check_options(const ScenarioOptions& o) {
  auto bad = [](const std::string& what) { fail_invalid_argument(what); };
  if (o.nodes < 2 || o.nodes > 250) bad("--nodes must be 2..250, got " + std::to_string(o.nodes));
  if (o.publishers < 1 || o.publishers >= o.nodes) bad("--publishers must be 1.." + std::to_string(o.nodes - 1) + " with " + std::to_string(o.nodes) +
        " nodes (a node either publishes or subscribes), got " + std::to_string(o.publishers));
  // The run keeps a record per message and per (message, subscriber): they must fit in memory
  // (and in size_t, 32 bits on a microcontroller).
  if (o.messages > std::numeric_limits<std::size_t>::max() / 64 / o.nodes)
    bad("--messages " + std::to_string(o.messages) + " is too many for this machine");
  auto prob = [&](double p, const char* name) {
    if (!(p >= 0.0 && p <= 1.0)) bad("--" + std::string(name) + " must be a probability in [0, 1]");
  };
  prob(o.loss, "loss");
  prob(o.duplicate, "dup");
  prob(o.reorder, "reorder");
  if (o.loss >= 1.0 && o.qos != Qos::at_most_once) bad("--loss 1 drops everything: QoS 1/2 could only expire");
  if (o.delay.count() < 0 || o.jitter.count() < 0 || o.reorder_delay.count() < 0)
    bad("delay, jitter and reorder delay must not be negative");
  if (o.ttl_s == 0) bad("--ttl must be at least 1 second");
  if (!(o.rate > 0.0 && o.rate <= 1e6)) bad("--rate must be in (0, 1000000] messages/s");
  const std::string widest = scenario_payload(o.messages, 0);
  if (o.payload_size < widest.size())
    bad("--payload-size must be at least " + std::to_string(widest.size()) +
        " bytes to carry the message number");
  if (o.heartbeat.count() <= 0) bad("--heartbeat must be positive");
  if (o.session_lifetime.count() <= 0) bad("--session-lifetime must be positive");
  for (const auto& w : o.partitions) {
    if (w.start.count() < 0 || w.end <= w.start) bad("--partition needs 0 <= START < END");
    for (auto n : w.nodes)
      if (n >= o.nodes)
        bad("--partition names node " + std::to_string(n) + "; nodes are 0.." +
            std::to_string(o.nodes - 1));
  }
  for (auto t : o.subscriber_restarts)
    if (t.count() < 0) bad("--restart-subscriber-at must not be negative");
}

ScenarioResult Runner::run() {
  check_options(o_);
  subscribers_ = o_.nodes - o_.publishers;
  r_.subscribers = subscribers_;
  msgs_.resize(static_cast<std::size_t>(o_.messages));
  pairs_.resize(static_cast<std::size_t>(o_.messages) * subscribers_);
  pubs_.resize(o_.publishers);

  Simulator::Options so;
  so.seed = o_.seed;
  so.link.delay = o_.delay;
  so.link.jitter = o_.jitter;
  so.link.loss = o_.loss;
  so.link.duplicate = o_.duplicate;
  so.link.reorder = o_.reorder;
  so.link.reorder_delay = o_.reorder_delay;
  sim_ = std::make_unique<Simulator>(so);
  start_ = sim_->now();

  EngineConfig cfg = o_.profile == "small"  ? EngineConfig::small_profile()
                     : o_.profile == "seed" ? EngineConfig::seed_profile()
                                            : EngineConfig{};
  cfg.wire = o_.wire;
  cfg.default_ttl_s = o_.ttl_s;
  cfg.max_retries = o_.max_retries;
  cfg.limits.max_pending = o_.max_pending;
  cfg.timers.heartbeat_interval = o_.heartbeat;
  cfg.timers.retransmit_initial = o_.retransmit_initial;
  cfg.timers.session_lifetime = o_.session_lifetime;
  for (std::size_t i = 0; i < o_.nodes; ++i) sim_->add_node(cfg);

  SimHooks hooks;
  hooks.on_message = [this](std::size_t n, std::uint32_t g, const MessageEvent& m, Instant t) {
    on_message(n, g, m, t);
  };
  hooks.on_report = [this](std::size_t n, std::uint32_t g, const DeliveryReport& rep, Instant t) {
    on_report(n, g, rep, t);
  };
  if (o_.trace) {
    hooks.on_peer = [this](std::size_t n, std::uint32_t, const PeerEvent& pe, Instant t) {
      static constexpr const char* kinds[] = {"joined", "left", "restarted"};
      const auto who = sim_->node_of(pe.endpoint);
      trace(t, "node " + std::to_string(n) + ": peer " + kinds[static_cast<int>(pe.kind)] +
                   " node " + (who ? std::to_string(*who) : std::string("?")) + " session " +
                   hex32(pe.session_id));
    };
  }
  sim_->set_hooks(std::move(hooks));

  const std::size_t last = o_.nodes - 1;
  for (std::size_t s = o_.publishers; s < o_.nodes; ++s) {
    sim_->at(start_ + Duration{1000 * static_cast<std::int64_t>(s)}, [this, s] {
      auto res = sim_->subscribe(s, subscription(), 0);
      if (!res) fail_runtime("subscribe failed: " + std::string(res.error().message()));
    });
  }
  pub_start_ = start_ + o_.warmup;
  for (const auto& w : o_.partitions) {
    Partition p;
    p.start = pub_start_ + w.start;
    p.end = pub_start_ + w.end;
    p.nodes = w.nodes.empty() ? std::vector<std::size_t>{last} : w.nodes;
    if (o_.trace) {
      std::string names;
      for (auto n : p.nodes) {
        names += ' ';
        names += std::to_string(n);
      }
      sim_->at(p.start, [this, names] { trace(sim_->now(), "partition begins: cut off" + names); });
      sim_->at(p.end, [this, names] { trace(sim_->now(), "partition ends:" + names); });
    }
    sim_->add_partition(std::move(p));
  }
  for (auto t : o_.subscriber_restarts) {
    sim_->at(pub_start_ + t, [this, last] {
      sim_->restart(last);
      ++r_.restarts;
      trace(sim_->now(), "node " + std::to_string(last) + " restarted: session " +
                             hex32(sim_->engine(last).session_id()));
      auto res = sim_->subscribe(last, subscription(), 0);
      if (!res) fail_runtime("subscribe failed: " + std::string(res.error().message()));
    });
  }

  interval_ = Duration{std::max<std::int64_t>(1, static_cast<std::int64_t>(1e6 / o_.rate))};
  for (std::size_t p = 0; p < o_.publishers; ++p) {
    const auto offset = Duration{interval_.count() * static_cast<std::int64_t>(p) /
                                 static_cast<std::int64_t>(o_.publishers)};
    if (p >= o_.messages) {
      ++publishers_done_;
      continue;
    }
    sim_->at(pub_start_ + offset, [this, p] { publish_next(p); });
  }

  // Phase 1: every message published (or abandoned). Phase 2: every report in and nothing
  // left in flight, within a TTL (plus slack) of the last publish.
  const Instant forever{Duration{std::numeric_limits<std::int64_t>::max() / 2}};
  sim_->run_until([this] { return publishers_done_ == o_.publishers; }, forever);
  // The run also lasts until every scripted restart and partition end has happened.
  Instant scripted = sim_->now();
  for (const auto& w : o_.partitions) scripted = std::max(scripted, pub_start_ + w.end);
  for (auto t : o_.subscriber_restarts) scripted = std::max(scripted, pub_start_ + t);
  const Instant limit = std::max(sim_->now(), scripted) + std::chrono::seconds(o_.ttl_s) + 120s;
  sim_->run_until(
      [this, scripted] {
        return sim_->now() >= scripted && outstanding_.empty() && !sim_->datagrams_in_flight();
      },
      limit);
  finish();
  return std::move(r_);
}

void Runner::publish_next(std::size_t p) {
  PublisherState& st = pubs_[p];
  const std::uint64_t index = st.next_k * o_.publishers + p;
  const Instant now = sim_->now();
  const bool explicit_targets =
      o_.unicast || (o_.wire == WireVersion::v1 && o_.qos != Qos::at_most_once);
  const std::size_t needed =
      o_.qos == Qos::at_most_once ? 0 : (explicit_targets ? subscribers_ : 1);

  auto advance = [&] {
    st.deferred_since.reset();
    ++st.next_k;
    const std::uint64_t next = st.next_k * o_.publishers + p;
    if (next >= o_.messages) {
      ++publishers_done_;
      return;
    }
    const auto offset = Duration{interval_.count() * static_cast<std::int64_t>(p) /
                                 static_cast<std::int64_t>(o_.publishers)};
    const Instant nominal =
        pub_start_ + offset + Duration{interval_.count() * static_cast<std::int64_t>(st.next_k)};
    sim_->at(std::max(nominal, now), [this, p] { publish_next(p); });
  };
  auto defer = [&] {
    ++r_.publish_backpressure;
    if (!st.deferred_since) st.deferred_since = now;
    if (now - *st.deferred_since > std::chrono::seconds(o_.ttl_s) + 60s) {
      ++r_.publish_abandoned;
      advance();
      return;
    }
    sim_->at(now + std::min<Duration>(10ms, std::max<Duration>(interval_, 1ms)),
             [this, p] { publish_next(p); });
  };

  if (needed > 0 && sim_->engine(p).pending_count() + needed > o_.max_pending) {
    defer();
    return;
  }
  payload_ = scenario_payload(index, o_.payload_size);
  PublishOptions opts;
  opts.qos = o_.qos;
  opts.ttl_s = o_.ttl_s;
  opts.priority = o_.mixed_priority ? static_cast<std::uint8_t>((index * 7) % 16) : 0;
  const std::uint32_t gen = sim_->generation(p);
  bool any = false;
  // `target`: the subscriber node a destination belongs to (an error is reported to the
  // application for that subscriber), or o_.nodes for the group.
  auto attempt = [&](std::optional<Endpoint> dest, std::size_t target) -> bool {
    opts.destination = dest;
    auto res = sim_->publish(p, o_.channel, as_bytes(payload_), opts);
    if (!res) {
      if (res.error() == Errc::too_many_pending || res.error() == Errc::queue_full) return false;
      ++r_.publish_errors[std::string(to_string(res.error().code()))];
      if (target < o_.nodes) pair(index, target).reported_failed = true;
      return true;
    }
    any = true;
    if (o_.qos != Qos::at_most_once) outstanding_[report_key(p, gen, *res)] = index;
    return true;
  };
  if (explicit_targets) {
    for (std::size_t s = o_.publishers; s < o_.nodes; ++s) {
      if (!attempt(sim_->endpoint(s), s)) {
        // Checked pending_count() above, so only queue_full lands here. The application was
        // told (an error is a failure report), and retrying would publish the message twice
        // to the recipients already done.
        ++r_.publish_errors["queue_full"];
        pair(index, s).reported_failed = true;
      }
    }
  } else if (!attempt(std::nullopt, o_.nodes)) {
    if (!any) {
      defer();
      return;
    }
  }
  if (any) {
    ++r_.published;
    msg(index).published = true;
    msg(index).published_at = now;
  }
  advance();
}

void Runner::on_message(std::size_t node, std::uint32_t gen, const MessageEvent& m, Instant now) {
  const auto index = parse_scenario_payload(m.message);
  if (m.channel != o_.channel || !index || *index >= o_.messages || !msg(*index).published ||
      node < o_.publishers) {
    ++r_.foreign_deliveries;
    return;
  }
  ++r_.deliveries;
  MessageRecord& rec = msg(*index);
  PairRecord& pr = pair(*index, node);
  if (pr.last_generation == gen) {
    ++r_.duplicates;
  } else if (pr.delivered) {
    ++r_.redelivered_new_session;
  }
  pr.last_generation = gen;
  pr.delivered = true;
  if (rec.published_at && now > *rec.published_at + std::chrono::seconds(o_.ttl_s)) ++r_.delivered_after_expiry;
  if (m.qos != o_.qos) ++r_.qos_mismatch;
}

void Runner::on_report(std::size_t node, std::uint32_t gen, const DeliveryReport& rep, Instant now) {
  auto it = outstanding_.find(report_key(node, gen, rep.message_id));
  if (it == outstanding_.end()) {
    ++r_.unknown_reports;
    trace(now, "node " + std::to_string(node) + ": report for unknown message id " +
                   std::to_string(rep.message_id));
    return;
  }
  const std::uint64_t index = it->second;
  if (o_.trace && (rep.reason != Errc::ok ||
                   (o_.wire == WireVersion::v2 && rep.recipients.size() != subscribers_))) {
    std::string line = "node " + std::to_string(node) + ": report m" + std::to_string(index) +
                       " " + std::string(to_string(rep.reason)) + ":";
    for (const Recipient& rc : rep.recipients) {
      const auto n = sim_->node_of(rc.endpoint);
      line += " node " + (n ? std::to_string(*n) : std::string("?")) + "/" +
              hex32(rc.session_id) + "=" + std::string(to_string(rc.state));
    }
    trace(now, line);
  }
  outstanding_.erase(it);
  ++r_.reports[std::string(to_string(rep.reason))];
  MessageRecord& rec = msg(index);
  if (rep.reason == Errc::expired) rec.report_expired = true;
  if (!rec.reported || rep.reason != Errc::ok) rec.report = rep.reason;
  rec.reported = true;
  for (const Recipient& rc : rep.recipients) {
    const auto n = sim_->node_of(rc.endpoint);
    if (!n || *n < o_.publishers) continue;
    PairRecord& pr = pair(index, *n);
    pr.named = true;
    if (rc.state == RecipientState::acknowledged) {
      pr.reported_acked = true;
    } else {
      pr.reported_failed = true;
      rec.report_not_ok = true;
    }
  }
}

void Runner::finish() {
  r_.delivered_by_node.assign(o_.nodes, 0);
  for (std::uint64_t i = 0; i < o_.messages; ++i) {
    const MessageRecord& rec = msg(i);
    if (!rec.published) continue;
    bool lost = false;
    for (std::size_t s = o_.publishers; s < o_.nodes; ++s) {
      const PairRecord& pr = pair(i, s);
      if (pr.delivered) {
        ++r_.delivered;
        ++r_.delivered_by_node[s];
      }
      if (pr.reported_failed) {
        ++r_.failed_recipients;
        if (pr.delivered) ++r_.failed_but_delivered;
      }
      if (pr.reported_acked && !pr.delivered) ++r_.acked_not_delivered;
      if (!pr.delivered && !pr.reported_failed) {
        ++r_.lost_deliveries;
        lost = true;
        if (r_.lost_examples.size() < 10) {
          LostDelivery ld;
          ld.message = i;
          ld.publisher = static_cast<std::size_t>(i % o_.publishers);
          ld.subscriber = s;
          ld.published_at_s = static_cast<double>((rec.published_at.value_or(pub_start_) - pub_start_).count()) / 1e6;
          ld.report = rec.reported ? std::string(to_string(rec.report)) : "none";
          ld.named = pr.named;
          r_.lost_examples.push_back(std::move(ld));
        }
      }
    }
    if (lost) ++r_.lost;
    if (rec.report_not_ok) ++r_.reported_failed;
    if (rec.report_expired) ++r_.expired;
  }
  r_.expected_deliveries = r_.published * subscribers_;
  r_.unreported = outstanding_.size();
  r_.virtual_seconds = static_cast<double>((sim_->now() - start_).count()) / 1e6;

  const NetworkStats& net = sim_->network_stats();
  r_.datagrams_sent = net.datagrams_sent;
  r_.bytes_sent = net.bytes_sent;
  r_.dropped_loss = net.dropped_loss;
  r_.dropped_partition = net.dropped_partition;
  r_.dropped_no_route = net.dropped_no_route;
  r_.link_duplicated = net.duplicated;
  r_.link_reordered = net.reordered;
  r_.timer_stalls = net.timer_stalls;
  r_.trace_digest = sim_->trace_digest();
  const EngineStats es = sim_->engine_stats_total();
  r_.retransmissions = es.retransmissions;
  r_.duplicates_suppressed = es.duplicates_suppressed;
  for (std::size_t e = 1; e < kErrcCount; ++e)
    if (es.dropped[e] != 0) r_.engine_drops[std::string(to_string(static_cast<Errc>(e)))] = es.dropped[e];

  auto& v = r_.violations;
  if (o_.qos != Qos::at_most_once && r_.lost != 0) v.emplace_back("lost");
  if (o_.qos == Qos::exactly_once && r_.duplicates != 0) v.emplace_back("duplicates");
  if (r_.acked_not_delivered != 0) v.emplace_back("acked_not_delivered");
  if (r_.delivered_after_expiry != 0) v.emplace_back("delivered_after_expiry");
  if (r_.unreported != 0) v.emplace_back("unreported");
  if (r_.publish_abandoned != 0) v.emplace_back("publish_abandoned");
  if (r_.foreign_deliveries != 0) v.emplace_back("foreign_deliveries");
  if (r_.qos_mismatch != 0) v.emplace_back("qos_mismatch");
  if (r_.delivered > r_.expected_deliveries) v.emplace_back("delivered_exceeds_expected");
}

}  // namespace

std::string scenario_payload(std::uint64_t index, std::size_t size) {
  // Appended piece by piece: g++ 12 at -O3 reports a false -Wrestrict on
  // `"m" + std::to_string(index)` (the inlined operator+ on a temporary string).
  std::string s(1, 'm');
  s += std::to_string(index);
  s += ':';
  if (s.size() < size) s.append(size - s.size(), '.');
  return s;
}

std::optional<std::uint64_t> parse_scenario_payload(Bytes payload) {
  const std::string_view s = as_string_view(payload);
  if (s.size() < 3 || s[0] != 'm') return std::nullopt;
  std::uint64_t v = 0;
  std::size_t i = 1;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    if (i > 20) return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(s[i] - '0');
  }
  if (i == 1 || i >= s.size() || s[i] != ':') return std::nullopt;
  for (++i; i < s.size(); ++i)
    if (s[i] != '.') return std::nullopt;
  return v;
}

ScenarioResult run_scenario(const ScenarioOptions& options) { return Runner{options}.run(); }

}  // namespace nomq::sim
