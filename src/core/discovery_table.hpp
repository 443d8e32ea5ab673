// The discovery table (v2): remote node sessions heard announcing (SUBSCRIBE or HEARTBEAT) and
// the channels each one subscribes to. Bounded twice: max_peers sessions and
// max_peer_subscriptions (session, channel) pairs. A session silent past the session timeout is
// forgotten; a new session id from an endpoint that had another one is a restart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/fixed_map.hpp"
#include "core/retained_store.hpp"
#include "nomq/endpoint.hpp"
#include "nomq/time.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail {

// The 8-byte fields first (no padding: 48 bytes on a Cortex-M4, was 56).
struct Peer {
  Instant last_heard{};
  // Subscriptions inherited from a previous session at this endpoint (restart or renewal) and
  // not yet confirmed by this session's own SUBSCRIBE are dropped at this time.
  Instant tentative_until{};
  std::uint32_t session_id = 0;
  Endpoint endpoint;
  bool has_tentative = false;
};

struct PeerSubKey {
  std::uint32_t session_id = 0;
  wire::ChannelId channel{};
};
struct PeerSubKeyHash {
  std::size_t operator()(const PeerSubKey& k) const noexcept {
    std::uint64_t h = 1469598103934665603ull ^ k.session_id;
    for (auto b : k.channel) {
      h ^= b;
      h *= 1099511628211ull;
    }
    return static_cast<std::size_t>(h ^ (h >> 32));
  }
};
struct PeerSubKeyEq {
  bool operator()(const PeerSubKey& a, const PeerSubKey& b) const noexcept {
    return a.session_id == b.session_id && a.channel == b.channel;
  }
};

class DiscoveryTable {
 public:
  using PeerMap = FixedMap<std::uint32_t, Peer, U32Hash, U32Eq, std::uint16_t>;
  using SubMap = FixedMap<PeerSubKey, std::uint8_t, PeerSubKeyHash, PeerSubKeyEq>;
  using FilterMap = FixedMap<wire::ChannelId, std::uint8_t, ChannelIdHash, ChannelIdEq, std::uint16_t>;
  // max_filters distinct peer filters of up to max_name bytes (limits.max_peer_filters,
  // limits.max_channel_name).
  DiscoveryTable(Arena& arena, std::size_t max_peers, std::size_t max_subscriptions,
                 std::size_t max_filters = 1,
                 std::size_t max_name = wire::kMaxChannelName) noexcept;
  static constexpr std::size_t bytes_for(std::size_t max_peers, std::size_t max_subscriptions,
                                         std::size_t max_filters = 1,
                                         std::size_t max_name = wire::kMaxChannelName) noexcept {
    return PeerMap::bytes_for(max_peers) + 2 * arena_bytes<std::uint32_t>(max_peers) +
           SubMap::bytes_for(max_subscriptions) + FilterMap::bytes_for(max_filters) +
           arena_bytes<char>(max_filters * max_name) + arena_bytes<std::uint8_t>(max_filters) +
           arena_bytes<std::uint32_t>(max_peers);
  }

  // Wildcard filters (docs/engine.md §16). A peer's filter subscription is a (session, filter
  // id) pair like any other; the filter's text is kept once per distinct filter (max_filters
  // of them, kMaxChannelName bytes each) so that publishers can match channel names against
  // it. note_filter() records it before the pair is added; false: the filter table is full of
  // filters still subscribed (the announcement is dropped, counted peer_table_full). A filter
  // no pair refers to any more is reclaimed when room is needed.
  bool note_filter(const wire::ChannelId& id, std::string_view filter) noexcept;
  // The text of filter `id`; empty when `id` is not a known filter (an exact channel).
  std::string_view filter_name(const wire::ChannelId& id) const noexcept;
  std::size_t filter_count() const noexcept { return filters_.size(); }

  enum class Seen : std::uint8_t { known, joined, restarted, full };
  struct SeenResult {
    Seen kind = Seen::known;
    std::uint32_t replaced_session = 0;  // restarted: the session the endpoint had before
  };
  // Records an announcement from `session` at `from`. A new session from an endpoint that is in
  // the table under another session replaces it (restarted): the new session inherits the old
  // one's subscriptions as tentative, until `tentative_until` (see add_subscription and
  // expire_tentative). full: the peer table is full (count peer_table_full; nothing recorded).
  SeenResult announce(std::uint32_t session, const Endpoint& from, Instant now,
                      Instant tentative_until) noexcept;

  // Refreshes last_heard of a known session (any authenticated packet counts as a sign of life).
  void heard(std::uint32_t session, Instant now) noexcept;

  const Peer* find(std::uint32_t session) const noexcept;
  // The table slot of `session` (below max_peers, stable while the session is known), or
  // kNoSlot. The engine indexes per-publish recipients by it.
  std::uint32_t slot_of(std::uint32_t session) const noexcept { return peers_.find(session); }
  // True when `session` is unknown and `from` is in the table under another session (the node
  // restarted or renewed its session).
  bool would_replace(std::uint32_t session, const Endpoint& from) const noexcept;

