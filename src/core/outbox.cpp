#include "core/outbox.hpp"

#include "core/subscriptions.hpp"

namespace nomq::detail {

Outbox::Outbox(Arena& arena, std::size_t capacity, std::size_t max_queued_qos0, WireVersion wire,
               MessagePool& pool, Subscriptions& subs, Counters& counters) noexcept
    : queue_(arena, capacity),
      max_queued_qos0_(max_queued_qos0),
      v2_(wire == WireVersion::v2),
      pool_(pool),
      subs_(subs),
      counters_(counters) {}

bool Outbox::push(std::uint8_t priority, const OutItem& item) noexcept {
  if (item.counted) ++queued_qos0_;
  if (queue_.push(priority, item) == PriorityQueue<OutItem>::npos) {
    release(item);
    return false;
  }
  return true;
}

void Outbox::send_reply(wire::PacketType type, std::uint32_t acked_id,
                        const wire::ChannelId& channel, const Endpoint& to,
                        std::uint8_t priority) noexcept {
  OutItem it;
  it.type = type;
  // v1 flags are fixed by the original (ACK carries QoS 1, the others 0); v2 carries priority.
  if (v2_) {
    it.flags = static_cast<std::uint8_t>(priority << 4);
  } else {
    it.flags = type == wire::PacketType::ack ? 1 : 0;
  }
  it.to = to;
  it.acked_id = acked_id;
  it.channel_id = channel;
  it.key = reply_key_;
  push_or_count(priority, it);
}

bool Outbox::pop(OutItem& item, std::uint8_t& priority) noexcept {
  if (queue_.empty()) return false;
  const std::uint32_t n = queue_.front();
  priority = queue_.front_priority();
  item = queue_.at(n);
  queue_.pop();
  return true;
}

void Outbox::release(const OutItem& item) noexcept {
  if (item.counted && queued_qos0_ > 0) --queued_qos0_;
  if (item.msg != kNoSlot) pool_.unref(item.msg);
  if (item.sub != kNoSlot) subs_.release_ref(item.sub);
}

}  // namespace nomq::detail
