// Retained messages, both roles, per channel (at most max_retained_channels channels):
//  - publisher: the last `depth` retained messages this node published on the channel, within
//    their TTL, replayed to each newly discovered subscriber;
//  - subscriber: the last retained message received on a channel this node follows, used to
//    answer a newcomer's want-retained SUBSCRIBE (after a random delay, suppressed when another
//    node answers first), so a retained value outlives a publisher that sleeps.
// Bodies live in the MessagePool; the store holds references.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/fixed_map.hpp"
#include "core/message_pool.hpp"
#include "nomq/error.hpp"
#include "nomq/time.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail {

struct ChannelIdHash {
  std::size_t operator()(const wire::ChannelId& id) const noexcept {
    std::uint64_t h = 0;
    for (std::size_t i = 0; i < 8; ++i) h = (h << 8) | id[i];  // already a SHA-256 prefix
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
};
struct ChannelIdEq {
  bool operator()(const wire::ChannelId& a, const wire::ChannelId& b) const noexcept {
    return a == b;
  }
};

class RetainedStore {
  struct Entry {  // the 8-byte field first: 24 bytes on a Cortex-M4, not 32
    Instant answer_due{};
    std::uint32_t head = 0;
    std::uint32_t count = 0;
    std::uint32_t copy = kNoSlot;
    bool answer = false;
  };
  using Map = FixedMap<wire::ChannelId, Entry, ChannelIdHash, ChannelIdEq, std::uint16_t>;

 public:
  RetainedStore(Arena& arena, MessagePool& pool, std::size_t max_channels,
                std::size_t depth) noexcept;
  static constexpr std::size_t bytes_for(std::size_t max_channels, std::size_t depth) noexcept {
    return Map::bytes_for(max_channels) + arena_bytes<std::uint32_t>(max_channels * at_least_one(depth));
  }

  // Whether add_published(channel) would succeed now (too_many_retained otherwise).
  bool can_add(const wire::ChannelId& channel, Instant now) noexcept;
  // Keeps `slot` (a reference is taken) as the newest retained message of its channel, dropping
  // the oldest beyond `depth` and any expired. Errors: too_many_retained.
  Errc add_published(std::uint32_t slot, Instant now) noexcept;
  // f(slot) for each live published message of `channel`, oldest first.
  template <class F>
  void for_each_published(const wire::ChannelId& channel, Instant now, F&& f) {
    const std::uint32_t c = map_.find(channel);
    if (c == kNoSlot) return;
    purge(c, now);
    const Entry& e = map_.value(c);
    for (std::uint32_t i = 0; i < e.count; ++i) f(ring_[c * depth_ + (e.head + i) % depth_]);
  }
  bool has_published(const wire::ChannelId& channel, Instant now) noexcept;
  // f(channel id, name) for every channel holding a live message (either role), after
  // dropping the expired ones; the name is that of a held message. f may call the other
  // members but must not add or drop a channel.
  template <class F>
  void for_each_channel(Instant now, F&& f) {
    map_.for_each([&](std::uint32_t c) {
      purge(c, now);
      const Entry& e = map_.value(c);
      const std::uint32_t s = e.count > 0 ? ring_[c * depth_ + e.head] : e.copy;
      if (s != kNoSlot) f(map_.key(c), pool_.name(s));
    });
  }
  // Drops every retained message of `channel`, both roles, and a scheduled answer (an empty
  // retained publish clears the value, docs/engine.md §7).
  void clear(const wire::ChannelId& channel) noexcept;

  // Subscriber role: keeps `slot` (a reference is taken) as the channel's last retained message.
  // Returns false when no channel entry is free (the copy is simply not kept).
  bool set_copy(std::uint32_t slot, Instant now) noexcept;
  // The live copy of `channel`, or kNoSlot.
  std::uint32_t copy(const wire::ChannelId& channel, Instant now) noexcept;
  // Drops the copy (e.g. on unsubscribe).
  void drop_copy(const wire::ChannelId& channel) noexcept;

  // Answer timers (subscriber role).
  void schedule_answer(const wire::ChannelId& channel, Instant due) noexcept;
  void cancel_answer(const wire::ChannelId& channel) noexcept;
  bool answer_scheduled(const wire::ChannelId& channel) const noexcept;
  std::optional<Instant> next_answer() const noexcept;
  // The channel of one answer due at `now` (its timer is cleared), or nullopt.
  std::optional<wire::ChannelId> pop_due_answer(Instant now) noexcept;

  std::size_t channel_count() const noexcept { return map_.size(); }
  std::size_t state_bytes() const noexcept { return map_.state_bytes() + ring_.state_bytes(); }

 private:
  void purge(std::uint32_t c, Instant now) noexcept;
  bool unused(std::uint32_t c) const noexcept;
  // The entry of `channel`, creating one (reclaiming an unused entry if full); kNoSlot if none.
  std::uint32_t entry_for(const wire::ChannelId& channel, Instant now) noexcept;

  MessagePool& pool_;
  std::size_t depth_;
  Map map_;
  FixedArray<std::uint32_t> ring_;
  std::size_t answers_ = 0;  // entries with `answer` set: next_answer() is O(1) with none
};

}  // namespace nomq::detail
