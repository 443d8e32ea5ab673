#include "core/transmitter.hpp"

#include "core/key_ring.hpp"
#include "core/publisher.hpp"
#include "core/reachability.hpp"
#include "core/retransmit.hpp"
#include "core/session.hpp"
#include "core/subscriptions.hpp"

namespace nomq::detail {

using wire::PacketType;

Transmitter::Transmitter(const Context& ctx, const Links& links)
    : c_(ctx), l_(links), v2_(ctx.cfg.wire == WireVersion::v2) {}

std::optional<Transmit> Transmitter::poll(Instant now, WallTime wall, MutableBytes buffer) noexcept {
  OutItem it;
  std::uint8_t prio = 0;
  while (l_.outbox.pop(it, prio)) {
    std::uint16_t ttl = wire::kV1DefaultTtl;
    if (!still_wanted(it, now, ttl)) continue;
    l_.session.renew_if_exhausted(now);
    // A publish first sent under the previous key epoch keeps its session while that epoch is
    // held (docs/engine.md §19): receivers deduplicate by (session, message id).
    const bool old = v2_ && c_.keys.previous() != nullptr &&
                     l_.session.previous_epoch_session() != 0 &&
                     l_.publisher.under_previous_epoch(it);
    wire::Packet p = packet_for(it, ttl, wall, old);
    if (guarded(it) &&
        !l_.reach.permit(it.to, wire::encoded_size(p), wire::flags_echo_request(it.flags) &&
                                                          it.type == PacketType::heartbeat, now)) {
      // Not sent (counted): a tracked transmission is tried again one retransmit_initial
      // later, by when the endpoint may have answered the challenge.
      if (it.pending != kNoSlot) l_.publisher.send_refused(it, now);
      l_.outbox.release(it);
      continue;
    }
    // The key set: the channel key its name (or, for an answer, the datagram it answers)
    // selects, marked in the flags; else the group's current (or previous) epoch.
    Crypto* set = old ? c_.keys.previous() : &c_.crypto;
    const std::uint8_t key = v2_ ? key_of(it) : 0;
    if (key != 0) {
      set = c_.keys.channel_set(key);
      p.flags = static_cast<std::uint8_t>(p.flags | wire::channel_key_flag(p.type));
    }
    if (set == nullptr) {  // the channel key was removed while this waited
      c_.counters.drop(Errc::no_channel_key);
      if (it.pending != kNoSlot) l_.publisher.send_failed(it, now);
      l_.outbox.release(it);
      continue;
    }
    const Result<std::size_t> r = wire::encode(p, *set, buffer);
    if (!r) {
      c_.counters.drop(r.error());
      if (it.pending != kNoSlot) l_.publisher.send_failed(it, now);
      l_.outbox.release(it);
      continue;
    }
    if (it.pending != kNoSlot) l_.publisher.sent(it, now);
    l_.outbox.release(it);
    c_.counters.add(&EngineStats::datagrams_sent);
    Transmit tx;
    tx.to_group = it.to_group;
    tx.to = it.to;
    tx.size = *r;
    tx.priority = prio;
    return tx;
  }
  return std::nullopt;
}

std::uint8_t Transmitter::key_of(const OutItem& it) const noexcept {
  switch (it.type) {
    case PacketType::publish: return c_.keys.channel_key_for(l_.pool.name(it.msg));
    case PacketType::subscribe:
    case PacketType::unsubscribe: return c_.keys.channel_key_for(l_.subs.name(it.sub));
    case PacketType::heartbeat: return 0;
    default: return it.key;
  }
}

bool Transmitter::guarded(const OutItem& it) const noexcept {
  if (!v2_ || it.to_group) return false;
  // The authentication-failure probe (a plain HEARTBEAT) has its own bound: one per host per
  // auth_failure_report_interval (docs/engine.md §13).
  return !(it.type == PacketType::heartbeat && it.flags == 0);
}

bool Transmitter::still_wanted(const OutItem& it, Instant now, std::uint16_t& ttl) noexcept {
  // A tracked item is still wanted only if its recipient still waits for exactly this.
  bool wanted = it.pending == kNoSlot || l_.publisher.still_wanted(it);
  if (it.msg != kNoSlot) {
    ttl = remaining_ttl(l_.pool.meta(it.msg).expires, now);
    if (ttl == 0) wanted = false;  // expired: never sent (the pending timer reports it)
  }
  if (wanted) return true;
  if (it.pending != kNoSlot) l_.publisher.discarded(it);
  l_.outbox.release(it);
  return false;
}

wire::Packet Transmitter::packet_for(const OutItem& it, std::uint16_t ttl, WallTime wall,
                                     bool previous_epoch) noexcept {
  wire::Packet p;
  p.version = c_.cfg.wire;
  p.type = it.type;
  p.flags = it.flags;
  p.session_id = previous_epoch ? l_.session.previous_epoch_session() : l_.session.id();
  p.ttl = ttl;
  p.timestamp = wire_seconds(wall, c_.cfg.epoch_offset);
  c_.rng.random_bytes(p.iv);
  switch (it.type) {
    case PacketType::publish:
      fill_publish(p, it);
      break;
    case PacketType::subscribe:
    case PacketType::unsubscribe:
    case PacketType::heartbeat:
      fill_announcement(p, it);
      break;
    default:
      fill_reply(p, it);
      break;
  }
  if (v2_) {
    p.packet_id = previous_epoch ? l_.session.take_previous_epoch_sequence()
                                 : l_.session.take_sequence();
  }
  return p;
}

void Transmitter::fill_publish(wire::Packet& p, const OutItem& it) noexcept {
  const MessageMeta& m = l_.pool.meta(it.msg);
  p.channel_id = m.channel_id;
  p.body.channel = l_.pool.name(it.msg);
  p.body.message = l_.pool.message(it.msg);
  if (v2_) {
    p.body.message_id = m.message_id;
    return;
  }
  p.packet_id = m.message_id;
  // QoS 1 retransmissions carry a fresh nonce, QoS 0/2 the publish's own (docs/engine.md, "v1
  // retransmission").
  p.body.message_id = wire::flags_qos(m.flags) == 1 ? l_.session.take_v1_id() : m.nonce;
  p.body.inner_timestamp = p.timestamp;
  p.body.v1_layout = c_.cfg.v1_publish_layout;
}

void Transmitter::fill_announcement(wire::Packet& p, const OutItem& it) noexcept {
  if (it.type != PacketType::heartbeat) {
    p.channel_id = l_.subs.id(it.sub);
    p.body.channel = l_.subs.name(it.sub);
  } else {
    p.channel_id = it.channel_id;  // zero, or a reachability token (echo request / response)
  }
  if (!v2_) p.packet_id = c_.rng.random_u32();
}

void Transmitter::fill_reply(wire::Packet& p, const OutItem& it) noexcept {
  p.channel_id = it.channel_id;
  p.body.acked_id = it.acked_id;
  if (!v2_) p.packet_id = it.acked_id;
}

}  // namespace nomq::detail
