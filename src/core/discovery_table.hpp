// The discovery table (v2): remote node sessions heard announcing (SUBSCRIBE or HEARTBEAT) and
// the channels each one subscribes to. Bounded twice: max_peers sessions and
// max_peer_subscriptions (session, channel) pairs. A session silent past the session timeout is
// forgotten; a new session id from an endpoint that had another one is a restart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/fixed_map.hpp"
#include "nomq/endpoint.hpp"
#include "nomq/time.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail {

struct Peer {
  std::uint32_t session_id = 0;
  Endpoint endpoint;
  Time last_heard{0};
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
  DiscoveryTable(std::size_t max_peers, std::size_t max_subscriptions);

  enum class Seen : std::uint8_t { known, joined, restarted, full };
  struct SeenResult {
    Seen kind = Seen::known;
    std::uint32_t replaced_session = 0;  // restarted: the session the endpoint had before
  };
  // Records an announcement from `session` at `from`. A new session from an endpoint that is in
  // the table under another session replaces it (restarted; the old session's subscriptions
  // are dropped). full: the peer table is full (count peer_table_full; nothing recorded).
  SeenResult announce(std::uint32_t session, const Endpoint& from, Time now) noexcept;

  // Refreshes last_heard of a known session (any authenticated packet counts as a sign of life).
  void heard(std::uint32_t session, Time now) noexcept;

  const Peer* find(std::uint32_t session) const noexcept;
  // True when `session` is unknown and `from` is in the table under another session (the node
  // restarted or renewed its session).
  bool would_replace(std::uint32_t session, const Endpoint& from) const noexcept;

  enum class Added : std::uint8_t { added, existing, full, unknown_peer };
  Added add_subscription(std::uint32_t session, const wire::ChannelId& channel) noexcept;
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

  // Removes one session silent for longer than `timeout` and returns it (call until nullopt).
  std::optional<Peer> expire_one(Time now, Duration timeout) noexcept;
  // When the next session times out; nullopt with no peers.
  std::optional<Time> next_expiry(Duration timeout) const noexcept;

  std::size_t peer_count() const noexcept { return peers_.size(); }
  std::size_t subscription_count() const noexcept { return subs_.size(); }
  std::size_t state_bytes() const noexcept { return peers_.state_bytes() + subs_.state_bytes(); }

 private:
  void drop_subscriptions_of(std::uint32_t session) noexcept;

  FixedMap<std::uint32_t, Peer, U32Hash, U32Eq> peers_;
  FixedMap<PeerSubKey, std::uint8_t, PeerSubKeyHash, PeerSubKeyEq> subs_;
};

}  // namespace nomq::detail
