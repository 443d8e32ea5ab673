// This node's own subscriptions: names, priorities, and their announcements (v2: SUBSCRIBE,
// UNSUBSCRIBE, the heartbeat's re-announcement round; docs/engine.md §3). A subscription that
// was left stays in the table while outbox items still name it (they are encoded when polled).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/counters.hpp"
#include "core/fixed_map.hpp"
#include "core/retained_store.hpp"
#include "nomq/crypto.hpp"
#include "nomq/error.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail {

class Outbox;

class Subscriptions {
  struct OwnSub {
    std::uint8_t name_size = 0;
    std::uint8_t priority = 0;
    bool active = false;
    bool filter = false;  // the name holds '+' or '#' (v2 only)
    std::uint32_t refs = 0;  // outbox items naming this subscription
  };
  using Map = FixedMap<wire::ChannelId, OwnSub, ChannelIdHash, ChannelIdEq, std::uint16_t>;

 public:
  // Names up to `max_name` bytes (limits.max_channel_name); 2 × max_channels slots (an
  // unsubscribed channel keeps its slot while the outbox still names it).
  Subscriptions(Arena& arena, std::size_t max_channels, std::size_t max_name, WireVersion wire,
                Crypto& crypto, Outbox& outbox) noexcept;
  static constexpr std::size_t bytes_for(std::size_t max_channels, std::size_t max_name) noexcept {
    return Map::bytes_for(at_least_one(2 * max_channels)) +
           arena_bytes<char>(at_least_one(2 * max_channels) * max_name);
  }

  // subscribe() of the API (docs in include/nomq/engine.hpp), without the closed check.
  Result<void> subscribe(std::string_view channel, std::uint8_t priority) noexcept;
  // Leaves `channel`, announcing it (v2) unless `closed`. Returns its id (whose retained copy
  // the caller drops). Errors: invalid_argument, channel_name_too_long, not_subscribed.
  Result<wire::ChannelId> unsubscribe(std::string_view channel, bool closed) noexcept;
  // withdraw() of the API (docs in include/nomq/engine.hpp): an UNSUBSCRIBE for a channel this
  // node does not follow. Errors: invalid_argument, channel_name_too_long, already_subscribed,
  // too_many_channels (no slot free for the announcement's name).
  Result<void> withdraw(std::string_view channel) noexcept;
  // After a channel key was added or removed (v2): every active subscription whose channel id
  // changed (its name is now sealed with another key set) leaves its old id, unannounced (peers
  // forget it when it is not re-announced), and subscribes again under the new one, announced
  // with want-retained under its new key set. Returns how many moved.
  std::size_t rekey() noexcept;
  // close(): UNSUBSCRIBE every active channel (v2).
  void unsubscribe_all() noexcept;

  // The slot of the active subscription `id`, or kNoSlot.
  std::uint32_t find_active(const wire::ChannelId& id) const noexcept;
  std::string_view name(std::uint32_t slot) const noexcept {
    return {&names_[slot * max_name_], subs_.value(slot).name_size};
  }
  const wire::ChannelId& id(std::uint32_t slot) const noexcept { return subs_.key(slot); }
  std::size_t active_count() const noexcept { return active_; }
  // An active subscription follows `name` (the channel `id`): the exact channel, or a filter
  // that matches it (docs/engine.md §16). O(1) without filters; else one match per filter.
  bool follows(const wire::ChannelId& id, std::string_view name) const noexcept;
  std::size_t filter_count() const noexcept { return filters_; }

  // Heartbeat round: every active subscription (want-retained clear) and a HEARTBEAT, to the
  // group.
  void announce_all() noexcept;
  // A solicitation's answer: every active subscription (want-retained clear) to `to`.
  void announce_all_to(const Endpoint& to) noexcept;
  // The bytes announce_all_to() puts on the wire (v2): one SUBSCRIBE per active subscription.
  std::uint64_t announce_all_bytes() const noexcept;

  // An outbox item naming `slot` was sent or discarded.
  void release_ref(std::uint32_t slot) noexcept;
  std::size_t state_bytes() const noexcept { return subs_.state_bytes() + names_.state_bytes(); }

 private:
  void announce(std::uint32_t slot, bool want_retained, const Endpoint* to) noexcept;
  void queue_unsubscribe(std::uint32_t slot) noexcept;

  Map subs_;
  FixedArray<char> names_;
  std::size_t max_name_;
  std::size_t max_active_;
  std::size_t active_ = 0;
  std::size_t filters_ = 0;  // active filters
  bool v2_;
  Crypto& crypto_;
  Outbox& outbox_;
};

}  // namespace nomq::detail
