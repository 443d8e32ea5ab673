#include "core/key_ring.hpp"
#include "core/publisher.hpp"
#include "core/engine_errors.hpp"
#include "core/sizing.hpp"

#include <algorithm>
#include <cassert>

#include "core/discovery.hpp"
#include "core/events.hpp"
#include "core/retained_replay.hpp"
#include "core/retransmit.hpp"
#include "core/session.hpp"
#include "core/solicitation.hpp"
#include "wire/utf8.hpp"

namespace nomq::detail {

using wire::PacketType;

Publisher::Publisher(const Context& ctx, const Links& links)
    : c_(ctx),
      l_(links),
      v2_(ctx.cfg.wire == WireVersion::v2),
      max_recipients_(recipients_per_publish(ctx.cfg.limits)),
      pending_(ctx.arena, at_least_one(ctx.cfg.limits.max_pending)),
      generation_(ctx.arena.make<std::uint32_t>(pending_.capacity())),
      recipients_(ctx.arena.make<Recipient>(pending_.capacity() * max_recipients_)),
      tracks_(ctx.arena.make<Track>(pending_.capacity() * max_recipients_)),
      recipient_hint_(ctx.arena.make<std::uint16_t>(pending_.capacity() * max_recipients_)),
      last_channel_(ctx.arena.make<char>(ctx.cfg.limits.max_channel_name)) {}

void Publisher::begin_call(Instant last_now) noexcept {
  last_now_ = last_now;
  if (deferred_free_ == kNoSlot) return;
  const std::uint32_t p = deferred_free_;
  deferred_free_ = kNoSlot;
  l_.pool.unref(pending_.value(p).msg);
  ++generation_[p];
  pending_.erase_slot(p);
}

// --- publish

Result<void> Publisher::check_publish(std::string_view channel, Bytes message,
                                      const PublishOptions& options) const noexcept {
  if (channel.empty() || options.priority > 15 || static_cast<std::uint8_t>(options.qos) > 2) {
    return engine_error::bad_publish_options(channel, options);
  }
  if (options.destination && !options.destination->valid()) return engine_error::bad_destination();
  if (channel.size() > wire::kMaxChannelName) return engine_error::channel_name_too_long(channel.size());
  if (!is_last_channel(channel)) {
    if (!is_valid_utf8(as_bytes(channel))) return engine_error::channel_not_utf8();
    if (wire::is_filter(channel)) return engine_error::wildcard_publish(channel);
  }
  if (message.size() > c_.cfg.limits.max_message_size) {
    return engine_error::message_too_large(message.size(), c_.cfg.limits.max_message_size);
  }
  // Refuse here what could never be encoded later (a datagram above wire::kMaxDatagram).
  wire::Packet probe;
  probe.version = c_.cfg.wire;
  probe.type = PacketType::publish;
  probe.body.channel = channel;
  probe.body.message = message;
  if (wire::encoded_size(probe) > wire::kMaxDatagram) {
    return engine_error::datagram_too_large(channel.size(), message.size(), wire::encoded_size(probe));
  }
  return {};
}

bool Publisher::is_last_channel(std::string_view channel) const noexcept {
  return channel.size() == last_channel_size_ &&
         std::equal(channel.begin(), channel.end(), last_channel_.begin());
}

wire::ChannelId Publisher::channel_id_of(std::string_view channel) noexcept {
  if (is_last_channel(channel)) return last_channel_id_;
  const wire::ChannelId id = wire::channel_id(c_.crypto, channel);
  if (channel.size() > last_channel_.size()) return id;  // longer than the cache: not kept
  last_channel_id_ = id;
  std::copy(channel.begin(), channel.end(), last_channel_.begin());
  last_channel_size_ = channel.size();
  return id;
}

Result<MessageId> Publisher::publish(std::string_view channel, Bytes message,
                                     const PublishOptions& options, Instant now) noexcept {
  if (Result<void> ok = check_publish(channel, message, options); !ok) return ok.error();
  const bool tracked = options.qos != Qos::at_most_once;
  if (options.message_id != 0 && (!v2_ || (tracked && pending_.find(options.message_id) != kNoSlot))) {
    return Error{Errc::invalid_argument, "publish: message id ", options.message_id,
                 v2_ ? " is that of a pending publish" : ": ids are chosen with wire v2 only"};
  }
  const EngineLimits& limits = c_.cfg.limits;
  if (tracked && !v2_ && !options.destination) return engine_error::v1_needs_destination();
  // max_pending bounds the publishes awaiting their report: a tail (reported early, still
  // adding late answerers until the discovery period ends) gives its slot up to a new publish.
  if (tracked && pending_.full() && !end_a_tail()) {
    return engine_error::too_many_pending(limits.max_pending);
  }
  if (!tracked && l_.outbox.qos0_full()) {
    return engine_error::qos0_queue_full(limits.max_queued_messages);
  }
  if (l_.outbox.full()) return engine_error::outbox_full(limits.max_outbox);
  const wire::ChannelId id = channel_id_of(channel);
  // An empty retained message clears the channel's value (not kept: nothing to make room for).
  const bool clears = options.retain && message.empty();
  if (options.retain && !clears && !l_.retained.can_add(id, now)) {
    return engine_error::too_many_retained(limits);
  }
  const std::uint32_t slot = l_.pool.alloc(channel.size(), message.size());
  if (slot == kNoSlot) return engine_error::message_slots_full();
  MessageId mid = 0;
  if (v2_ && options.message_id != 0) {
    mid = options.message_id;
  } else if (v2_) {
    mid = l_.session.take_message_id();
  } else {
    do {
      mid = l_.session.take_v1_id();
    } while (pending_.find(mid) != kNoSlot);
  }
  store_message(slot, channel, message, options, id, mid, now);
  if (tracked) {
    start_tracked(mid, slot, options, now);
    return mid;
  }
  OutItem it;
  it.type = PacketType::publish;
  it.flags = l_.pool.meta(slot).flags;
  it.to_group = !options.destination;
  if (options.destination) it.to = *options.destination;
  it.msg = slot;  // the allocation's reference passes to the outbox item
  it.counted = true;
  (void)l_.outbox.push(options.priority, it);  // fits: checked above
  return mid;
}

void Publisher::store_message(std::uint32_t slot, std::string_view channel, Bytes message,
                              const PublishOptions& options, const wire::ChannelId& id,
                              MessageId mid, Instant now) noexcept {
  const std::uint16_t ttl_s = options.ttl_s == 0 ? c_.cfg.default_ttl_s : options.ttl_s;
  MessageMeta& meta = l_.pool.meta(slot);
  meta.channel_id = id;
  meta.message_id = mid;
  meta.nonce = v2_ ? draw_nonzero(c_.rng) : l_.session.take_v1_id();
  meta.origin_session = l_.session.id();
  meta.expires = now + std::chrono::seconds(ttl_s);
  meta.flags = wire::publish_flags(static_cast<int>(options.qos), options.retain, options.priority);
  l_.pool.set(slot, channel, message);
  if (options.retain && message.empty()) {
    l_.retained.clear(id);  // as in MQTT: the empty retained message clears, and is not kept
  } else if (options.retain) {
    l_.retained.add_published(slot, now);
  }
  c_.counters.add(&EngineStats::messages_published);
}

void Publisher::start_tracked(MessageId mid, std::uint32_t msg, const PublishOptions& options,
                              Instant now) noexcept {
  const std::uint32_t p = pending_.insert(mid);
  Pending& e = pending_.value(p);
  e = Pending{};
  e.msg = msg;  // the allocation's reference passes to the pending entry
  e.qos = options.qos;
  e.priority = options.priority;
  e.group = !options.destination;
  e.expires = l_.pool.meta(msg).expires;
  ++open_;
  if (options.destination) {
    add_recipient(p, *options.destination, 0);
    queue_publish_to(p, 0);
    return;
  }
  l_.discovery.for_each_matching(l_.pool.meta(msg).channel_id, l_.pool.name(msg),
                                 [&](const Peer& peer) {
                                   add_recipient(p, peer.endpoint, peer.session_id);
                                 });
  // Within the discovery period the discovery table is still filling: subscribers that answer
  // the solicitations join, and the publish is not reported before the period ends.
  const Instant discovery_end = l_.solicitation.discovery_end();
  const bool discovering = v2_ && now < discovery_end;
  if (discovering) {
    e.hold_until = std::min(discovery_end, e.expires);
    e.settle_until = std::min(l_.solicitation.first_answers_by(l_.discovery.peer_count()),
                              e.hold_until);
  }
  e.late_join = e.count == 0 || options.retain || discovering;
  if (e.count > 0) {
    queue_publish_to(p, kAllRecipients);
    return;
  }
  const Instant until = options.wait_for_subscribers ? now + *options.wait_for_subscribers : e.expires;
  e.wait_until = std::min(std::max(until, e.hold_until), e.expires);
  if (e.wait_until <= now) {
    finish(p, Errc::no_subscribers);
  } else if (v2_) {
    l_.solicitation.on_publish_waiting(now);
  }
}

void Publisher::close() noexcept {
  pending_.for_each([&](std::uint32_t p) {
    const Pending& e = pending_.value(p);
    if (e.finished) return;
    for (std::uint32_t i = 0; i < e.count; ++i) end_recipient(p, i, Errc::closed);
    finish(p, Errc::closed);
  });
}

// --- recipients

std::uint16_t Publisher::add_recipient(std::uint32_t p, const Endpoint& ep,
                                       std::uint32_t session) noexcept {
  Pending& e = pending_.value(p);
  if (e.count >= max_recipients_) return kAllRecipients;
  const std::uint16_t i = e.count++;
  recipient(p, i) = Recipient{ep, session, RecipientState::pending, 0};
  track(p, i) = Track{};
  tracks_changed(p);
  note_recipient(p, i);
  return i;
}

void Publisher::note_recipient(std::uint32_t p, std::uint32_t i) noexcept {
  const std::uint32_t session = recipient(p, i).session_id;
  if (session == 0) return;
  const std::uint32_t ps = l_.discovery.slot_of(session);
  if (ps == kNoSlot || ps >= max_recipients_) return;
  std::uint16_t& hint = recipient_hint_[p * max_recipients_ + ps];
  // The first recipient of a session wins, as in the linear search.
  if (hint < i && recipient(p, hint).session_id == session) return;
  hint = static_cast<std::uint16_t>(i);
}

// The recipient of publish `p` an answer from `session` at `from` belongs to: the first with
// that session, else the first at that endpoint; kNoSlot if none.
std::uint32_t Publisher::find_recipient(std::uint32_t p, std::uint32_t session,
                                        const Endpoint& from) noexcept {
  const Pending& e = pending_.value(p);
  if (session != 0) {
    const std::uint32_t ps = l_.discovery.slot_of(session);
    if (ps != kNoSlot && ps < max_recipients_) {
      const std::uint16_t k = recipient_hint_[p * max_recipients_ + ps];
      if (k < e.count && recipient(p, k).session_id == session) return k;
    }
  }
  for (std::uint32_t k = 0; k < e.count; ++k) {
    if (recipient(p, k).session_id != 0 && recipient(p, k).session_id == session) return k;
  }
  for (std::uint32_t k = 0; k < e.count; ++k) {
    if (recipient(p, k).endpoint == from) return k;
  }
  return kNoSlot;
}

void Publisher::make_terminal(std::uint32_t p, std::uint32_t i, RecipientState s,
                              Errc why) noexcept {
  Track& t = track(p, i);
  if (t.terminal) return;
  t.terminal = true;
  track_left(p, i);
  recipient(p, i).state = s;
  Pending& e = pending_.value(p);
  ++e.terminal;
  if (why != Errc::ok && e.reason == Errc::ok) e.reason = why;
}

// A recipient ends without its final answer: what it may hold decides the state.
void Publisher::end_recipient(std::uint32_t p, std::uint32_t i, Errc why) noexcept {
  const Pending& e = pending_.value(p);
  const Track& t = track(p, i);
  if (t.terminal) return;
  if (t.phase == 1) {
    make_terminal(p, i, RecipientState::received, why);
  } else if (!v2_ && e.qos == Qos::exactly_once && recipient(p, i).transmissions >= 2) {
    // A v1 device drops a repeated nonce without answering: it may hold the message.
    make_terminal(p, i, RecipientState::unconfirmed, why);
  } else {
    make_terminal(p, i, RecipientState::failed, why);
  }
}

void Publisher::check_complete(std::uint32_t p) noexcept {
  Pending& e = pending_.value(p);
  if (e.finished || e.count == 0) return;
  if (e.terminal < e.count) return;  // O(1) per answer: no walk over all recipients
  if (last_now_ < e.hold_until) {
    // Within the discovery period: reported once the answers to the first solicitation can
    // have arrived; subscribers answering later still join until the period ends (the tail).
    if (!e.reported && last_now_ >= settle_time(p)) report_early(p);
    return;
  }
  finish(p, e.reason);
}

// The answer window grows with the peers this node has heard (answering nodes spread their
// answers by the peers they know): recomputed, never earlier than before, never past the hold.
Instant Publisher::settle_time(std::uint32_t p) noexcept {
  Pending& e = pending_.value(p);
  const Instant t = std::min(l_.solicitation.first_answers_by(l_.discovery.peer_count()),
                             e.hold_until);
  if (t > e.settle_until) e.settle_until = t;
  return e.settle_until;
}

// Every recipient that answered so far counts; acknowledged by all of them is ok.
Errc Publisher::outcome(std::uint32_t p, Errc reason) const noexcept {
  const Pending& e = pending_.value(p);
  bool all_ack = e.count > 0;
  for (std::uint32_t i = 0; i < e.count; ++i) {
    if (recipient(p, i).state != RecipientState::acknowledged) all_ack = false;
  }
  return all_ack ? Errc::ok : (reason == Errc::ok ? Errc::timed_out : reason);
}

void Publisher::report_early(std::uint32_t p) noexcept {
  Pending& e = pending_.value(p);
  e.reason = outcome(p, e.reason);
  e.reported = true;
  e.reported_count = e.count;
  --open_;
  ++tail_;
  l_.events.push_report(p);
}

void Publisher::finish(std::uint32_t p, Errc reason) noexcept {
  Pending& e = pending_.value(p);
  if (e.finished) return;
  if (e.reported) return retire(p);
  e.reason = outcome(p, reason);
  e.finished = true;
  --open_;
  l_.events.push_report(p);
}

// The end of a publish reported early: no second report. What happened to the recipients that
// joined after the report is counted (stats().late_recipients_failed), never dropped silently.
void Publisher::retire(std::uint32_t p) noexcept {
  Pending& e = pending_.value(p);
  e.finished = true;
  --tail_;
  for (std::uint32_t i = e.reported_count; i < e.count; ++i) {
    if (recipient(p, i).state != RecipientState::acknowledged) {
      c_.counters.add(&EngineStats::late_recipients_failed);
    }
  }
  if (!e.report_taken) return;  // take_report() frees it
  l_.pool.unref(e.msg);
  ++generation_[p];
  pending_.erase_slot(p);
}

// Ends one tail early to free its pending slot (docs/engine.md §3): one whose report was polled
// (its slot is freed at once), preferring one with no late recipient still being delivered to.
// Late recipients it had that never acknowledged are counted in late_recipients_failed, as
// when a tail ends with the period. False: none.
bool Publisher::end_a_tail() noexcept {
  if (tail_ == 0) return false;
  std::uint32_t quiet = kNoSlot, busy = kNoSlot;
  pending_.for_each([&](std::uint32_t p) {
    const Pending& e = pending_.value(p);
    if (!e.reported || e.finished || !e.report_taken || quiet != kNoSlot) return;
    if (e.terminal == e.count) {
      quiet = p;
    } else if (busy == kNoSlot) {
      busy = p;
    }
  });
  const std::uint32_t p = quiet != kNoSlot ? quiet : busy;
  if (p == kNoSlot) return false;
  retire(p);  // its report was taken: the slot is free now
  return true;
}

DeliveryReport Publisher::take_report(std::uint32_t slot) noexcept {
  const Pending& e = pending_.value(slot);
  DeliveryReport rep;
  rep.message_id = pending_.key(slot);
  rep.channel = l_.pool.name(e.msg);
  rep.qos = e.qos;
  rep.reason = e.reason;
  rep.recipients = std::span<const Recipient>{&recipient(slot, 0),
                                              e.reported ? e.reported_count : e.count};
  pending_.value(slot).report_taken = true;
  // A publish reported early stays open for its tail; retire() frees it.
  if (e.finished) deferred_free_ = slot;
  return rep;
}

bool Publisher::queue_publish_to(std::uint32_t p, std::uint16_t i) noexcept {
  Pending& e = pending_.value(p);
  const MessageMeta& m = l_.pool.meta(e.msg);
  OutItem it;
  it.type = PacketType::publish;
  it.flags = m.flags;
  it.msg = e.msg;
  it.pending = p;
  it.pending_gen = generation_[p];
  it.recipient = i;
  if (i == kAllRecipients) {
    it.to_group = true;
  } else {
    it.to = recipient(p, i).endpoint;
    if (track(p, i).phase == 1) {
      it.type = PacketType::pubrel;
      it.key = c_.keys.channel_key_for(l_.pool.name(e.msg));  // sealed like its publish
      it.msg = kNoSlot;
      it.acked_id = m.message_id;
      it.channel_id = m.channel_id;
      it.flags = v2_ ? static_cast<std::uint8_t>(e.priority << 4) : 0;
    }
  }
  if (it.msg != kNoSlot) l_.pool.ref(it.msg);
  if (!l_.outbox.push(e.priority, it)) return false;  // the reference was given back
  if (i == kAllRecipients) {
    for (std::uint32_t k = 0; k < e.count; ++k) track(p, k).queued = true;
    tracks_changed(p);
  } else {
    track(p, i).queued = true;
    track_left(p, i);
  }
  return true;
}

void Publisher::fail_recipients_of(std::uint32_t session, const wire::ChannelId* channel,
                                   std::string_view filter) noexcept {
  pending_.for_each([&](std::uint32_t p) {
    const Pending& e = pending_.value(p);
    if (e.finished || !e.group) return;
    if (channel != nullptr) {
      const wire::ChannelId& id = l_.pool.meta(e.msg).channel_id;
      const std::string_view name = l_.pool.name(e.msg);
      if (filter.empty() ? id != *channel : !wire::filter_matches(filter, name)) return;
      // Still subscribed another way (the exact channel, or another filter).
      if (l_.discovery.subscribes(session, id, name)) return;
    }
    for (std::uint32_t i = 0; i < e.count; ++i) {
      if (recipient(p, i).session_id == session && !track(p, i).terminal) {
        end_recipient(p, i, Errc::no_subscribers);
      }
    }
    check_complete(p);
  });
}

void Publisher::rename_recipients(std::uint32_t old_session, std::uint32_t new_session,
                                  const Endpoint& at) noexcept {
  // The same node under a new session stays one recipient of the publishes in flight (its
  // answers carry the new session; an UNSUBSCRIBE or a tentative subscription's expiry names
  // the new session too).
  pending_.for_each([&](std::uint32_t p) {
    const Pending& e = pending_.value(p);
    if (e.finished || !e.group) return;
    for (std::uint32_t i = 0; i < e.count; ++i) {
      Recipient& r = recipient(p, i);
      if (r.session_id == old_session && r.endpoint == at) {
        r.session_id = new_session;
        note_recipient(p, i);
      }
    }
  });
}

void Publisher::on_new_subscriber(std::uint32_t session, const Endpoint& from,
                                  const wire::ChannelId& ch, std::string_view filter,
                                  bool established, Instant now) noexcept {
  pending_.for_each([&](std::uint32_t p) {
    const Pending& e = pending_.value(p);
    if (e.finished || !e.group) return;
    if (filter.empty() ? l_.pool.meta(e.msg).channel_id != ch
                       : !wire::filter_matches(filter, l_.pool.name(e.msg))) {
      return;
    }
    // A re-announcement (want-retained clear) comes from a subscription older than this
    // announcement: the publish may have been meant for it and missed it (its earlier
    // announcements were lost), so it joins in-flight publishes too. A fresh subscription
    // joins only those that wait for subscribers or are retained.
    if (!e.late_join && !established) return;
    for (std::uint32_t i = 0; i < e.count; ++i) {
      Recipient& r = recipient(p, i);
      if (r.session_id == session) return;
      if (r.endpoint == from) {
        // The same node under a new session (restart or renewal): one recipient, not two.
        r.session_id = session;
        note_recipient(p, i);
        return;
      }
    }
    const std::uint16_t i = add_recipient(p, from, session);
    if (i == kAllRecipients) return;
    if (e.reported) c_.counters.add(&EngineStats::late_recipients);
    track(p, i).next = now;
    if (!queue_publish_to(p, i)) track(p, i).next = now + c_.cfg.timers.retransmit_initial;
    tracks_changed(p);
  });
}

bool Publisher::tracks(std::uint32_t msg, std::uint32_t session) const noexcept {
  bool found = false;
  pending_.for_each([&](std::uint32_t p) {
    const Pending& e = pending_.value(p);
    if (e.finished || e.msg != msg) return;
    for (std::uint32_t i = 0; i < e.count; ++i) {
      if (recipient(p, i).session_id == session) found = true;
    }
  });
  return found;
}

bool Publisher::qos2_publish_in_flight() const noexcept {
  bool any = false;
  pending_.for_each([&](std::uint32_t p) {
    const Pending& e = pending_.value(p);
    if (e.finished || e.qos != Qos::exactly_once) return;
    for (std::uint32_t i = 0; i < e.count; ++i) {
      const Track& t = track(p, i);
      if (!t.terminal && t.phase == 0) any = true;
    }
  });
  return any;
}

void Publisher::key_epoch_switched() noexcept {
  pending_.for_each([&](std::uint32_t p) {
    Pending& e = pending_.value(p);
    bool sent = false;
    for (std::uint32_t i = 0; i < e.count; ++i) {
      const Track& t = track(p, i);
      if (t.phase_tx > 0 || t.phase == 1 || t.terminal) sent = true;
    }
    // A publish sent under an even older epoch stays there (the ring no longer holds it: it
    // goes under the current session).
    e.previous_epoch = sent;
  });
}

bool Publisher::under_previous_epoch(const OutItem& it) const noexcept {
  return it.pending != kNoSlot && pending_.value(it.pending).previous_epoch;
}

bool Publisher::publish_waiting() const noexcept {
  bool any = false;
  pending_.for_each([&](std::uint32_t p) {
    const Pending& e = pending_.value(p);
    if (!e.finished && e.group && e.count == 0) any = true;
  });
  return any;
}

std::size_t Publisher::bytes_for(const EngineLimits& l) noexcept {
  const std::size_t pending = at_least_one(l.max_pending);
  const std::size_t pairs = pending * recipients_per_publish(l);
  return FixedMap<std::uint32_t, Pending, U32Hash, U32Eq, std::uint16_t>::bytes_for(pending) +
         arena_bytes<std::uint32_t>(pending) + arena_bytes<Recipient>(pairs) +
         arena_bytes<Track>(pairs) + arena_bytes<std::uint16_t>(pairs) +
         arena_bytes<char>(l.max_channel_name);
}

std::size_t Publisher::state_bytes() const noexcept {
  return pending_.state_bytes() + generation_.state_bytes() + recipients_.state_bytes() +
         tracks_.state_bytes() + recipient_hint_.state_bytes() + last_channel_.state_bytes();
}

}  // namespace nomq::detail
