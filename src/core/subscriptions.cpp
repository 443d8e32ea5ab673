#include "core/subscriptions.hpp"
#include "core/engine_errors.hpp"

#include <array>
#include <cstring>

#include "core/outbox.hpp"
#include "wire/utf8.hpp"

namespace nomq::detail {

using wire::PacketType;

Subscriptions::Subscriptions(Arena& arena, std::size_t max_channels, std::size_t max_name,
                             WireVersion wire, Crypto& crypto, Outbox& outbox) noexcept
    : subs_(arena, at_least_one(2 * max_channels)),
      names_(arena.make<char>(at_least_one(2 * max_channels) * max_name)),
      max_name_(max_name),
      max_active_(max_channels),
      v2_(wire == WireVersion::v2),
      crypto_(crypto),
      outbox_(outbox) {}

Result<void> Subscriptions::subscribe(std::string_view channel, std::uint8_t priority) noexcept {
  if (channel.empty()) return engine_error::empty_channel();
  if (channel.size() > wire::kMaxChannelName) return engine_error::channel_name_too_long(channel.size());
  if (channel.size() > max_name_) return engine_error::subscription_name_too_long(channel.size(), max_name_);
  if (!is_valid_utf8(as_bytes(channel))) return engine_error::channel_not_utf8();  // v2 receivers refuse it
  const bool filter = wire::is_filter(channel);
  if (filter && !wire::valid_filter(channel)) return engine_error::invalid_filter(channel);
  if (filter && !v2_) return engine_error::v1_no_wildcards(channel);
  const std::uint8_t prio = priority > 15 ? 15 : priority;
  const wire::ChannelId id = wire::channel_id(crypto_, channel);
  std::uint32_t s = subs_.find(id);
  if (s != kNoSlot && subs_.value(s).active) {
    subs_.value(s).priority = prio;
    return engine_error::already_subscribed(channel);
  }
  if (active_ >= max_active_) return engine_error::too_many_channels(max_active_);
  if (s == kNoSlot) {
    s = subs_.insert(id);
    if (s == kNoSlot) return engine_error::too_many_channels(max_active_);
    std::memcpy(&names_[s * max_name_], channel.data(), channel.size());
    subs_.value(s).name_size = static_cast<std::uint8_t>(channel.size());
  }
  OwnSub& o = subs_.value(s);
  o.active = true;
  o.priority = prio;
  o.filter = filter;
  ++active_;
  if (filter) ++filters_;
  if (v2_) announce(s, true, nullptr);
  return {};
}

Result<wire::ChannelId> Subscriptions::unsubscribe(std::string_view channel,
                                                   bool closed) noexcept {
  if (channel.empty()) return engine_error::empty_channel();
  if (channel.size() > wire::kMaxChannelName) return engine_error::channel_name_too_long(channel.size());
  const wire::ChannelId id = wire::channel_id(crypto_, channel);
  const std::uint32_t s = subs_.find(id);
  if (s == kNoSlot || !subs_.value(s).active) return engine_error::not_subscribed();
  OwnSub& o = subs_.value(s);
  o.active = false;
  --active_;
  if (o.filter) --filters_;
  if (v2_ && !closed) queue_unsubscribe(s);
  // A full outbox gave the reference back and may have erased the slot already.
  if (subs_.used(s) && subs_.value(s).refs == 0) subs_.erase_slot(s);
  return id;
}

Result<void> Subscriptions::withdraw(std::string_view channel) noexcept {
  if (channel.empty()) return engine_error::empty_channel();
  if (channel.size() > wire::kMaxChannelName) return engine_error::channel_name_too_long(channel.size());
  if (channel.size() > max_name_) return engine_error::subscription_name_too_long(channel.size(), max_name_);
  if (!is_valid_utf8(as_bytes(channel))) return engine_error::channel_not_utf8();
  if (!v2_) return engine_error::v1_no_withdraw();
  if (wire::is_filter(channel) && !wire::valid_filter(channel)) return engine_error::invalid_filter(channel);
  const wire::ChannelId id = wire::channel_id(crypto_, channel);
  std::uint32_t s = subs_.find(id);
  if (s != kNoSlot && subs_.value(s).active) return engine_error::withdraw_subscribed(channel);
  if (s == kNoSlot) {
    // An inactive slot holds the name while the announcement waits in the outbox (the
    // 2 x max_channels slots leave room for as many as there are subscriptions).
    s = subs_.insert(id);
    if (s == kNoSlot) return engine_error::too_many_channels(max_active_);
    std::memcpy(&names_[s * max_name_], channel.data(), channel.size());
    OwnSub& o = subs_.value(s);
    o.name_size = static_cast<std::uint8_t>(channel.size());
    o.active = false;
    o.priority = 0;
    o.filter = wire::is_filter(channel);
  }
  queue_unsubscribe(s);
  // A full outbox gave the reference back (counted queue_full) and may have erased the slot.
  if (subs_.used(s) && !subs_.value(s).active && subs_.value(s).refs == 0) subs_.erase_slot(s);
  return {};
}

std::size_t Subscriptions::rekey() noexcept {
  std::size_t moved = 0;
  // Bounded: each round moves one subscription to an id that is no longer stale.
  for (std::size_t round = 0, rounds = active_; round < rounds; ++round) {
    std::uint32_t stale = kNoSlot;
    subs_.for_each([&](std::uint32_t s) {
      if (stale == kNoSlot && subs_.value(s).active && wire::channel_id(crypto_, name(s)) != subs_.key(s)) {
        stale = s;
      }
    });
    if (stale == kNoSlot) break;
    std::array<char, wire::kMaxChannelName> copy{};
    const std::string_view old = name(stale);
    std::memcpy(copy.data(), old.data(), old.size());
    const std::string_view channel{copy.data(), old.size()};
    OwnSub& o = subs_.value(stale);
    const std::uint8_t priority = o.priority;
    o.active = false;
    --active_;
    if (o.filter) --filters_;
    if (o.refs == 0) subs_.erase_slot(stale);
    if (subscribe(channel, priority)) ++moved;
  }
  return moved;
}

void Subscriptions::unsubscribe_all() noexcept {
  if (!v2_) return;
  subs_.for_each([&](std::uint32_t s) {
    if (subs_.value(s).active) queue_unsubscribe(s);
  });
}

std::uint32_t Subscriptions::find_active(const wire::ChannelId& id) const noexcept {
  const std::uint32_t s = subs_.find(id);
  return s != kNoSlot && subs_.value(s).active ? s : kNoSlot;
}

bool Subscriptions::follows(const wire::ChannelId& id, std::string_view name) const noexcept {
  if (find_active(id) != kNoSlot) return true;
  if (filters_ == 0) return false;
  bool hit = false;
  subs_.scan([&](std::uint32_t s) {
    const OwnSub& o = subs_.value(s);
    if (!hit && o.active && o.filter && wire::filter_matches(this->name(s), name)) hit = true;
  });
  return hit;
}

void Subscriptions::announce_all() noexcept {
  subs_.for_each([&](std::uint32_t s) {
    // Re-announcements never ask for retained messages: want-retained marks a fresh
    // subscription, which is also how publishers tell one from an established one.
    if (subs_.value(s).active) announce(s, false, nullptr);
  });
  OutItem hb;
  hb.type = PacketType::heartbeat;
  hb.to_group = true;
  outbox_.push_or_count(0, hb);
}

void Subscriptions::announce_all_to(const Endpoint& to) noexcept {
  subs_.for_each([&](std::uint32_t s) {
    if (subs_.value(s).active) announce(s, false, &to);
  });
}

std::uint64_t Subscriptions::announce_all_bytes() const noexcept {
  std::uint64_t n = 0;
  subs_.for_each([&](std::uint32_t s) {
    if (subs_.value(s).active) n += wire::v2_datagram_size(1 + name(s).size());
  });
  return n;
}

void Subscriptions::release_ref(std::uint32_t slot) noexcept {
  OwnSub& s = subs_.value(slot);
  if (s.refs > 0) --s.refs;
  if (!s.active && s.refs == 0) subs_.erase_slot(slot);
}

void Subscriptions::announce(std::uint32_t slot, bool want_retained, const Endpoint* to) noexcept {
  OwnSub& s = subs_.value(slot);
  OutItem it;
  it.type = PacketType::subscribe;
  it.flags = static_cast<std::uint8_t>((s.priority << 4) |
                                       (want_retained ? wire::kFlagWantRetained : 0));
  it.to_group = to == nullptr;
  if (to != nullptr) it.to = *to;
  it.sub = slot;
  it.channel_id = subs_.key(slot);
  ++s.refs;
  outbox_.push_or_count(s.priority, it);
}

void Subscriptions::queue_unsubscribe(std::uint32_t slot) noexcept {
  OwnSub& o = subs_.value(slot);
  OutItem it;
  it.type = PacketType::unsubscribe;
  it.to_group = true;
  it.sub = slot;
  ++o.refs;
  outbox_.push_or_count(o.priority, it);
}

}  // namespace nomq::detail
