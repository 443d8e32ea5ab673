#include "core/retained_store.hpp"

namespace nomq::detail {

RetainedStore::RetainedStore(Arena& arena, MessagePool& pool, std::size_t max_channels,
                             std::size_t depth) noexcept
    : pool_(pool),
      depth_(at_least_one(depth)),
      map_(arena, max_channels),
      ring_(arena.make<std::uint32_t>(max_channels * depth_, kNoSlot)) {}

void RetainedStore::purge(std::uint32_t c, Instant now) noexcept {
  Entry& e = map_.value(c);
  // Expired messages are dropped from the oldest end; a newer message never expires before an
  // older one of the same TTL, and a stale one in the middle is skipped when replayed.
  const std::size_t base = c * depth_;
  std::uint32_t kept = 0;
  for (std::uint32_t i = 0; i < e.count; ++i) {
    const std::uint32_t s = ring_[base + (e.head + i) % depth_];
    if (pool_.meta(s).expires <= now) {
      pool_.unref(s);
    } else {
      ring_[base + (e.head + kept) % depth_] = s;
      ++kept;
    }
  }
  e.count = kept;
  if (e.copy != kNoSlot && pool_.meta(e.copy).expires <= now) {
    pool_.unref(e.copy);
    e.copy = kNoSlot;
  }
}

bool RetainedStore::unused(std::uint32_t c) const noexcept {
  const Entry& e = map_.value(c);
  return e.count == 0 && e.copy == kNoSlot && !e.answer;
}

std::uint32_t RetainedStore::entry_for(const wire::ChannelId& channel, Instant now) noexcept {
  std::uint32_t c = map_.find(channel);
  if (c != kNoSlot) return c;
  if (map_.full()) {
    std::uint32_t victim = kNoSlot;
    map_.for_each([&](std::uint32_t s) {
      if (victim != kNoSlot) return;
      purge(s, now);
      if (unused(s)) victim = s;
    });
    if (victim == kNoSlot) return kNoSlot;
    map_.erase_slot(victim);
  }
  return map_.insert(channel);
}

bool RetainedStore::can_add(const wire::ChannelId& channel, Instant now) noexcept {
  if (map_.find(channel) != kNoSlot || !map_.full()) return true;
  bool reclaimable = false;
  map_.for_each([&](std::uint32_t s) {
    purge(s, now);
    if (unused(s)) reclaimable = true;
  });
  return reclaimable;
}

Errc RetainedStore::add_published(std::uint32_t slot, Instant now) noexcept {
  const std::uint32_t c = entry_for(pool_.meta(slot).channel_id, now);
  if (c == kNoSlot) return Errc::too_many_retained;
  purge(c, now);
  Entry& e = map_.value(c);
  const auto depth = static_cast<std::uint32_t>(depth_);
  if (e.count == depth) {
    pool_.unref(ring_[c * depth + e.head]);
    e.head = (e.head + 1) % depth;
    --e.count;
  }
  pool_.ref(slot);
  ring_[c * depth + (e.head + e.count) % depth] = slot;
  ++e.count;
  return Errc::ok;
}

bool RetainedStore::has_published(const wire::ChannelId& channel, Instant now) noexcept {
  const std::uint32_t c = map_.find(channel);
  if (c == kNoSlot) return false;
  purge(c, now);
  return map_.value(c).count > 0;
}

bool RetainedStore::set_copy(std::uint32_t slot, Instant now) noexcept {
  const std::uint32_t c = entry_for(pool_.meta(slot).channel_id, now);
  if (c == kNoSlot) return false;
  Entry& e = map_.value(c);
  pool_.ref(slot);
  if (e.copy != kNoSlot) pool_.unref(e.copy);
  e.copy = slot;
  return true;
}

std::uint32_t RetainedStore::copy(const wire::ChannelId& channel, Instant now) noexcept {
  const std::uint32_t c = map_.find(channel);
  if (c == kNoSlot) return kNoSlot;
  purge(c, now);
  return map_.value(c).copy;
}

void RetainedStore::drop_copy(const wire::ChannelId& channel) noexcept {
  const std::uint32_t c = map_.find(channel);
  if (c == kNoSlot) return;
  Entry& e = map_.value(c);
  if (e.copy != kNoSlot) pool_.unref(e.copy);
  e.copy = kNoSlot;
  if (e.answer) --answers_;
  e.answer = false;
}

void RetainedStore::clear(const wire::ChannelId& channel) noexcept {
  const std::uint32_t c = map_.find(channel);
  if (c == kNoSlot) return;
  drop_copy(channel);
  Entry& e = map_.value(c);
  for (std::uint32_t i = 0; i < e.count; ++i) pool_.unref(ring_[c * depth_ + (e.head + i) % depth_]);
  e.count = 0;
  e.head = 0;
}

void RetainedStore::schedule_answer(const wire::ChannelId& channel, Instant due) noexcept {
  const std::uint32_t c = map_.find(channel);
  if (c == kNoSlot) return;
  Entry& e = map_.value(c);
  if (e.answer) return;
  e.answer = true;
  e.answer_due = due;
  ++answers_;
}

void RetainedStore::cancel_answer(const wire::ChannelId& channel) noexcept {
  const std::uint32_t c = map_.find(channel);
  if (c != kNoSlot && map_.value(c).answer) {
    map_.value(c).answer = false;
    --answers_;
  }
}

bool RetainedStore::answer_scheduled(const wire::ChannelId& channel) const noexcept {
  const std::uint32_t c = map_.find(channel);
  return c != kNoSlot && map_.value(c).answer;
}

std::optional<Instant> RetainedStore::next_answer() const noexcept {
  std::optional<Instant> t;
  if (answers_ == 0) return t;  // the common case, checked on every loop turn
  map_.scan([&](std::uint32_t s) {
    const Entry& e = map_.value(s);
    if (e.answer && (!t || e.answer_due < *t)) t = e.answer_due;
  });
  return t;
}

std::optional<wire::ChannelId> RetainedStore::pop_due_answer(Instant now) noexcept {
  std::optional<wire::ChannelId> out;
  map_.for_each([&](std::uint32_t s) {
    Entry& e = map_.value(s);
    if (!out && e.answer && e.answer_due <= now) {
      e.answer = false;
      --answers_;
      out = map_.key(s);
    }
  });
  return out;
}

}  // namespace nomq::detail
