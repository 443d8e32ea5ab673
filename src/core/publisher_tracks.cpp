// The publisher's per-recipient tracks: answers, retransmission timers, what the transmitter
// reports back, and the per-publish minimum-deadline cache next_deadline() reads
// (docs/engine.md §4, §5).
#include <cassert>

#include "core/key_ring.hpp"
#include "core/discovery.hpp"
#include "core/publisher.hpp"
#include "core/retransmit.hpp"

namespace nomq::detail {

using wire::PacketType;

// --- answers

void Publisher::on_reply(const wire::Packet& p, const Endpoint& from, Instant now) noexcept {
  const std::uint32_t slot = pending_.find(p.body.acked_id);
  if (slot == kNoSlot || pending_.value(slot).finished) {
    return c_.counters.drop(Errc::unexpected_packet);
  }
  const Pending& e = pending_.value(slot);
  if ((p.type == PacketType::ack) == (e.qos == Qos::exactly_once)) {
    return c_.counters.drop(Errc::unexpected_packet);
  }
  // An answer is sealed with the key set of the publish it answers (docs/engine.md §20): a
  // group member without the channel key cannot acknowledge on a subscriber's behalf.
  if (v2_ && l_.outbox.reply_key() != c_.keys.channel_key_for(l_.pool.name(e.msg))) {
    return c_.counters.drop(Errc::wrong_channel_key);
  }
  std::uint32_t i = find_recipient(slot, p.session_id, from);
  // v1: matched by packet id alone. v2 explicit destination not heard from yet: the first
  // answer binds it (the node may answer from another port than the one addressed, e.g. when
  // the destination was its group port).
  if (i == kNoSlot && !e.group && e.count == 1 && (!v2_ || recipient(slot, 0).session_id == 0)) {
    i = 0;
  }
  if (i == kNoSlot) {
    // A subscriber we did not know heard the group transmission and answered: count it in.
    if (!e.group || p.type == PacketType::pubcomp) return c_.counters.drop(Errc::unexpected_packet);
    const std::uint16_t added = add_recipient(slot, from, p.session_id);
    if (added == kAllRecipients) return c_.counters.drop(Errc::unexpected_packet);
    if (e.reported) c_.counters.add(&EngineStats::late_recipients);
    recipient(slot, added).transmissions = 1;
    track(slot, added).phase_tx = 1;
    track(slot, added).first_tx = now;
    i = added;
  }
  Recipient& r = recipient(slot, i);
  const Track& t = track(slot, i);
  if (r.session_id == 0 || r.session_id != p.session_id) {
    r.session_id = p.session_id;
    note_recipient(slot, i);
  }
  // A node answers a PUBLISH only on a channel it subscribes to: that confirms a subscription
  // it inherited from its previous session as well as its own SUBSCRIBE would.
  if (v2_ && e.group) l_.discovery.confirm_if_tentative(p.session_id, p.channel_id);
  // Further packets (PUBREL, retransmissions) go where the answer came from.
  r.endpoint = from;
  switch (p.type) {
    case PacketType::ack:
      if (t.terminal) return c_.counters.drop(Errc::duplicate);
      make_terminal(slot, i, RecipientState::acknowledged, Errc::ok);
      break;
    case PacketType::pubrec:
      if (t.terminal || t.phase == 1) return c_.counters.drop(Errc::duplicate);
      on_pubrec(slot, i, now);
      break;
    case PacketType::pubcomp:
      if (t.terminal || t.phase != 1) return c_.counters.drop(Errc::duplicate);
      make_terminal(slot, i, RecipientState::acknowledged, Errc::ok);
      break;
    default:
      return c_.counters.drop(Errc::unexpected_packet);
  }
  check_complete(slot);
}

// QoS 2, first PUBREC: the PUBREL phase starts, its first PUBREL is sent at once.
void Publisher::on_pubrec(std::uint32_t p, std::uint32_t i, Instant now) noexcept {
  Track& t = track(p, i);
  t.phase = 1;
  t.phase_tx = 0;
  t.next = now;
  recipient(p, i).state = RecipientState::received;
  if (!t.queued && !queue_publish_to(p, static_cast<std::uint16_t>(i))) {
    t.next = now + c_.cfg.timers.retransmit_initial;
  }
  tracks_changed(p);
}

// --- timers

void Publisher::handle_timeout(Instant now) noexcept {
  pending_.for_each([&](std::uint32_t p) {
    Pending& e = pending_.value(p);
    if (e.finished) return;
    if (now >= e.expires) {
      for (std::uint32_t i = 0; i < e.count; ++i) end_recipient(p, i, Errc::expired);
      finish(p, e.count == 0 ? Errc::no_subscribers : Errc::expired);
      return;
    }
    if (e.count == 0) {
      if (now >= e.wait_until) finish(p, Errc::no_subscribers);
      return;
    }
    run_timers(p, now);
    check_complete(p);
  });
}

void Publisher::run_timers(std::uint32_t p, Instant now) noexcept {
  const Pending& e = pending_.value(p);
  for (std::uint16_t i = 0; i < e.count; ++i) {
    Track& tr = track(p, i);
    if (tr.terminal || tr.queued || now < tr.next) continue;
    if (c_.cfg.max_retries != 0 && tr.phase_tx >= c_.cfg.max_retries + 1) {
      end_recipient(p, i, Errc::timed_out);
      continue;
    }
    if (!v2_ && e.qos == Qos::exactly_once && tr.phase == 0 && recipient(p, i).transmissions > 0 &&
        now - tr.first_tx >= std::chrono::seconds(c_.cfg.timestamp_window_s)) {
      // Past the device's nonce lifetime a same-nonce retransmission would be delivered
      // again: stop, and say we cannot know (docs/engine.md, "v1 retransmission").
      make_terminal(p, i, RecipientState::unconfirmed, Errc::timed_out);
      continue;
    }
    if (!queue_publish_to(p, i)) {
      tr.next = now + c_.cfg.timers.retransmit_initial;
      tracks_changed(p);
    }
  }
}

// --- what the transmitter reports

bool Publisher::still_wanted(const OutItem& it) const noexcept {
  if (!pending_.used(it.pending) || generation_[it.pending] != it.pending_gen ||
      pending_.value(it.pending).finished) {
    return false;
  }
  if (it.recipient == kAllRecipients) {
    const Pending& e = pending_.value(it.pending);
    for (std::uint32_t k = 0; k < e.count; ++k) {
      const Track& t = track(it.pending, k);
      if (t.queued && !t.terminal && t.phase == 0) return true;
    }
    return false;
  }
  const Track& t = track(it.pending, it.recipient);
  const bool phase_ok = (it.type == PacketType::pubrel) == (t.phase == 1);
  return t.queued && !t.terminal && phase_ok;
}

void Publisher::for_tracks_of(const OutItem& it,
                              void (Publisher::*f)(std::uint32_t, std::uint32_t, Instant),
                              Instant now) noexcept {
  const Pending& e = pending_.value(it.pending);
  if (it.recipient == kAllRecipients) {
    for (std::uint32_t k = 0; k < e.count; ++k) (this->*f)(it.pending, k, now);
  } else if (it.recipient < e.count) {
    (this->*f)(it.pending, it.recipient, now);
  }
  tracks_changed(it.pending);
}

void Publisher::discarded(const OutItem& it) noexcept {
  if (!pending_.used(it.pending) || generation_[it.pending] != it.pending_gen) return;
  for_tracks_of(it, &Publisher::mark_unqueued, Instant{});
}

void Publisher::send_failed(const OutItem& it, Instant now) noexcept {
  for_tracks_of(it, &Publisher::mark_failed, now);
}

void Publisher::send_refused(const OutItem& it, Instant now) noexcept {
  for_tracks_of(it, &Publisher::mark_refused, now);
}

void Publisher::mark_refused(std::uint32_t p, std::uint32_t i, Instant now) noexcept {
  mark_failed(p, i, now);
  track(p, i).refused = true;
}

void Publisher::retry_refused(const Endpoint& to, Instant now) noexcept {
  pending_.for_each([&](std::uint32_t p) {
    const Pending& e = pending_.value(p);
    if (e.finished) return;
    bool changed = false;
    for (std::uint32_t i = 0; i < e.count; ++i) {
      Track& t = track(p, i);
      if (!t.refused || t.terminal || !(recipient(p, i).endpoint == to)) continue;
      t.refused = false;
      if (t.next > now) t.next = now;
      changed = true;
    }
    if (changed) tracks_changed(p);
  });
}

void Publisher::sent(const OutItem& it, Instant now) noexcept {
  for_tracks_of(it, &Publisher::mark_sent, now);
}

void Publisher::mark_unqueued(std::uint32_t p, std::uint32_t i, Instant) noexcept {
  track(p, i).queued = false;
}

void Publisher::mark_failed(std::uint32_t p, std::uint32_t i, Instant now) noexcept {
  track(p, i).queued = false;
  track(p, i).next = now + c_.cfg.timers.retransmit_initial;
}

void Publisher::mark_sent(std::uint32_t p, std::uint32_t i, Instant now) noexcept {
  Track& t = track(p, i);
  Recipient& rc = recipient(p, i);
  if (!t.queued || t.terminal) return;
  t.queued = false;
  t.refused = false;
  // A resend of what this recipient already got in this phase (PUBLISH, or PUBREL); the first
  // PUBREL is a new datagram, not a retransmission.
  if (t.phase_tx > 0) c_.counters.add(&EngineStats::retransmissions);
  if (rc.transmissions == 0) t.first_tx = now;
  ++rc.transmissions;
  ++t.phase_tx;
  t.next = now + retransmit_timeout(c_.cfg.timers.retransmit_initial, c_.cfg.timers.retransmit_max,
                                    t.phase_tx);
  if (!v2_ && t.phase == 0 && pending_.value(p).qos == Qos::exactly_once) {
    // End of the same-nonce window: decide there rather than at the next backoff step.
    const Instant window_end = t.first_tx + std::chrono::seconds(c_.cfg.timestamp_window_s);
    if (t.next > window_end) t.next = window_end;
  }
}

// --- deadlines

std::optional<Instant> Publisher::next_deadline() const noexcept {
  std::optional<Instant> t;
  auto consider = [&t](Instant x) {
    if (!t || x < *t) t = x;
  };
  // The node asks on every loop turn: only open publishes are visited, and each one's earliest
  // retransmission is cached (amortised O(1) per answer: recomputed after a change, not per
  // call).
  if (open_ == 0 && tail_ == 0) return t;
  pending_.scan([&](std::uint32_t p) {
    const Pending& e = pending_.value(p);
    if (e.finished) return;
    consider(e.expires);
    if (e.count == 0) consider(e.wait_until);
    if (e.hold_until > last_now_) consider(e.hold_until);
    if (!e.reported && e.count > 0 && e.settle_until > last_now_) consider(e.settle_until);
    if (!e.min_valid) refresh_min(p);
    check_min(p);
    if (e.min_any) consider(e.min);
  });
  return t;
}

void Publisher::refresh_min(std::uint32_t p) const noexcept {
  const Pending& e = pending_.value(p);
  e.min_any = false;
  for (std::uint32_t i = 0; i < e.count; ++i) {
    const Track& tr = track(p, i);
    if (tr.terminal || tr.queued) continue;
    if (!e.min_any || tr.next < e.min) {
      e.min = tr.next;
      e.min_at = static_cast<std::uint16_t>(i);
      e.min_any = true;
    }
  }
  e.min_valid = true;
}

// Debug builds assert the cache against a full scan; the per-engine test hook counts.
void Publisher::check_min(std::uint32_t p) const noexcept {
#ifdef NDEBUG
  if (!check_on_) return;
#endif
  const Pending& e = pending_.value(p);
  std::optional<Instant> scan;
  for (std::uint32_t i = 0; i < e.count; ++i) {
    const Track& tr = track(p, i);
    if (!tr.terminal && !tr.queued && (!scan || tr.next < *scan)) scan = tr.next;
  }
  const bool same = scan.has_value() == e.min_any && (!scan || *scan == e.min);
  if (check_on_) {
    ++check_.checks;
    if (!same) ++check_.mismatches;
  }
  assert(same);
}

}  // namespace nomq::detail
