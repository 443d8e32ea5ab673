#include "core/receiver.hpp"

#include "core/events.hpp"

#include <algorithm>
#include <cstring>

#include "core/events.hpp"
#include "core/outbox.hpp"
#include "core/reachability.hpp"
#include "core/retained_replay.hpp"
#include "core/session.hpp"
#include "core/subscriptions.hpp"

namespace nomq::detail {

using wire::PacketType;

Receiver::Receiver(const Context& ctx, const Links& links)
    : c_(ctx),
      l_(links),
      senders_(ctx.arena, at_least_one(ctx.cfg.limits.max_senders), ctx.cfg.replay_window,
               ctx.cfg.timestamp_window_s),
      inbound_(ctx.arena, at_least_one(ctx.cfg.limits.max_inbound_qos)),
      nonces_(ctx.arena, nonce_capacity(ctx.cfg),
              std::chrono::seconds(2 * std::uint64_t{ctx.cfg.timestamp_window_s} + 1)),
      deferred_(ctx.arena, deferred_capacity(ctx.cfg)),
      inbox_(ctx.arena, at_least_one(ctx.cfg.limits.max_inbox)),
      inbox_heap_(ctx.arena, at_least_one(ctx.cfg.limits.max_inbox), inbox_bytes(ctx.cfg.limits)),
      scratch_(ctx.arena.make<std::uint8_t>(receive_scratch(ctx.cfg.limits))) {}

std::size_t Receiver::bytes_for(const EngineConfig& cfg) noexcept {
  const EngineLimits& l = cfg.limits;
  return SenderTable::bytes_for(at_least_one(l.max_senders), cfg.replay_window) +
         InboundQosTable::bytes_for(at_least_one(l.max_inbound_qos)) +
         NonceCache::bytes_for(nonce_capacity(cfg)) +
         DeferredAcks::bytes_for(deferred_capacity(cfg)) +
         PriorityQueue<InboxItem>::bytes_for(at_least_one(l.max_inbox)) +
         ByteHeap::bytes_for(at_least_one(l.max_inbox), inbox_bytes(l)) +
         arena_bytes<std::uint8_t>(receive_scratch(l));
}

std::optional<wire::Packet> Receiver::open(const Endpoint& from, Bytes datagram, Instant now,
                                           WallTime wall) noexcept {
  if (datagram.size() > scratch_.size()) {
    c_.counters.drop(Errc::bad_length);
    return std::nullopt;
  }
  const std::uint8_t version = wire::peek_version(datagram);
  if ((version == 1 || version == 2) && version != static_cast<std::uint8_t>(c_.cfg.wire)) {
    c_.counters.drop(Errc::wrong_wire_version);
    return std::nullopt;
  }
  wire::DecodeOptions opt;
  opt.version = c_.cfg.wire;
  opt.wall = wall;
  opt.epoch_offset = c_.cfg.epoch_offset;
  opt.timestamp_window_s = c_.cfg.timestamp_window_s;
  // v2: hand decode only the subscription named by the header's channel id (if any), so that
  // it can skip hashing the body's name without a scan over every subscription. The header is
  // not authenticated yet; a forged id only picks which pair decode compares against.
  wire::KnownChannel candidate;
  if (c_.cfg.wire == WireVersion::v2) {
    if (const auto id = wire::peek_channel_id(datagram)) {
      const std::uint32_t s = l_.subs.find_active(*id);
      if (s != kNoSlot) {
        candidate.id = *id;
        candidate.name = l_.subs.name(s);
        opt.known_channels = std::span<const wire::KnownChannel>{&candidate, 1};
      }
    }
  }
  // v2: a datagram marked as sealed with a channel key is opened with the channel keys
  // (open_channel_keyed); any other with the key set named by the session id's epoch tag
  // (core/key_ring.hpp). Both are unauthenticated until decode() has checked the MAC.
  Crypto* keys = &c_.crypto;
  key_ = 0;
  l_.outbox.set_reply_key(0);
  const std::optional<std::uint32_t> session = wire::peek_session_id(datagram);
  const std::optional<wire::HeaderView> header = wire::peek_header(datagram);
  const bool channel_keyed =
      c_.cfg.wire == WireVersion::v2 && header && header->version == 2 &&
      wire::flags_channel_key(static_cast<PacketType>(header->type), header->flags);
  if (c_.cfg.wire == WireVersion::v2 && session && !channel_keyed) {  // too short: decode() names the reason
    Errc why = Errc::unknown_key_epoch;
    keys = c_.keys.for_session(*session, why);
    if (keys == nullptr) {
      c_.counters.drop(why);
      return std::nullopt;
    }
  }
  Result<wire::Packet> r = channel_keyed ? open_channel_keyed(datagram, opt)
                                         : wire::decode(datagram, *keys, opt, scratch_);
  if (r && c_.cfg.wire == WireVersion::v2 && !sealed_as_named(*r)) {
    c_.counters.drop(Errc::wrong_channel_key);
    return std::nullopt;
  }
  l_.outbox.set_reply_key(key_);
  if (!r) {
    if (r.error() == Errc::stale_timestamp) note_clock_skew(from, datagram, now, wall);
    c_.counters.drop(r.error());
    return std::nullopt;
  }
  if (l_.session.is_own(r->session_id)) {
    // An authentic datagram under our session id (only a key holder can make one) with a
    // sequence number we never sent: someone impersonates us, and every receiver that took it
    // now rejects our real traffic as old (M2). Counted, raised, and the engine renews.
    if (c_.cfg.wire == WireVersion::v2 &&
        !l_.session.could_have_sent(r->session_id, r->packet_id)) {
      c_.counters.add(&EngineStats::impersonations_detected);
      l_.events.push_peer(PeerEvent::Kind::impersonation, from, r->session_id, 0);
      impersonated_ = true;
    }
    c_.counters.drop(Errc::own_packet);
    return std::nullopt;
  }
  return *r;
}

Result<wire::Packet> Receiver::open_channel_keyed(Bytes datagram,
                                                   const wire::DecodeOptions& opt) noexcept {
  // At most kMaxChannelKeys MAC computations (one per channel key held), each a constant-time
  // compare before any decryption; the first set whose MAC verifies opens it (two sets
  // verifying the same MAC would be a collision of HMAC-SHA256). No key verifies it: a
  // channel this node has no key for, or a forgery. docs/protocol.md §14.4 states the cost.
  for (std::uint8_t k = 1; k <= kMaxChannelKeys; ++k) {
    Crypto* set = c_.keys.channel_set(k);
    if (set == nullptr) continue;
    Result<wire::Packet> r = wire::decode(datagram, *set, opt, scratch_);
    if (!r && r.error() == Errc::bad_mac) continue;
    key_ = k;
    return r;
  }
  return Errc::no_channel_key;
}

bool Receiver::sealed_as_named(const wire::Packet& p) const noexcept {
  // A named datagram must be sealed with the key set this node's channel keys give its name:
  // a group member without the channel key can seal `door/front` with the group keys (and a
  // channel id of its choice), and the name inside would match a wildcard subscription. A
  // channel key's datagram must name a channel of that key. The ACK family names no channel:
  // its set is checked by the publisher against the message's (Publisher::ack_key_ok).
  if (p.type != PacketType::publish && p.type != PacketType::subscribe &&
      p.type != PacketType::unsubscribe) {
    return true;
  }
  return c_.keys.channel_key_for(p.body.channel) == key_;
}

void Receiver::note_clock_skew(const Endpoint& from, Bytes datagram, Instant now,
                               WallTime wall) noexcept {
  // decode() checks the timestamp after the MAC, so the header is authentic here.
  const std::optional<wire::HeaderView> h = wire::peek_header(datagram);
  if (!h || l_.session.is_own(h->session_id)) return;
  note_skew(from, h->session_id, h->timestamp, now, wall);
}

void Receiver::note_skew(const Endpoint& from, std::uint32_t session, std::uint32_t timestamp,
                         Instant now, WallTime wall) noexcept {
  const Duration quiet = std::chrono::seconds(c_.cfg.timestamp_window_s);
  for (const SkewNote& n : skew_notes_) {
    if (n.session == session && now - n.at < quiet) return;
  }
  skew_notes_[skew_next_] = SkewNote{session, now};
  skew_next_ = (skew_next_ + 1) % skew_notes_.size();
  const std::int64_t offset = static_cast<std::int64_t>(timestamp) -
                              static_cast<std::int64_t>(wire_seconds(wall, c_.cfg.epoch_offset));
  l_.events.push_peer(PeerEvent::Kind::clock_skew, from, session, offset);
}

bool Receiver::accept_v2(const wire::Packet& p, const Endpoint& from, Instant now,
                         WallTime wall, bool& challenge) noexcept {
  challenge = false;
  const std::uint32_t now_wire = wire_seconds(wall, c_.cfg.epoch_offset);
  // Stamped further ahead than the future skew: such a datagram would stay fresh, and keep its
  // sender slot from eviction, for up to skew + window (issue 13 M3).
  const std::uint32_t skew = std::min(c_.cfg.timestamp_future_s, c_.cfg.timestamp_window_s);
  if (static_cast<std::int64_t>(p.timestamp) > static_cast<std::int64_t>(now_wire) + skew) {
    c_.counters.drop(Errc::future_timestamp);
    note_skew(from, p.session_id, p.timestamp, now, wall);
    return false;
  }
  SenderInfo* s = senders_.find(p.session_id);
  if (s == nullptr) {
    const bool verified = l_.reach.verified(from, now);
    Errc why = Errc::sender_table_full;
    s = senders_.find_or_insert(p.session_id, now_wire, from,
                                c_.cfg.limits.max_senders_per_endpoint, &why, verified);
    if (s == nullptr) {
      c_.counters.drop(why);
      challenge = why == Errc::sender_unverified;
      return false;
    }
  }
  if (const Errc v = senders_.accept(*s, p.packet_id, p.timestamp, now); v != Errc::ok) {
    c_.counters.drop(v);
    return false;
  }
  if (!s->live && fresh_by_time(p.timestamp, now)) {
    s->live = true;
    s->live_from = p.packet_id;
  }
  return true;
}

void Receiver::note_start(Instant now, WallTime wall) noexcept {
  if (started_) return;
  started_ = true;
  start_ = now;
  start_wire_ = wire_seconds(wall, c_.cfg.epoch_offset);
}

// Whether a datagram stamped `timestamp` was sent after this receiver started: stamped in a
// later second than the start (with clocks that agree; a sender whose clock leads ours by d s,
// d <= timestamp_future_s, gets d s of its pre-start datagrams through: docs/security.md M4).
// Once the receiver has run longer than the timestamp window plus that lead, whatever was sent
// before the start is refused as stale anyway.
bool Receiver::fresh_by_time(std::uint32_t timestamp, Instant now) const noexcept {
  if (!started_) return true;
  const std::uint32_t lead = std::min(c_.cfg.timestamp_future_s, c_.cfg.timestamp_window_s);
  if (now - start_ > std::chrono::seconds(std::int64_t{c_.cfg.timestamp_window_s} + lead + 1)) {
    return true;
  }
  return timestamp > start_wire_;
}

Receiver::Freshness Receiver::freshness(const wire::Packet& p, Instant now) noexcept {
  // Stamped after the start (or the start is long past): fresh by itself, whatever the
  // session (a reordered datagram older than the one that made its session live included).
  if (fresh_by_time(p.timestamp, now)) return Freshness::fresh;
  const SenderInfo* s = senders_.find(p.session_id);
  if (s != nullptr && s->live) {
    if (p.packet_id >= s->live_from) return Freshness::fresh;
    c_.counters.drop(Errc::unverified_sender);  // older than what proved the session live
    return Freshness::withheld;
  }
  if (p.qos() == 0 && p.timestamp >= start_wire_) return Freshness::fresh;
  c_.counters.drop(Errc::unverified_sender);
  return Freshness::withheld_unverified;
}

void Receiver::verified_live(std::uint32_t session, std::uint32_t packet_id) noexcept {
  SenderInfo* s = senders_.find(session);
  if (s == nullptr || s->live) return;
  s->live = true;
  // Sent after the echo: the echo itself (packet_id) was the first fresh datagram.
  s->live_from = packet_id + 1;
}

void Receiver::on_publish_v2(const wire::Packet& p, const Endpoint& from, Instant now,
                             WallTime wall) noexcept {
  // An empty retained message clears the channel's retained value wherever this node keeps it
  // (a publisher-side store too, subscribed or not), as in MQTT (docs/engine.md §7).
  const bool clears = p.retain() && p.body.message.empty();
  if (clears) l_.retained.clear(p.channel_id);
  if (!l_.subs.follows(p.channel_id, p.body.channel)) {
    return c_.counters.drop(Errc::unknown_channel);
  }
  const std::uint8_t qos = p.qos();
  if (qos > 2) return c_.counters.drop(Errc::unexpected_packet);
  if (p.ttl == 0) return c_.counters.drop(Errc::expired);
  if (p.body.message.size() > c_.cfg.limits.max_message_size) {
    return c_.counters.drop(Errc::message_too_large);
  }
  // The message expires ttl seconds after it was sent. The sender's timestamp (wall clock) is
  // truncated to the second, so it was sent before timestamp + 1 s; under the clock agreement
  // the timestamp window already assumes, timestamp + 1 s + ttl bounds the expiry however long
  // the datagram travelled (arrival + ttl alone would not count the transit time).
  // The transit time is measured on the wall clock (the timestamp is the sender's wall clock)
  // and the expiry placed on the monotonic one.
  const WallTime sent_by{std::chrono::seconds(std::int64_t{p.timestamp} + c_.cfg.epoch_offset + 1)};
  const Duration transit = wall > sent_by ? wall - sent_by : Duration{0};
  const Instant expires = now + std::chrono::seconds(p.ttl) - transit;
  if (now > expires) return c_.counters.drop(Errc::expired);
  const std::uint32_t id = p.body.message_id;
  if (const InboundEntry* e = qos >= 1 ? inbound_.find(p.session_id, id, now) : nullptr) {
    c_.counters.add(&EngineStats::duplicates_suppressed);
    if (e->deferred) return c_.counters.drop(Errc::duplicate);  // answered on accept()
    l_.outbox.send_reply(qos == 1 ? PacketType::ack : PacketType::pubrec, id, p.channel_id, from,
                         p.priority());
    return c_.counters.drop(Errc::duplicate);
  }
  if (p.retain() && l_.retained.on_retained_publish(p, now)) {
    c_.counters.add(&EngineStats::duplicates_suppressed);
    return c_.counters.drop(Errc::duplicate);
  }
  if (!inbox_fits(p.body.channel, p.body.message)) return c_.counters.drop(Errc::inbox_full);
  if (qos >= 1 && deferred_.enabled() && deferred_.full()) {
    return c_.counters.drop(Errc::inbox_full);  // the publisher retransmits
  }
  if (qos >= 1) {
    if (const Errc why = remember_v2(p, expires, now); why != Errc::ok) return c_.counters.drop(why);
  }
  const AckToken token = qos >= 1 ? defer(p, id, from, now) : 0;
  push_inbox(p, p.body.channel, from, expires, token);
  if (p.retain() && !clears) l_.retained.keep_copy(p, expires, now);
  if (token != 0) return;  // answered by accept()
  if (qos == 1) l_.outbox.send_reply(PacketType::ack, id, p.channel_id, from, p.priority());
  if (qos == 2) l_.outbox.send_reply(PacketType::pubrec, id, p.channel_id, from, p.priority());
}

AckToken Receiver::defer(const wire::Packet& p, std::uint32_t id, const Endpoint& from,
                         Instant now) noexcept {
  if (!deferred_.enabled()) return 0;
  DeferredAck d;
  d.session = p.session_id;
  d.id = id;
  d.channel_id = p.channel_id;
  d.from = from;
  d.expires = now + c_.cfg.timers.deferred_ack_timeout;
  d.qos = p.qos();
  d.priority = p.priority();
  d.key = key_;
  const AckToken token = deferred_.add(d);  // not full: checked before remembering
  if (InboundEntry* e = inbound_.find(p.session_id, id, now); e != nullptr && token != 0) {
    e->deferred = true;
  }
  return token;
}

Result<void> Receiver::answer(AckToken token, bool accept, Instant now) noexcept {
  if (token == 0 || (token & 0xFFFF) > deferred_capacity(c_.cfg)) {
    return Error{Errc::invalid_argument, "ack token ", token, ": not one this engine gave",
                 deferred_.enabled() ? "" : " (deferred_ack is off)"};
  }
  const std::optional<DeferredAck> d = deferred_.take(token);
  if (!d) {
    return Error{Errc::expired, "ack token ", token,
                 ": already accepted or refused, or lapsed (deferred_ack_timeout)"};
  }
  if (!accept) {
    forget(*d, now);
    c_.counters.add(&EngineStats::deferred_refused);
    return {};
  }
  if (InboundEntry* e = inbound_.find(d->session, d->id, now)) e->deferred = false;
  l_.outbox.set_reply_key(d->key);  // sealed like the publish it answers
  l_.outbox.send_reply(d->qos == 1 ? PacketType::ack : PacketType::pubrec, d->id, d->channel_id,
                       d->from, d->priority);
  l_.outbox.set_reply_key(0);
  c_.counters.add(&EngineStats::deferred_accepted);
  return {};
}

void Receiver::forget(const DeferredAck& d, Instant now) noexcept {
  InboundEntry* e = inbound_.find(d.session, d.id, now);
  if (e == nullptr || !e->deferred) return;
  if (e->state == InboundState::awaiting_pubrel) released_qos2(d.session);
  inbound_.erase(d.session, d.id);
}

// The dedup record of a QoS 1/2 publish (QoS 2: the state awaiting PUBREL).
Errc Receiver::remember_v2(const wire::Packet& p, Instant expires, Instant now) noexcept {
  const bool qos2 = p.qos() == 2;
  const Duration life = c_.cfg.timers.inbound_state_lifetime;
  const Instant until = qos2 ? now + life : std::min(expires, now + life);
  SenderInfo* sender = senders_.find(p.session_id);
  const std::uint32_t held = sender != nullptr ? sender->qos2_states : 0;
  // Per-session quota on open QoS 2 handshakes (issue 13 M3): beyond it the PUBLISH is dropped
  // unacknowledged (an honest publisher retransmits once its earlier handshakes completed).
  if (qos2 && held >= c_.cfg.limits.max_qos2_per_session) return Errc::qos2_quota;
  std::optional<std::uint32_t> evicted;
  const auto awaiting_of = [&](std::uint32_t session) -> std::uint32_t {
    const SenderInfo* s = senders_.find(session);
    return s != nullptr ? s->qos2_states : 0;
  };
  if (inbound_.insert(p.session_id, p.body.message_id,
                      qos2 ? InboundState::awaiting_pubrel : InboundState::delivered, now, until,
                      held, awaiting_of, evicted) == nullptr) {
    return Errc::inbox_full;
  }
  if (evicted) {
    // Its publisher still gets a PUBCOMP (a PUBREL without state is answered); only a
    // retransmission of that PUBLISH arriving after the eviction would be delivered again.
    released_qos2(*evicted);
    c_.counters.add(&EngineStats::qos2_states_evicted);
  }
  if (qos2) {
    if (sender != nullptr) ++sender->qos2_states;
  }
  return Errc::ok;
}

void Receiver::on_publish_v1(const wire::Packet& p, const Endpoint& from, Instant now) noexcept {
  const std::uint32_t sub = l_.subs.find_active(p.channel_id);
  if (sub == kNoSlot) return c_.counters.drop(Errc::unknown_channel);
  const std::uint8_t qos = p.qos();
  if (qos > 2) return c_.counters.drop(Errc::unexpected_packet);
  if (p.body.message.size() > c_.cfg.limits.max_message_size) {
    return c_.counters.drop(Errc::message_too_large);
  }
  const std::uint32_t nonce = p.body.message_id;
  const PacketType answer = qos == 1 ? PacketType::ack : PacketType::pubrec;
  // Our own v1 senders keep the packet id across retransmissions (a QoS 1 one with a fresh
  // nonce), so (session, packet id) catches what the nonce cache cannot.
  const bool known_id = qos >= 1 && inbound_.find(p.session_id, p.packet_id, now) != nullptr;
  if (known_id || nonces_.contains(nonce, now)) {
    if (qos == 0) return c_.counters.drop(Errc::replayed);
    l_.outbox.send_reply(answer, p.packet_id, p.channel_id, from, p.priority());
    c_.counters.add(&EngineStats::duplicates_suppressed);
    return c_.counters.drop(Errc::duplicate);
  }
  if (!inbox_fits(l_.subs.name(sub), p.body.message)) return c_.counters.drop(Errc::inbox_full);
  if (qos >= 1) {
    const Instant until = now + c_.cfg.timers.inbound_state_lifetime;
    if (inbound_.insert(p.session_id, p.packet_id,
                        qos == 2 ? InboundState::awaiting_pubrel : InboundState::delivered, now,
                        until) == nullptr) {
      return c_.counters.drop(Errc::inbox_full);
    }
  }
  nonces_.insert(nonce, now);
  // v1 receivers do not apply the ttl (the original never checks it); the inbox keeps the
  // message until polled.
  push_inbox(p, l_.subs.name(sub), from, Instant::max());
  if (qos >= 1) l_.outbox.send_reply(answer, p.packet_id, p.channel_id, from, p.priority());
}

void Receiver::on_pubrel(const wire::Packet& p, const Endpoint& from, Instant now) noexcept {
  const std::uint32_t id = p.body.acked_id;
  InboundEntry* e = inbound_.find(p.session_id, id, now);
  // No PUBREC was sent for a message not accepted yet (deferred_ack): nothing to complete.
  if (e != nullptr && e->deferred) return c_.counters.drop(Errc::unexpected_packet);
  if (e != nullptr && e->state == InboundState::awaiting_pubrel) {
    e->state = InboundState::released;
    released_qos2(p.session_id);
  } else if (e != nullptr && e->state == InboundState::released) {
    c_.counters.add(&EngineStats::duplicates_suppressed);
    c_.counters.drop(Errc::duplicate);
  }
  // Answered even without state (it expired, or our PUBCOMP was lost after we released it):
  // the publisher needs the PUBCOMP to finish.
  l_.outbox.send_reply(PacketType::pubcomp, id, p.channel_id, from, p.priority());
}

void Receiver::on_v1_announce(const wire::Packet& p) noexcept {
  // As the original: only a subscribed channel gets past the channel check, and then nothing
  // happens (v1 has no discovery). A heartbeat's zero channel never matches.
  if (l_.subs.find_active(p.channel_id) == kNoSlot) c_.counters.drop(Errc::unknown_channel);
}

void Receiver::released_qos2(std::uint32_t session) noexcept {
  if (SenderInfo* s = senders_.find(session); s != nullptr && s->qos2_states > 0) {
    --s->qos2_states;
  }
}

void Receiver::handle_timeout(Instant now) noexcept {
  deferred_.expire(now, [&](const DeferredAck& d) {
    forget(d, now);
    c_.counters.add(&EngineStats::deferred_lapsed);
  });
  inbound_.expire(now, [this](std::uint32_t session) { released_qos2(session); });
}

void Receiver::push_inbox(const wire::Packet& p, std::string_view channel, const Endpoint& from,
                          Instant expires, AckToken token) noexcept {
  InboxItem item;
  item.size = static_cast<std::uint16_t>(p.body.message.size());
  item.name_size = static_cast<std::uint8_t>(channel.size());
  item.flags = p.flags;
  item.from = from;
  item.session = p.session_id;
  item.message_id = p.body.message_id;
  item.expires = expires;
  item.token = token;
  // Bytes first, under the node the push will take (inbox_fits() holds: both succeed).
  const std::uint32_t n = inbox_.next_free();
  if (n == PriorityQueue<InboxItem>::npos || !inbox_heap_.alloc(n, channel.size() + item.size)) {
    return c_.counters.drop(Errc::inbox_full);
  }
  (void)inbox_.push(p.priority(), item);
  std::uint8_t* at = inbox_heap_.data(n);
  if (!channel.empty()) std::memcpy(at, channel.data(), channel.size());
  if (!p.body.message.empty()) {
    std::memcpy(at + channel.size(), p.body.message.data(), p.body.message.size());
  }
}

std::optional<MessageEvent> Receiver::poll(Instant now) noexcept {
  while (!inbox_.empty()) {
    const std::uint32_t n = inbox_.front();
    const InboxItem item = inbox_.at(n);
    inbox_.pop();
    inbox_heap_.free(n);  // the bytes stay untouched until a later call pushes again
    if (item.expires <= now) {
      c_.counters.drop(Errc::expired);
      continue;
    }
    const std::uint8_t* at = inbox_heap_.data(n);
    MessageEvent ev;
    ev.channel = std::string_view{reinterpret_cast<const char*>(at), item.name_size};
    ev.message = Bytes{at + item.name_size, item.size};
    ev.qos = static_cast<Qos>(wire::flags_qos(item.flags));
    ev.retain = wire::flags_retain(item.flags);
    ev.priority = wire::flags_priority(item.flags);
    ev.from = item.from;
    ev.sender_session = item.session;
    ev.message_id = item.message_id;
    ev.ack_token = item.token;
    if (item.expires != Instant::max()) {
      const auto left = (item.expires - now).count();  // > 0: checked above
      ev.ttl_s = static_cast<std::uint32_t>((left + 999'999) / 1'000'000);
    }
    c_.counters.add(&EngineStats::messages_delivered);
    return ev;
  }
  return std::nullopt;
}

std::size_t Receiver::state_bytes() const noexcept {
  return senders_.state_bytes() + inbound_.state_bytes() + nonces_.state_bytes() +
         deferred_.state_bytes() + inbox_.state_bytes() + inbox_heap_.state_bytes() +
         scratch_.state_bytes();
}

}  // namespace nomq::detail
