// Start-up discovery by solicitation (v2, docs/engine.md §3): this node's soliciting HEARTBEATs
// (the start-up rounds, then backoff while a publish waits for subscribers) and its delayed
// answers to other nodes' solicitations, rate-limited per solicitor session by its own table.
#pragma once

#include <cstdint>
#include <optional>

#include "core/counters.hpp"
#include "core/fixed_map.hpp"
#include "nomq/crypto.hpp"
#include "nomq/engine.hpp"

namespace nomq::detail {

class Outbox;
class Publisher;
class Reachability;
class Subscriptions;

class Solicitation {
  struct Answer {
    Endpoint to;
    Instant due{};
    bool used = false;
  };
  using Limiter = FixedMap<std::uint32_t, Instant, U32Hash, U32Eq, std::uint16_t>;

 public:
  struct Links {
    Outbox& outbox;
    Subscriptions& subs;
    Publisher& publisher;
    Reachability& reach;
  };
  // v2: queues the first solicitation and plans the start-up rounds.
  Solicitation(const Context& ctx, const Links& links,
               Instant now);

  // The end of the discovery period (publishes made before it are held until then).
  Instant discovery_end() const noexcept { return discovery_end_; }
  // A group publish started waiting for its first subscriber: solicit now and back off, unless
  // a schedule runs already.
  void on_publish_waiting(Instant now) noexcept;
  // Asks the node at `to` alone for its subscriptions: it was verified after the sender table
  // had refused its session (issue 13 M3), so what it announced then never reached discovery.
  void solicit(const Endpoint& to) noexcept { queue_solicit(&to); }
  // A soliciting HEARTBEAT from `session` at `from`; `peers`: the sessions this node knows.
  void on_solicit(std::uint32_t session, const Endpoint& from, Instant now,
                  std::size_t peers) noexcept;
  // The longest an answer waits when this node knows `peers` sessions.
  Duration answer_window(std::size_t peers) const noexcept;
  // When the answers to this node's first solicitation can all have arrived, the answering
  // nodes knowing about as many peers as this one (docs/engine.md §3, fast first publish).
  Instant first_answers_by(std::size_t peers) const noexcept {
    return start_ + answer_window(peers) + c_.cfg.timers.discovery_settle;
  }
  // The next round (one per call) and the answers that are due.
  void handle_timeout(Instant now) noexcept;
  std::optional<Instant> next_deadline() const noexcept;
  // close(): no more answers.
  void close() noexcept { closed_ = true; }
  static constexpr std::size_t bytes_for(const EngineLimits& l) noexcept {
    return arena_bytes<Answer>(at_least_one(l.max_peers)) + Limiter::bytes_for(at_least_one(l.max_senders));
  }
  std::size_t state_bytes() const noexcept { return answers_.state_bytes() + limiter_.state_bytes(); }

 private:
  Duration offset(std::uint32_t round) const noexcept {
    return base_ * ((std::int64_t{1} << round) - 1);
  }
  void queue_solicit(const Endpoint* to = nullptr) noexcept;
  void start_backoff(Instant now) noexcept;
  void run_round(Instant now) noexcept;
  bool admit(std::uint32_t session, Instant now) noexcept;
  void send_due_answers(Instant now) noexcept;

  const Context& c_;  // Engine::Impl::ctx (outlives every component)
  Links l_;
  Instant discovery_end_{};
  Instant start_{};
  Duration base_{0};
  std::uint32_t rounds_ = 1;  // start-up schedule length
  std::uint32_t round_ = 0;   // next round; == rounds_: backoff phase
  bool armed_ = false;
  Instant next_{};
  Duration gap_{0};
  bool closed_ = false;
  FixedArray<Answer> answers_;  // scheduled answers (max_peers)
  std::size_t answers_used_ = 0;
  // GCRA theoretical arrival time per solicitor session (max_senders sessions; an entry whose
  // time has passed carries nothing and may be reused).
  Limiter limiter_;
};

}  // namespace nomq::detail
