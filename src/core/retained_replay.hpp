// Retained messages (docs/engine.md §7): the publisher side (the last N per channel, replayed to
// each newly discovered subscriber) and the subscriber side (the last copy of each followed
// channel, offered to a newcomer after a random delay unless another node answers first). The
// store is RetainedStore; this component decides when to replay, answer and suppress.
#pragma once

#include <optional>

#include "core/counters.hpp"
#include "core/fixed_map.hpp"
#include "core/message_pool.hpp"
#include "core/retained_store.hpp"
#include "nomq/crypto.hpp"
#include "nomq/engine.hpp"

namespace nomq::detail {

class Outbox;
class Publisher;
class Reachability;
class Subscriptions;

class RetainedReplay {
 public:
  struct Links {
    MessagePool& pool;
    Outbox& outbox;
    Subscriptions& subs;
    Publisher& publisher;
    Reachability& reach;
  };
  RetainedReplay(const Context& ctx, const Links& links);

  // Publisher side: room for a retained publish on `channel`; keep message slot `slot`.
  bool can_add(const wire::ChannelId& channel, Instant now) noexcept {
    return store_.can_add(channel, now);
  }
  void add_published(std::uint32_t slot, Instant now) noexcept {
    (void)store_.add_published(slot, now);
  }
  // A new subscriber of `channel` (or one asking): every live retained message, oldest first,
  // unicast to `to`, except one still in flight that tracks the subscriber already. `filter`
  // (the text when `channel` is a wildcard filter): every channel that matches it.
  void replay_to(const wire::ChannelId& channel, std::string_view filter, const Endpoint& to,
                 std::uint32_t session, Instant now) noexcept;

  // Subscriber side. A want-retained SUBSCRIBE for `channel` (for every channel matching
  // `filter` when it is one): schedule an answer for each channel we follow, hold a copy of
  // and have no publisher-side message for.
  void on_want_retained(const wire::ChannelId& channel, std::string_view filter,
                        Instant now) noexcept;
  // An empty retained PUBLISH (or publish): the channel's retained value is cleared, both
  // roles (docs/engine.md §7).
  void clear(const wire::ChannelId& channel) noexcept { store_.clear(channel); }
  // A retained PUBLISH arrived (cancels our pending answer). true: a QoS 0 copy identical to
  // ours (id and bytes): a duplicate, not delivered.
  bool on_retained_publish(const wire::Packet& p, Instant now) noexcept;
  // Keeps the received retained message as this channel's copy.
  void keep_copy(const wire::Packet& p, Instant expires, Instant now) noexcept;
  void drop_copy(const wire::ChannelId& channel) noexcept { store_.drop_copy(channel); }
  // After a filter was left: drops the copies of matching channels no longer followed.
  void drop_unfollowed_copies(std::string_view filter, Instant now) noexcept;

  // Sends the answers that are due, to the group.
  void handle_timeout(Instant now) noexcept;
  std::optional<Instant> next_deadline() const noexcept { return store_.next_answer(); }
  static constexpr std::size_t bytes_for(const EngineLimits& l) noexcept {
    return RetainedStore::bytes_for(at_least_one(l.max_retained_channels), l.max_retained_per_channel) +
           Limiter::bytes_for(at_least_one(l.max_peer_subscriptions));
  }
  std::size_t state_bytes() const noexcept { return store_.state_bytes() + limiter_.state_bytes(); }

 private:
  // Replays per (subscriber session, channel): GCRA, a burst of kReplayBurst, then one per
  // retained_replay_interval (docs/engine.md §17). The table holds max_peer_subscriptions
  // pairs and reuses only an entry whose time has passed (it carries no debt). A pair is keyed
  // by the session id and the first 4 bytes of the channel id (8 bytes, not 20: channels of one
  // session that share them share a limit, with probability 2^-32).
  using Limiter = FixedMap<std::uint64_t, Instant, U64Hash, U64Eq>;
  static std::uint64_t limiter_key(std::uint32_t session, const wire::ChannelId& c) noexcept {
    return (std::uint64_t{session} << 32) | (std::uint64_t{c[0]} << 24) |
           (std::uint64_t{c[1]} << 16) | (std::uint64_t{c[2]} << 8) | c[3];
  }
  static constexpr std::int64_t kReplayBurst = 2;
  bool admit_replay(std::uint32_t session, const wire::ChannelId& channel, Instant now) noexcept;
  void queue_retained(std::uint32_t slot, bool to_group, const Endpoint& to) noexcept;

  const Context& c_;  // Engine::Impl::ctx (outlives every component)
  Links l_;
  RetainedStore store_;
  Limiter limiter_;
};

// A random delay in [0, max] (microseconds drawn from crypto): spreads the answers of many peers.
Duration random_delay(Rng& rng, Duration max) noexcept;

}  // namespace nomq::detail
