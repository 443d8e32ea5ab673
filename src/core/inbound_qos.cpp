#include "core/inbound_qos.hpp"

namespace nomq::detail {

InboundEntry* InboundQosTable::find(std::uint32_t session, std::uint32_t id, Time now) noexcept {
  const std::uint32_t s = map_.find(key(session, id));
  if (s == kNoSlot) return nullptr;
  InboundEntry& e = map_.value(s);
  // An expired awaiting_pubrel state is left for expire() so that its owner count is kept.
  if (e.expires <= now && e.state != InboundState::awaiting_pubrel) {
    map_.erase_slot(s);
    return nullptr;
  }
  return &e;
}

InboundEntry* InboundQosTable::insert(std::uint32_t session, std::uint32_t id, InboundState state,
                                      Time now, Time expires) noexcept {
  if (map_.full()) {
    std::uint32_t victim = kNoSlot;
    map_.for_each([&](std::uint32_t s) {
      const InboundEntry& e = map_.value(s);
      if (e.state == InboundState::awaiting_pubrel) return;
      if (victim == kNoSlot || e.created < map_.value(victim).created) victim = s;
    });
    if (victim == kNoSlot) return nullptr;
    map_.erase_slot(victim);
  }
  const std::uint32_t s = map_.insert(key(session, id));
  if (s == kNoSlot) return nullptr;
  InboundEntry& e = map_.value(s);
  e = InboundEntry{state, now, expires};
  return &e;
}

}  // namespace nomq::detail
