#include "core/discovery_table.hpp"

namespace nomq::detail {

DiscoveryTable::DiscoveryTable(std::size_t max_peers, std::size_t max_subscriptions)
    : peers_(max_peers), subs_(max_subscriptions) {}

DiscoveryTable::SeenResult DiscoveryTable::announce(std::uint32_t session, const Endpoint& from,
                                                    Time now) noexcept {
  const std::uint32_t p = peers_.find(session);
  if (p != kNoSlot) {
    Peer& peer = peers_.value(p);
    peer.last_heard = now;
    peer.endpoint = from;
    return {Seen::known, 0};
  }
  // A restart (or a session renewal) keeps the endpoint and changes the session id.
  std::uint32_t old = kNoSlot;
  peers_.for_each([&](std::uint32_t s) {
    if (peers_.value(s).endpoint == from) old = s;
  });
  SeenResult result{Seen::joined, 0};
  if (old != kNoSlot) {
    result = {Seen::restarted, peers_.key(old)};
    drop_subscriptions_of(result.replaced_session);
    peers_.erase_slot(old);
  }
  const std::uint32_t s = peers_.insert(session);
  if (s == kNoSlot) return {Seen::full, 0};
  peers_.value(s) = Peer{session, from, now};
  return result;
}

bool DiscoveryTable::would_replace(std::uint32_t session, const Endpoint& from) const noexcept {
  if (peers_.find(session) != kNoSlot) return false;
  bool other = false;
  peers_.for_each([&](std::uint32_t s) {
    if (peers_.value(s).endpoint == from) other = true;
  });
  return other;
}

void DiscoveryTable::heard(std::uint32_t session, Time now) noexcept {
  const std::uint32_t p = peers_.find(session);
  if (p != kNoSlot) peers_.value(p).last_heard = now;
}

const Peer* DiscoveryTable::find(std::uint32_t session) const noexcept {
  const std::uint32_t p = peers_.find(session);
  return p == kNoSlot ? nullptr : &peers_.value(p);
}

DiscoveryTable::Added DiscoveryTable::add_subscription(std::uint32_t session,
                                                       const wire::ChannelId& channel) noexcept {
  if (peers_.find(session) == kNoSlot) return Added::unknown_peer;
  const PeerSubKey k{session, channel};
  if (subs_.find(k) != kNoSlot) return Added::existing;
  return subs_.insert(k) == kNoSlot ? Added::full : Added::added;
}

bool DiscoveryTable::remove_subscription(std::uint32_t session,
                                         const wire::ChannelId& channel) noexcept {
  const std::uint32_t s = subs_.find(PeerSubKey{session, channel});
  if (s == kNoSlot) return false;
  subs_.erase_slot(s);
  return true;
}

bool DiscoveryTable::is_subscribed(std::uint32_t session,
                                   const wire::ChannelId& channel) const noexcept {
  return subs_.find(PeerSubKey{session, channel}) != kNoSlot;
}

void DiscoveryTable::remove_peer(std::uint32_t session) noexcept {
  drop_subscriptions_of(session);
  peers_.erase(session);
}

void DiscoveryTable::drop_subscriptions_of(std::uint32_t session) noexcept {
  subs_.for_each([&](std::uint32_t s) {
    if (subs_.key(s).session_id == session) subs_.erase_slot(s);
  });
}

std::size_t DiscoveryTable::subscriber_count(const wire::ChannelId& channel) const noexcept {
  std::size_t n = 0;
  for_each_subscriber(channel, [&n](const Peer&) { ++n; });
  return n;
}

std::optional<Peer> DiscoveryTable::expire_one(Time now, Duration timeout) noexcept {
  std::uint32_t victim = kNoSlot;
  peers_.for_each([&](std::uint32_t s) {
    if (victim == kNoSlot && now - peers_.value(s).last_heard >= timeout) victim = s;
  });
  if (victim == kNoSlot) return std::nullopt;
  const Peer gone = peers_.value(victim);
  remove_peer(gone.session_id);
  return gone;
}

std::optional<Time> DiscoveryTable::next_expiry(Duration timeout) const noexcept {
  std::optional<Time> t;
  peers_.for_each([&](std::uint32_t s) {
    const Time due = peers_.value(s).last_heard + timeout;
    if (!t || due < *t) t = due;
  });
  return t;
}

}  // namespace nomq::detail
