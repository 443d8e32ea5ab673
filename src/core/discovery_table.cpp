#include "core/discovery_table.hpp"

namespace nomq::detail {

DiscoveryTable::DiscoveryTable(Arena& arena, std::size_t max_peers, std::size_t max_subscriptions,
                               std::size_t max_filters, std::size_t max_name) noexcept
    : peers_(arena, max_peers),
      prev_(arena.make<std::uint32_t>(max_peers, kNoSlot)),
      next_(arena.make<std::uint32_t>(max_peers, kNoSlot)),
      subs_(arena, max_subscriptions),
      filters_(arena, max_filters),
      filter_names_(arena.make<char>(max_filters * max_name, 0)),
      matched_(arena.make<std::uint8_t>(max_filters, 0)),
      mark_(arena.make<std::uint32_t>(max_peers, 0)),
      max_name_(max_name) {}

bool DiscoveryTable::note_filter(const wire::ChannelId& id, std::string_view filter) noexcept {
  if (filter.empty() || filter.size() > max_name_) return false;
  if (filters_.find(id) != kNoSlot) return true;
  if (filters_.full()) {
    // Reclaim a filter no (session, filter) pair refers to any more (rare: the table is full).
    std::uint32_t victim = kNoSlot;
    filters_.for_each([&](std::uint32_t f) {
      if (victim != kNoSlot) return;
      bool used = false;
      subs_.scan([&](std::uint32_t k) {
        if (subs_.key(k).channel == filters_.key(f)) used = true;
      });
      if (!used) victim = f;
    });
    if (victim == kNoSlot) return false;
    filters_.erase_slot(victim);
  }
  const std::uint32_t f = filters_.insert(id);
  if (f == kNoSlot) return false;
  filters_.value(f) = static_cast<std::uint8_t>(filter.size());
  filter.copy(&filter_names_[f * max_name_], filter.size());
  return true;
}

std::string_view DiscoveryTable::filter_name(const wire::ChannelId& id) const noexcept {
  const std::uint32_t f = filters_.find(id);
  if (f == kNoSlot) return {};
  return {&filter_names_[f * max_name_], filters_.value(f)};
}

void DiscoveryTable::match_filters(std::string_view name) const noexcept {
  filters_.scan([&](std::uint32_t f) {
    const std::string_view text{&filter_names_[f * max_name_], filters_.value(f)};
    matched_[f] = wire::filter_matches(text, name) ? 1 : 0;
  });
}

bool DiscoveryTable::subscribes(std::uint32_t session, const wire::ChannelId& channel,
                                std::string_view name) const noexcept {
  if (is_subscribed(session, channel)) return true;
  bool hit = false;
  filters_.scan([&](std::uint32_t f) {
    if (hit || subs_.find(PeerSubKey{session, filters_.key(f)}) == kNoSlot) return;
    const std::string_view text{&filter_names_[f * max_name_], filters_.value(f)};
    hit = wire::filter_matches(text, name);
  });
  return hit;
}

void DiscoveryTable::unlink(std::uint32_t slot) noexcept {
  const std::uint32_t p = prev_[slot], n = next_[slot];
  if (p != kNoSlot) next_[p] = n; else if (head_ == slot) head_ = n;
  if (n != kNoSlot) prev_[n] = p; else if (tail_ == slot) tail_ = p;
  prev_[slot] = next_[slot] = kNoSlot;
}

void DiscoveryTable::touch(std::uint32_t slot, Instant now) noexcept {
  peers_.value(slot).last_heard = now;
  if (tail_ == slot) {
    // Already the most recent; only a step back in time can break the order here.
    if (prev_[slot] != kNoSlot && peers_.value(prev_[slot]).last_heard > now) {
      recency_sorted_ = false;
    }
    return;
  }
  unlink(slot);
  if (tail_ != kNoSlot && peers_.value(tail_).last_heard > now) recency_sorted_ = false;
  prev_[slot] = tail_;
  if (tail_ != kNoSlot) next_[tail_] = slot; else head_ = slot;
  tail_ = slot;
}

void DiscoveryTable::set_tentative(Peer& peer, bool on) noexcept {
  if (peer.has_tentative == on) return;
  peer.has_tentative = on;
  if (on) {
    ++tentative_peers_;
  } else {
    --tentative_peers_;
  }
}

void DiscoveryTable::erase_peer_slot(std::uint32_t slot) noexcept {
  if (!peers_.used(slot)) return;
  set_tentative(peers_.value(slot), false);
  unlink(slot);
  peers_.erase_slot(slot);
}

DiscoveryTable::SeenResult DiscoveryTable::announce(std::uint32_t session, const Endpoint& from,
                                                    Instant now, Instant tentative_until) noexcept {
  const std::uint32_t p = peers_.find(session);
  if (p != kNoSlot) {
    peers_.value(p).endpoint = from;
    touch(p, now);
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
    erase_peer_slot(old);
  }
  const std::uint32_t s = peers_.insert(session);
  if (s == kNoSlot) {
    // Only when nothing was replaced (a replacement frees the slot it takes).
    return {Seen::full, 0};
  }
  peers_.value(s) = Peer{now, tentative_until, session, from, false};
  touch(s, now);
  if (result.kind == Seen::restarted) {
    // The same node under a new session most likely still subscribes to what it did: it stays
    // a recipient of those channels until its own SUBSCRIBEs confirm them or the bound passes.
    // Its SUBSCRIBE may arrive after its HEARTBEAT, or be lost; dropping the subscriptions here
    // would leave publishes made meanwhile without the node as a tracked recipient.
    // Re-keyed one by one: an erase frees the slot the insert takes, so this cannot fail.
    const std::uint32_t prev = result.replaced_session;
    bool any = false;
    subs_.for_each([&](std::uint32_t k) {
      if (subs_.key(k).session_id != prev) return;
      const wire::ChannelId ch = subs_.key(k).channel;
      subs_.erase_slot(k);
      const std::uint32_t n = subs_.insert(PeerSubKey{session, ch});
      if (n != kNoSlot) {
        subs_.value(n) = kTentative;
        any = true;
      }
    });
    set_tentative(peers_.value(s), any);
  }
  return result;
}

bool DiscoveryTable::is_tentative(std::uint32_t session,
                                  const wire::ChannelId& channel) const noexcept {
  const std::uint32_t k = subs_.find(PeerSubKey{session, channel});
  return k != kNoSlot && subs_.value(k) == kTentative;
}

std::optional<PeerSubKey> DiscoveryTable::expire_tentative(Instant now) noexcept {
  std::optional<PeerSubKey> gone;
  peers_.for_each([&](std::uint32_t p) {
    Peer& peer = peers_.value(p);
    if (gone || !peer.has_tentative || now < peer.tentative_until) return;
    subs_.for_each([&](std::uint32_t k) {
      if (gone || subs_.key(k).session_id != peer.session_id || subs_.value(k) != kTentative) {
        return;
      }
      gone = subs_.key(k);
      subs_.erase_slot(k);
    });
    if (!gone) set_tentative(peer, false);
  });
  return gone;
}

std::optional<Instant> DiscoveryTable::next_tentative_expiry() const noexcept {
  std::optional<Instant> t;
  if (tentative_peers_ == 0) return t;  // the common case, checked on every loop turn
  peers_.scan([&](std::uint32_t p) {
    const Peer& peer = peers_.value(p);
    if (peer.has_tentative && (!t || peer.tentative_until < *t)) t = peer.tentative_until;
  });
  return t;
}

bool DiscoveryTable::would_replace(std::uint32_t session, const Endpoint& from) const noexcept {
  if (peers_.find(session) != kNoSlot) return false;
  bool other = false;
  peers_.for_each([&](std::uint32_t s) {
    if (peers_.value(s).endpoint == from) other = true;
  });
  return other;
}

void DiscoveryTable::heard(std::uint32_t session, Instant now) noexcept {
  const std::uint32_t p = peers_.find(session);
  if (p != kNoSlot) touch(p, now);
}

const Peer* DiscoveryTable::find(std::uint32_t session) const noexcept {
  const std::uint32_t p = peers_.find(session);
  return p == kNoSlot ? nullptr : &peers_.value(p);
}

DiscoveryTable::Added DiscoveryTable::add_subscription(std::uint32_t session,
                                                       const wire::ChannelId& channel) noexcept {
  if (peers_.find(session) == kNoSlot) return Added::unknown_peer;
  const PeerSubKey k{session, channel};
  if (const std::uint32_t found = subs_.find(k); found != kNoSlot) {
    if (subs_.value(found) != kTentative) return Added::existing;
    subs_.value(found) = kConfirmed;
    return Added::confirmed;
  }
  const std::uint32_t n = subs_.insert(k);
  if (n == kNoSlot) return Added::full;
  subs_.value(n) = kConfirmed;
  return Added::added;
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
  const std::uint32_t p = peers_.find(session);
  if (p != kNoSlot) erase_peer_slot(p);
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

std::optional<Peer> DiscoveryTable::expire_one(Instant now, Duration timeout) noexcept {
  std::uint32_t victim = kNoSlot;
  peers_.for_each([&](std::uint32_t s) {
    if (victim == kNoSlot && now - peers_.value(s).last_heard >= timeout) victim = s;
  });
  if (victim == kNoSlot) return std::nullopt;
  const Peer gone = peers_.value(victim);
  remove_peer(gone.session_id);
  return gone;
}

std::optional<Instant> DiscoveryTable::next_expiry(Duration timeout) const noexcept {
  if (head_ == kNoSlot) return std::nullopt;
  if (recency_sorted_) return peers_.value(head_).last_heard + timeout;
  std::optional<Instant> t;
  peers_.scan([&](std::uint32_t s) {
    const Instant due = peers_.value(s).last_heard + timeout;
    if (!t || due < *t) t = due;
  });
  // Once every peer stepped back has been heard again the list is in order again.
  bool sorted = true;
  for (std::uint32_t s = head_; sorted && next_[s] != kNoSlot; s = next_[s]) {
    if (peers_.value(s).last_heard > peers_.value(next_[s]).last_heard) sorted = false;
  }
  recency_sorted_ = sorted;
  return t;
}

}  // namespace nomq::detail
