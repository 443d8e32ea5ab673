#include "core/solicitation.hpp"

#include <algorithm>

#include "core/gcra.hpp"
#include "core/outbox.hpp"
#include "core/reachability.hpp"
#include "core/publisher.hpp"
#include "core/retained_replay.hpp"
#include "core/subscriptions.hpp"

namespace nomq::detail {
namespace {

// Answers one solicitor session may get at once before the rate limit applies: the start-up
// schedule (at most 8 rounds at default timers) plus the first backoff rounds of a waiting
// publish, so an honest solicitor is never throttled.
constexpr std::int64_t kSolicitBurst = 16;


}  // namespace

Solicitation::Solicitation(const Context& ctx, const Links& links, Instant now)
    : c_(ctx),
      l_(links),
      answers_(ctx.arena.make<Answer>(at_least_one(ctx.cfg.limits.max_peers))),
      limiter_(ctx.arena, at_least_one(ctx.cfg.limits.max_senders)) {
  if (ctx.cfg.wire != WireVersion::v2) return;
  // A fresh node knows nobody: ask at once, then again at doubling gaps (loss), each early
  // enough that the answers, delayed by up to retained_answer_max_delay, land within the
  // discovery period.
  const Duration period = ctx.cfg.timers.discovery_period;
  discovery_end_ = now + (period.count() > 0 ? period : Duration{0});
  start_ = now;
  base_ = period / 256;
  if (base_.count() > 0) {
    while (rounds_ < 30 && offset(rounds_) + ctx.cfg.timers.retained_answer_max_delay <= period) {
      ++rounds_;
    }
  }
  queue_solicit();
  round_ = 1;
  if (rounds_ > 1) {
    armed_ = true;
    next_ = now + offset(1);
  }
}

void Solicitation::queue_solicit(const Endpoint* to) noexcept {
  OutItem hb;
  hb.type = wire::PacketType::heartbeat;
  hb.flags = wire::kFlagSolicit;
  hb.to_group = to == nullptr;
  if (to != nullptr) hb.to = *to;
  if (!l_.outbox.push(0, hb)) {
    c_.counters.drop(Errc::queue_full);
    return;
  }
  c_.counters.add(&EngineStats::solicitations_sent);
}

void Solicitation::start_backoff(Instant now) noexcept {
  round_ = rounds_;
  gap_ = std::max<Duration>(c_.cfg.timers.retransmit_initial, Duration{1000});
  next_ = now + gap_;
  armed_ = true;
}

void Solicitation::on_publish_waiting(Instant now) noexcept {
  if (armed_) return;
  queue_solicit();
  start_backoff(now);
}

void Solicitation::handle_timeout(Instant now) noexcept {
  run_round(now);
  send_due_answers(now);
}

void Solicitation::run_round(Instant now) noexcept {
  if (!armed_ || now < next_) return;
  if (round_ < rounds_) {
    queue_solicit();
    ++round_;
    if (round_ < rounds_) {
      next_ = start_ + offset(round_);
    } else if (l_.publisher.publish_waiting()) {
      start_backoff(now);
    } else {
      armed_ = false;
    }
    return;
  }
  // Backoff phase: only while a publish still waits for its first subscriber.
  if (!l_.publisher.publish_waiting()) {
    armed_ = false;
    return;
  }
  queue_solicit();
  gap_ = std::min<Duration>(gap_ * 2, std::max<Duration>(c_.cfg.timers.retransmit_max, gap_));
  next_ = now + gap_;
}

Duration Solicitation::answer_window(std::size_t peers) const noexcept {
  const Duration max = c_.cfg.timers.retained_answer_max_delay;
  const std::size_t n = peers == 0 ? 1 : peers;
  const Duration spread = c_.cfg.timers.solicit_answer_spread;
  if (spread.count() <= 0) return Duration{0};
  if (n >= static_cast<std::size_t>(max / spread)) return max;
  return std::min(max, spread * static_cast<std::int64_t>(n));
}

void Solicitation::on_solicit(std::uint32_t session, const Endpoint& from, Instant now,
                              std::size_t peers) noexcept {
  if (closed_ || l_.subs.active_count() == 0) return;  // nothing to announce
  Answer* slot = nullptr;
  for (Answer& a : answers_) {
    if (!a.used) {
      slot = &a;
      break;
    }
  }
  if (slot == nullptr || !admit(session, now)) {
    c_.counters.add(&EngineStats::solicitations_suppressed);
    return;
  }
  // Spread the answers of many peers over the delay (the solicitor's receive queue); with few
  // peers the window is short, so a fresh publisher hears them at once.
  const Duration delay = random_delay(c_.rng, answer_window(peers));
  *slot = Answer{from, now + delay, true};
  ++answers_used_;
}

// GCRA per solicitor session: a burst of kSolicitBurst answers, then one per interval. The
// table holds max_senders sessions and reuses only an entry whose time has passed (it carries
// no debt), so a key holder cannot make this node answer without bound by minting session ids.
bool Solicitation::admit(std::uint32_t session, Instant now) noexcept {
  return gcra_admit(limiter_, session, now, c_.cfg.timers.solicit_answer_interval, kSolicitBurst);
}

void Solicitation::send_due_answers(Instant now) noexcept {
  if (answers_used_ == 0) return;
  for (Answer& a : answers_) {
    if (!a.used || a.due > now) continue;
    a.used = false;
    --answers_used_;
    if (closed_) continue;
    // An unverified solicitor gets the answer only within its amplification budget; else it is
    // owed until the endpoint echoes our challenge (docs/engine.md §17).
    if (!l_.reach.admit_work(a.to, l_.subs.announce_all_bytes(), false, now)) continue;
    l_.subs.announce_all_to(a.to);
    c_.counters.add(&EngineStats::solicitations_answered);
  }
}

std::optional<Instant> Solicitation::next_deadline() const noexcept {
  std::optional<Instant> t;
  if (armed_) t = next_;
  if (answers_used_ == 0) return t;
  for (const Answer& a : answers_) {
    if (a.used && (!t || a.due < *t)) t = a.due;
  }
  return t;
}

}  // namespace nomq::detail
