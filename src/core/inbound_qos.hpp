// Receiver-side QoS state, keyed by (sender session, message id):
//   delivered        QoS 1 (or a retained message): seen and delivered; a repeat is a duplicate
//                    (re-acknowledged, not delivered again).
//   awaiting_pubrel  QoS 2: delivered, PUBREC sent; a repeat gets PUBREC again.
//   released         QoS 2 after PUBREL: kept as a dedup record so that a retransmission that
//                    was overtaken by the PUBREL is still not delivered twice.
// Bounded (max_inbound_qos). Entries expire (awaiting_pubrel after inbound_state_lifetime;
// dedup records after min(message TTL, inbound_state_lifetime)). When full, the oldest entry
// that is not awaiting_pubrel is evicted; if every entry awaits PUBREL, the new message is
// refused (the caller drops it unacknowledged, so the publisher retransmits later).
// "Oldest" is insertion order: a doubly linked list threaded through the map's slots keeps it,
// so eviction looks at the list head (skipping only awaiting_pubrel entries) instead of scanning
// the whole table; insert and find are O(1) on average and nothing is allocated after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/fixed_map.hpp"
#include "nomq/time.hpp"

namespace nomq::detail {

enum class InboundState : std::uint8_t { delivered, awaiting_pubrel, released };

struct InboundEntry {
  InboundState state = InboundState::delivered;
  // Delivered with a deferred acknowledgement not yet accepted (EngineConfig::deferred_ack):
  // a repeat is dropped unanswered.
  bool deferred = false;
  Instant created{};
  Instant expires{};
};

class InboundQosTable {
 public:
  using Map = FixedMap<std::uint64_t, InboundEntry, U64Hash, U64Eq>;
  InboundQosTable(Arena& arena, std::size_t capacity) noexcept
      : map_(arena, capacity),
        prev_(arena.make<std::uint32_t>(capacity, kNoSlot)),
        next_(arena.make<std::uint32_t>(capacity, kNoSlot)) {}
  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return Map::bytes_for(capacity) + 2 * arena_bytes<std::uint32_t>(capacity);
  }

  static std::uint64_t key(std::uint32_t session, std::uint32_t id) noexcept {
    return (std::uint64_t{session} << 32) | id;
  }

  // The live entry for (session, id), or nullptr (an expired entry is removed and not found).
  InboundEntry* find(std::uint32_t session, std::uint32_t id, Instant now) noexcept;

  // Inserts a new entry. When the table is full, the oldest entry not awaiting PUBREL is
  // evicted; when every entry awaits PUBREL, the fair share (issue 13 M3): the oldest state of
  // the session holding the most of them is evicted, provided that session holds more than
  // `session_awaiting` (what the inserting session holds), and its session is stored in
  // `evicted_awaiting`; otherwise nullptr (refused). `awaiting_of(session)` gives a session's
  // count of awaiting states. So nobody can pin the table: whoever holds more than a newcomer
  // loses its oldest state to it.
  template <class F>
  InboundEntry* insert(std::uint32_t session, std::uint32_t id, InboundState state, Instant now,
                       Instant expires, std::uint32_t session_awaiting, F&& awaiting_of,
                       std::optional<std::uint32_t>& evicted_awaiting) noexcept {
    if (map_.full() && !evict_settled()) {
      std::uint32_t top = 0;
      std::uint32_t top_session = 0;
      map_.for_each([&](std::uint32_t s) {
        const std::uint32_t owner = static_cast<std::uint32_t>(map_.key(s) >> 32);
        const std::uint32_t n = awaiting_of(owner);
        if (n > top) {
          top = n;
          top_session = owner;
        }
      });
      if (top <= session_awaiting) return nullptr;
      std::uint32_t victim = head_;
      while (victim != kNoSlot && static_cast<std::uint32_t>(map_.key(victim) >> 32) != top_session) {
        victim = next_[victim];
      }
      if (victim == kNoSlot) return nullptr;
      remove_slot(victim);
      evicted_awaiting = top_session;
    }
    return insert(session, id, state, now, expires);
  }
  // As above without the fair share: nullptr when the table is full of awaiting states.
  InboundEntry* insert(std::uint32_t session, std::uint32_t id, InboundState state, Instant now,
                       Instant expires) noexcept;

  void erase(std::uint32_t session, std::uint32_t id) noexcept {
    const std::uint32_t s = map_.find(key(session, id));
    if (s != kNoSlot) remove_slot(s);
  }

  // Removes expired entries; calls on_expired_awaiting(session) for each awaiting_pubrel state
  // that expired (the sender table keeps a count of those per session).
  template <class F>
  void expire(Instant now, F&& on_expired_awaiting) {
    map_.for_each([&](std::uint32_t s) {
      const InboundEntry& e = map_.value(s);
      if (e.expires > now) return;
      if (e.state == InboundState::awaiting_pubrel) {
        on_expired_awaiting(static_cast<std::uint32_t>(map_.key(s) >> 32));
      }
      remove_slot(s);
    });
  }

  // Live entries (not yet expired at `now`) in `state`.
  std::size_t count(InboundState state, Instant now) const noexcept {
    std::size_t n = 0;
    map_.for_each([&](std::uint32_t s) {
      const InboundEntry& e = map_.value(s);
      if (e.state == state && e.expires > now) ++n;
    });
    return n;
  }

  std::size_t size() const noexcept { return map_.size(); }
  std::size_t capacity() const noexcept { return map_.capacity(); }
  std::size_t state_bytes() const noexcept { return bytes_for(map_.capacity()); }

 private:
  // Evicts the oldest entry not awaiting PUBREL. false: every entry awaits PUBREL.
  bool evict_settled() noexcept;
  void link_tail(std::uint32_t s) noexcept;
  // Unlinks slot s from the age list and frees it in the map.
  void remove_slot(std::uint32_t s) noexcept;

  Map map_;
  // Age list over map slots, oldest at head_.
  FixedArray<std::uint32_t> prev_;
  FixedArray<std::uint32_t> next_;
  std::uint32_t head_ = kNoSlot;
  std::uint32_t tail_ = kNoSlot;
};

}  // namespace nomq::detail