  // confirmed: the subscription was a tentative one inherited from the session's predecessor
  // and is now the session's own.
  enum class Added : std::uint8_t { added, existing, confirmed, full, unknown_peer };
  Added add_subscription(std::uint32_t session, const wire::ChannelId& channel) noexcept;
  bool is_tentative(std::uint32_t session, const wire::ChannelId& channel) const noexcept;
  // Removes one tentative subscription whose bound passed at `now` and returns it (call until
  // nullopt; the caller ends whatever waited on it).
  std::optional<PeerSubKey> expire_tentative(Instant now) noexcept;
  // When the next tentative subscription is dropped; nullopt with none.
  std::optional<Instant> next_tentative_expiry() const noexcept;
  bool remove_subscription(std::uint32_t session, const wire::ChannelId& channel) noexcept;
  bool is_subscribed(std::uint32_t session, const wire::ChannelId& channel) const noexcept;

  // Forgets a session and its subscriptions.
  void remove_peer(std::uint32_t session) noexcept;

  // Calls f(const Peer&) for every live subscriber of `channel`.
  template <class F>
  void for_each_subscriber(const wire::ChannelId& channel, F&& f) const {
    subs_.for_each([&](std::uint32_t s) {
      const PeerSubKey& k = subs_.key(s);
      if (k.channel != channel) return;
      const std::uint32_t p = peers_.find(k.session_id);
      if (p != kNoSlot) f(peers_.value(p));
    });
  }
  std::size_t subscriber_count(const wire::ChannelId& channel) const noexcept;

  // Calls f(session, channel id) for every subscription of every session at `endpoint`.
  template <class F>
  void for_each_subscription_at(const Endpoint& endpoint, F&& f) const {
    subs_.for_each([&](std::uint32_t s) {
      const PeerSubKey& k = subs_.key(s);
      const std::uint32_t p = peers_.find(k.session_id);
      if (p != kNoSlot && peers_.value(p).endpoint == endpoint) f(k.session_id, k.channel);
    });
  }

  // Calls f(const Peer&) once for every live subscriber of the channel `channel` named `name`,
  // exact or through a filter (a peer with several matching subscriptions is called once).
  // One filter match per distinct filter, then one pass over the pairs; no allocation.
  template <class F>
  void for_each_matching(const wire::ChannelId& channel, std::string_view name, F&& f) const {
    if (filters_.size() == 0) return for_each_subscriber(channel, static_cast<F&&>(f));
    match_filters(name);
    if (++mark_gen_ == 0) {  // wrapped: clear the marks once
      mark_.fill(0);
      mark_gen_ = 1;
    }
    subs_.for_each([&](std::uint32_t s) {
      const PeerSubKey& k = subs_.key(s);
      if (k.channel != channel) {
        const std::uint32_t fs = filters_.find(k.channel);
        if (fs == kNoSlot || matched_[fs] == 0) return;
      }
      const std::uint32_t p = peers_.find(k.session_id);
      if (p == kNoSlot || mark_[p] == mark_gen_) return;
      mark_[p] = mark_gen_;
      f(peers_.value(p));
    });
  }
  // `session` subscribes to the channel `channel` named `name`, exactly or through a filter.
  bool subscribes(std::uint32_t session, const wire::ChannelId& channel,
                  std::string_view name) const noexcept;

  // Removes one session silent for longer than `timeout` and returns it (call until nullopt).
  std::optional<Peer> expire_one(Instant now, Duration timeout) noexcept;
  // When the next session times out; nullopt with no peers.
  std::optional<Instant> next_expiry(Duration timeout) const noexcept;

  std::size_t peer_count() const noexcept { return peers_.size(); }
  std::size_t subscription_count() const noexcept { return subs_.size(); }
  std::size_t state_bytes() const noexcept {
    return bytes_for(peers_.capacity(), subs_.capacity(), filters_.capacity(), max_name_);
  }

 private:
  void drop_subscriptions_of(std::uint32_t session) noexcept;
  // Every change to a peer's last_heard, and every peer removal, goes through these, which
  // keep the recency list and the tentative count below in step with the table.
  void touch(std::uint32_t slot, Instant now) noexcept;
  void unlink(std::uint32_t slot) noexcept;
  void erase_peer_slot(std::uint32_t slot) noexcept;
  void set_tentative(Peer& peer, bool on) noexcept;

  PeerMap peers_;
  // Peers in the order they were last heard (head: least recently), a doubly linked list over
  // the peer slots: next_expiry() reads the head, O(1), where it scanned the table on every
  // loop turn. Kept exact while time only moves forward; a step back (wall clock) clears
  // `recency_sorted_` and next_expiry() scans until the order is restored.
  FixedArray<std::uint32_t> prev_, next_;
  std::uint32_t head_ = kNoSlot, tail_ = kNoSlot;
  mutable bool recency_sorted_ = true;  // set again by next_expiry() once it checked
  std::size_t tentative_peers_ = 0;  // peers with has_tentative: none is the common case
  static constexpr std::uint8_t kConfirmed = 0;
  static constexpr std::uint8_t kTentative = 1;
  SubMap subs_;

  // Sets matched_[f] for every filter slot f: whether `name` matches it.
  void match_filters(std::string_view name) const noexcept;
  FilterMap filters_;                           // filter id -> text size
  FixedArray<char> filter_names_;               // max_name_ bytes per filter slot
  mutable FixedArray<std::uint8_t> matched_;    // per filter slot, scratch of match_filters
  mutable FixedArray<std::uint32_t> mark_;      // per peer slot: visited in this pass
  mutable std::uint32_t mark_gen_ = 0;
  std::size_t max_name_;
};

}  // namespace nomq::detail
