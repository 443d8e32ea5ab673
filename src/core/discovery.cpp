#include "core/discovery.hpp"

#include "core/events.hpp"
#include "core/publisher.hpp"
#include "core/retained_replay.hpp"
#include "core/solicitation.hpp"

namespace nomq::detail {

using wire::PacketType;

Discovery::Discovery(const Context& ctx, const Links& links)
    : c_(ctx),
      l_(links),
      table_(ctx.arena, at_least_one(ctx.cfg.limits.max_peers),
             at_least_one(ctx.cfg.limits.max_peer_subscriptions),
             at_least_one(ctx.cfg.limits.max_peer_filters), ctx.cfg.limits.max_channel_name) {}

void Discovery::on_announce(const wire::Packet& p, const Endpoint& from, Instant now) noexcept {
  if (!note_peer(p, from, now)) return;
  if (p.type == PacketType::heartbeat) {
    if (wire::flags_solicit(p.flags)) {
      l_.solicitation.on_solicit(p.session_id, from, now, table_.peer_count());
    }
    return;
  }
  if (p.type == PacketType::unsubscribe) {
    const std::string_view filter = table_.filter_name(p.channel_id);
    table_.remove_subscription(p.session_id, p.channel_id);
    l_.publisher.fail_recipients_of(p.session_id, &p.channel_id, filter);
    return;
  }
  on_subscribe(p, from, now);
}

// The peer table's side of an announcement. false: the table is full (counted).
bool Discovery::note_peer(const wire::Packet& p, const Endpoint& from, Instant now) noexcept {
  // A restarted node's start-up solicitation leaves before its SUBSCRIBEs, and any of them may
  // be lost: the new session inherits the old one's subscriptions as tentative (it stays a
  // tracked recipient at this endpoint) until its SUBSCRIBEs confirm them, an UNSUBSCRIBE
  // removes one, or two re-announcement rounds pass without confirmation.
  const auto seen = table_.announce(p.session_id, from, now, now + tentative_bound());
  switch (seen.kind) {
    case DiscoveryTable::Seen::full:
      c_.counters.drop(Errc::peer_table_full);
      return false;
    case DiscoveryTable::Seen::joined:
      l_.events.push_peer(PeerEvent::Kind::joined, from, p.session_id);
      break;
    case DiscoveryTable::Seen::restarted:
      l_.events.push_peer(PeerEvent::Kind::restarted, from, p.session_id);
      l_.publisher.rename_recipients(seen.replaced_session, p.session_id, from);
      break;
    case DiscoveryTable::Seen::known:
      break;
  }
  return true;
}

void Discovery::on_subscribe(const wire::Packet& p, const Endpoint& from, Instant now) noexcept {
  // A filter (the name holds '+' or '#'; a malformed one is kept as an exact name, which no
  // channel can have): its text is kept for matching (docs/engine.md §16).
  std::string_view filter;
  if (wire::is_filter(p.body.channel) && wire::valid_filter(p.body.channel)) {
    if (!table_.note_filter(p.channel_id, p.body.channel)) {
      return c_.counters.drop(Errc::peer_table_full);
    }
    filter = p.body.channel;
  }
  const auto added = table_.add_subscription(p.session_id, p.channel_id);
  if (added == DiscoveryTable::Added::full) return c_.counters.drop(Errc::peer_table_full);
  const bool want = wire::flags_want_retained(p.flags);
  if (added == DiscoveryTable::Added::added || added == DiscoveryTable::Added::confirmed) {
    l_.publisher.on_new_subscriber(p.session_id, from, p.channel_id, filter, !want, now);
    l_.retained.replay_to(p.channel_id, filter, from, p.session_id, now);
  } else if (want) {
    l_.retained.replay_to(p.channel_id, filter, from, p.session_id, now);
  }
  if (want) l_.retained.on_want_retained(p.channel_id, filter, now);
}

void Discovery::handle_timeout(Instant now) noexcept {
  while (auto gone = table_.expire_one(now, c_.cfg.timers.session_timeout)) {
    l_.events.push_peer(PeerEvent::Kind::left, gone->endpoint, gone->session_id);
    l_.publisher.fail_recipients_of(gone->session_id, nullptr, {});
  }
  // An inherited subscription never confirmed: whatever still waits on it ends, reported
  // failed (never silently ok).
  while (auto k = table_.expire_tentative(now)) {
    l_.publisher.fail_recipients_of(k->session_id, &k->channel, table_.filter_name(k->channel));
  }
}

std::optional<Instant> Discovery::next_deadline() const noexcept {
  auto peers = table_.next_expiry(c_.cfg.timers.session_timeout);
  auto tentative = table_.next_tentative_expiry();
  if (!peers) return tentative;
  if (tentative && *tentative < *peers) return tentative;
  return peers;
}

void Discovery::replay_owed(const Endpoint& to, Instant now) noexcept {
  table_.for_each_subscription_at(to, [&](std::uint32_t session, const wire::ChannelId& channel) {
    l_.retained.replay_to(channel, table_.filter_name(channel), to, session, now);
  });
}

void Discovery::confirm_if_tentative(std::uint32_t session,
                                     const wire::ChannelId& channel) noexcept {
  if (table_.is_tentative(session, channel)) (void)table_.add_subscription(session, channel);
}

}  // namespace nomq::detail
