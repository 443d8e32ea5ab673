// This node's identity on the wire: the session id, the v2 sequence numbers, message ids and
// v1 packet ids/nonces, session renewal and the heartbeat timer (docs/engine.md §3, §11, §12).
#pragma once

#include <cstdint>
#include <optional>

#include "core/counters.hpp"

namespace nomq::detail {

class Publisher;
class Subscriptions;

// A random 32-bit value other than 0 (0 means "none" in session and message ids).
std::uint32_t draw_nonzero(Rng& rng) noexcept;

class Session {
 public:
  // Draws the session id, the first message id and the v1 counter's start, in that order.
  Session(const Context& ctx, Subscriptions& subs, Instant now);

  std::uint32_t id() const noexcept { return id_; }
  // A packet of ours looped back (this session or the previous one).
  bool is_own(std::uint32_t session) const noexcept {
    return session == id_ || (prev_ != 0 && session == prev_) ||
           (epoch_prev_ != 0 && session == epoch_prev_);
  }
  // Whether this node can have sent sequence number `seq` under `session` (one of its own):
  // below the next one of the current session, below where the previous session ended. A
  // datagram under our session id with any other number was made by another key holder
  // (self-impersonation, docs/security.md M2).
  bool could_have_sent(std::uint32_t session, std::uint32_t seq) const noexcept {
    if (session == id_) return seq < next_seq_;
    if (epoch_prev_ != 0 && session == epoch_prev_) return seq < epoch_prev_seq_;
    return session == prev_ && seq < prev_end_seq_;
  }
  // Renews at once (impersonation detected): the forged sequence number has poisoned every
  // receiver's window of the current session; the new one starts clean and is announced.
  void renew_now(Instant now) noexcept;
  // The key ring switched epochs (docs/engine.md §19): a new session under the new epoch's tag,
  // announced. The session of the previous epoch stays usable (previous_epoch_session(),
  // take_previous_epoch_sequence()) for the retransmissions of publishes first sent under it.
  void switch_epoch(Instant now) noexcept;
  std::uint32_t previous_epoch_session() const noexcept { return epoch_prev_; }
  std::uint32_t take_previous_epoch_sequence() noexcept { return epoch_prev_seq_++; }
  // The v2 sequence number of the next datagram.
  std::uint32_t take_sequence() noexcept { return next_seq_++; }
  // The sequence number the next datagram takes, and the next message id (session_state()).
  std::uint32_t next_sequence() const noexcept { return next_seq_; }
  std::uint32_t next_message_id() const noexcept { return next_message_id_; }
  // The next v2 message id (never 0).
  std::uint32_t take_message_id() noexcept;
  // v1 PUBLISH nonces and packet ids: a counter from a random start (docs/engine.md, "v1
  // nonces and packet ids come from a counter").
  std::uint32_t take_v1_id() noexcept;

  // Before a datagram is encoded (v2): renews now if the sequence number is about to wrap.
  void renew_if_exhausted(Instant now) noexcept;
  // Renewal when due and allowed (no QoS 2 publish of `publisher` waits for a PUBREC), then
  // the heartbeat round. v2, open engines only.
  void handle_timeout(Instant now, const Publisher& publisher) noexcept;
  // Tests only (EngineTesting::set_next_sequence).
  void set_next_sequence(std::uint32_t seq) noexcept { next_seq_ = seq; }
  // close(): no announcement on a later renewal.
  void close() noexcept { closed_ = true; }
  // The heartbeat, and a renewal still in the future (a deferred renewal is retried at the
  // next timer that fires: a deadline already past would make the caller spin).
  std::optional<Instant> next_deadline(Instant last_now) const noexcept;

 private:
  void renew(Instant now) noexcept;
  std::uint32_t draw_id() noexcept;

  const Context& c_;  // Engine::Impl::ctx (outlives every component)
  Subscriptions& subs_;
  std::uint32_t id_ = 0;
  std::uint32_t prev_ = 0;
  Instant start_{};
  std::uint32_t next_seq_ = 1;
  std::uint32_t prev_end_seq_ = 0;  // next_seq_ of the previous session when it ended
  std::uint32_t epoch_prev_ = 0;      // the session of the previous key epoch (0: none)
  std::uint32_t epoch_prev_seq_ = 0;  // its next sequence number
  std::uint32_t next_message_id_ = 1;
  std::uint32_t v1_counter_ = 0;
  Instant next_heartbeat_{};
  bool closed_ = false;
};

}  // namespace nomq::detail
