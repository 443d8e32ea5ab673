#include "core/inbound_qos.hpp"

namespace nomq::detail {

InboundEntry* InboundQosTable::find(std::uint32_t session, std::uint32_t id, Instant now) noexcept {
  const std::uint32_t s = map_.find(key(session, id));
  if (s == kNoSlot) return nullptr;
  InboundEntry& e = map_.value(s);
  // An expired awaiting_pubrel state is left for expire() so that its owner count is kept.
  if (e.expires <= now && e.state != InboundState::awaiting_pubrel) {
    remove_slot(s);
    return nullptr;
  }
  return &e;
}

InboundEntry* InboundQosTable::insert(std::uint32_t session, std::uint32_t id, InboundState state,
                                      Instant now, Instant expires) noexcept {
  if (map_.full() && !evict_settled()) return nullptr;
  const std::uint32_t s = map_.insert(key(session, id));
  if (s == kNoSlot) return nullptr;
  link_tail(s);
  InboundEntry& e = map_.value(s);
  e = InboundEntry{state, false, now, expires};
  return &e;
}

bool InboundQosTable::evict_settled() noexcept {
  // Oldest first; awaiting_pubrel states are skipped, so the walk is as long as the run of
  // open QoS 2 handshakes at the head (none at QoS 1).
  std::uint32_t victim = head_;
  while (victim != kNoSlot && map_.value(victim).state == InboundState::awaiting_pubrel) {
    victim = next_[victim];
  }
  if (victim == kNoSlot) return false;
  remove_slot(victim);
  return true;
}

void InboundQosTable::link_tail(std::uint32_t s) noexcept {
  prev_[s] = tail_;
  next_[s] = kNoSlot;
  if (tail_ != kNoSlot) {
    next_[tail_] = s;
  } else {
    head_ = s;
  }
  tail_ = s;
}

void InboundQosTable::remove_slot(std::uint32_t s) noexcept {
  if (!map_.used(s)) return;
  const std::uint32_t p = prev_[s];
  const std::uint32_t n = next_[s];
  if (p != kNoSlot) {
    next_[p] = n;
  } else {
    head_ = n;
  }
  if (n != kNoSlot) {
    prev_[n] = p;
  } else {
    tail_ = p;
  }
  prev_[s] = kNoSlot;
  next_[s] = kNoSlot;
  map_.erase_slot(s);
}

}  // namespace nomq::detail
