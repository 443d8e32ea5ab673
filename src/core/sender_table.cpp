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

SenderInfo* SenderTable::find_or_insert(std::uint32_t session, std::uint32_t now_wire) noexcept {
  if (SenderInfo* found = find(session)) return found;
  if (map_.full()) {
    std::uint32_t victim = kNoSlot;
    map_.for_each([&](std::uint32_t s) {
      const SenderInfo& e = map_.value(s);
      if (e.qos2_states != 0) return;
      // A packet stamped max_timestamp is stale once now > max_timestamp + window.
      if (static_cast<std::int64_t>(now_wire) <=
          static_cast<std::int64_t>(e.max_timestamp) + timestamp_window_s_) {
        return;
      }
      if (victim == kNoSlot || e.last_heard < map_.value(victim).last_heard) victim = s;
    });
    if (victim == kNoSlot) return nullptr;
    map_.erase_slot(victim);
    ++evictions_;
  }
  const std::uint32_t s = map_.insert(session);
  if (s == kNoSlot) return nullptr;
  SenderInfo& e = map_.value(s);
  e.window.reset(std::span<std::uint64_t>{bits_.data() + s * blocks_per_window_,
                                          blocks_per_window_});
  return &e;
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
