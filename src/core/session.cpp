#include "core/session.hpp"

#include "core/publisher.hpp"
#include "core/subscriptions.hpp"

namespace nomq::detail {
namespace {

// A v2 session is renewed before its sequence numbers come near the 32-bit wrap.
constexpr std::uint32_t kSeqRenewSoft = 0xF0000000u;  // renew at the next quiet moment
constexpr std::uint32_t kSeqRenewHard = 0xFFFF0000u;  // renew now

}  // namespace

std::uint32_t draw_nonzero(Rng& rng) noexcept {
  std::uint32_t v = 0;
  while (v == 0) v = rng.random_u32();
  return v;
}

Session::Session(const Context& ctx, Subscriptions& subs, Instant now) : c_(ctx), subs_(subs) {
  id_ = draw_id();
  next_message_id_ = draw_nonzero(c_.rng);
  v1_counter_ = c_.rng.random_u32();
  // A resumed session must carry the epoch tag of the keys it is sent under (a config rotated
  // between the two runs starts a new session instead: receivers pick keys by the tag).
  if (const SessionResume& r = c_.cfg.resume;
      c_.cfg.wire == WireVersion::v2 && r.session_id != 0 &&
      wire::session_epoch_tag(r.session_id) == wire::epoch_tag(c_.keys.sending_epoch())) {
    id_ = r.session_id;  // continued: sequence numbers above those the session used
    next_seq_ = r.next_sequence != 0 ? r.next_sequence : 1;
    if (r.next_message_id != 0) next_message_id_ = r.next_message_id;
  }
  start_ = now;
  next_heartbeat_ = now + c_.cfg.timers.heartbeat_interval;
}

std::uint32_t Session::take_message_id() noexcept {
  const std::uint32_t id = next_message_id_++;
  if (next_message_id_ == 0) next_message_id_ = 1;
  return id;
}

// A counter, not a fresh random draw each: the 4-byte nonce is all a v1 receiver's replay cache
// keys on (ours holds 1024, the original's 100), so random draws collided with this sender's
// own recent nonces at 1024 / 2^32 per message once the cache was full: the receiver took the
// new message for a replay (QoS 2: answered PUBREC without delivering). A counter never repeats
// within 2^32 publishes; collisions with other senders' nonces remain.
std::uint32_t Session::take_v1_id() noexcept {
  if (++v1_counter_ == 0) v1_counter_ = 1;
  return v1_counter_;
}

void Session::renew_if_exhausted(Instant now) noexcept {
  if (c_.cfg.wire == WireVersion::v2 && next_seq_ >= kSeqRenewHard) renew(now);
}

void Session::handle_timeout(Instant now, const Publisher& publisher) noexcept {
  const bool lifetime_over = now - start_ >= c_.cfg.timers.session_lifetime;
  // A retransmission under a new session id would defeat the receivers' (session, message id)
  // deduplication: wait while a QoS 2 PUBLISH is unanswered.
  if ((lifetime_over || next_seq_ >= kSeqRenewSoft) && !publisher.qos2_publish_in_flight()) {
    renew(now);
    next_heartbeat_ = now + c_.cfg.timers.heartbeat_interval;
  }
  if (now >= next_heartbeat_) {
    subs_.announce_all();
    next_heartbeat_ = now + c_.cfg.timers.heartbeat_interval;
  }
}

std::optional<Instant> Session::next_deadline(Instant last_now) const noexcept {
  const Instant renew_at = start_ + c_.cfg.timers.session_lifetime;
  if (renew_at > last_now && renew_at < next_heartbeat_) return renew_at;
  return next_heartbeat_;
}

void Session::renew_now(Instant now) noexcept {
  if (c_.cfg.wire != WireVersion::v2 || closed_) return;
  renew(now);
  next_heartbeat_ = now + c_.cfg.timers.heartbeat_interval;
}

// v2: the top two bits carry the key epoch's tag (docs/protocol.md §6.1), so a new epoch is a
// new session; v1 session ids never leave the node (the v1 header has none).
std::uint32_t Session::draw_id() noexcept {
  for (;;) {
    std::uint32_t id = draw_nonzero(c_.rng);
    if (c_.cfg.wire == WireVersion::v2) id = wire::tag_session(id, c_.keys.sending_epoch());
    if (id != 0) return id;
  }
}

void Session::switch_epoch(Instant now) noexcept {
  if (c_.cfg.wire != WireVersion::v2) return;
  epoch_prev_ = id_;
  epoch_prev_seq_ = next_seq_;
  renew(now);
  next_heartbeat_ = now + c_.cfg.timers.heartbeat_interval;
}

void Session::renew(Instant now) noexcept {
  prev_ = id_;
  prev_end_seq_ = next_seq_;
  do {
    id_ = draw_id();
  } while (id_ == prev_);
  next_seq_ = 1;
  start_ = now;
  // Peers learn the new session at once (they see it as a restart of this endpoint).
  if (c_.cfg.wire == WireVersion::v2 && !closed_) subs_.announce_all();
}

}  // namespace nomq::detail
