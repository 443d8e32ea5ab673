#include "core/sender_table.hpp"

namespace nomq::detail {

SenderTable::SenderTable(Arena& arena, std::size_t capacity, std::uint32_t window_width,
                         std::uint32_t timestamp_window_s) noexcept
    : map_(arena, capacity),
      bits_(arena.make<std::uint64_t>(capacity * blocks_for(window_width))),
      blocks_per_window_(blocks_for(window_width)),
      timestamp_window_s_(timestamp_window_s) {}

SenderInfo* SenderTable::find(std::uint32_t session) noexcept {
  const std::uint32_t s = map_.find(session);
  return s == kNoSlot ? nullptr : &map_.value(s);
}

SenderInfo* SenderTable::find_or_insert(std::uint32_t session, std::uint32_t now_wire,
                                        const Endpoint& from, std::size_t per_endpoint,
                                        Errc* why, bool from_verified) noexcept {
  if (SenderInfo* found = find(session)) return found;
  // Per-endpoint quota (docs/engine.md §10): a source that already holds its share makes room
  // among its own sessions or is refused; it never takes another endpoint's slot for it.
  if (per_endpoint != 0) {
    std::size_t held = 0;
    std::uint32_t own_victim = kNoSlot;
    map_.scan([&](std::uint32_t s) {
      const SenderInfo& e = map_.value(s);
      if (!(e.endpoint == from)) return;
      ++held;
      if (evictable(e, now_wire) &&
          (own_victim == kNoSlot || e.last_heard < map_.value(own_victim).last_heard)) {
        own_victim = s;
      }
    });
    if (held >= per_endpoint) {
      if (own_victim == kNoSlot) {
        if (why != nullptr) *why = Errc::sender_quota;
        return nullptr;
      }
      map_.erase_slot(own_victim);
      ++evictions_;
    }
  }
  // The verified share: an unverified newcomer makes room among unverified sessions or is
  // refused; it never takes a slot of the half kept for verified senders.
  if (!from_verified && map_.size() >= unverified_share()) {
    std::size_t unverified = 0;
    std::uint32_t victim = kNoSlot;
    map_.scan([&](std::uint32_t s) {
      const SenderInfo& e = map_.value(s);
      if (e.verified_source) return;
      ++unverified;
      if (evictable(e, now_wire) &&
          (victim == kNoSlot || e.last_heard < map_.value(victim).last_heard)) {
        victim = s;
      }
    });
    if (unverified >= unverified_share()) {
      if (victim == kNoSlot) {
        // A full table refuses anyone; below that, the room left is the verified share's.
        if (why != nullptr) *why = map_.full() ? Errc::sender_table_full : Errc::sender_unverified;
        return nullptr;
      }
      map_.erase_slot(victim);
      ++evictions_;
    }
  }
  if (map_.full()) {
    std::uint32_t victim = kNoSlot;
    map_.for_each([&](std::uint32_t s) {
      const SenderInfo& e = map_.value(s);
      if (!evictable(e, now_wire)) return;
      if (victim == kNoSlot || e.last_heard < map_.value(victim).last_heard) victim = s;
    });
    if (victim == kNoSlot) {
      if (why != nullptr) *why = Errc::sender_table_full;
      return nullptr;
    }
    map_.erase_slot(victim);
    ++evictions_;
  }
  const std::uint32_t s = map_.insert(session);
  if (s == kNoSlot) return nullptr;
  SenderInfo& e = map_.value(s);
  e = SenderInfo{};
  e.endpoint = from;
  e.verified_source = from_verified;
  e.window.reset(std::span<std::uint64_t>{bits_.data() + s * blocks_per_window_,
                                          blocks_per_window_});
  return &e;
}

void SenderTable::endpoint_verified(const Endpoint& from) noexcept {
  map_.scan([&](std::uint32_t s) {
    SenderInfo& e = map_.value(s);
    if (e.endpoint == from) e.verified_source = true;
  });
}

Errc SenderTable::accept(SenderInfo& s, std::uint32_t seq, std::uint32_t timestamp,
                         Instant now) noexcept {
  const Errc verdict = s.window.check(seq);
  if (verdict != Errc::ok) return verdict;
  s.window.update(seq);
  s.last_heard = now;
  if (timestamp > s.max_timestamp) s.max_timestamp = timestamp;
  return Errc::ok;
}

std::size_t SenderTable::state_bytes() const noexcept {
  return map_.state_bytes() + bits_.state_bytes();
}

}  // namespace nomq::detail
