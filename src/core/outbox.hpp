// The outbox: descriptors of datagrams not yet polled, by priority then FIFO (docs/engine.md §1,
// §8). A descriptor holds references (a message body in the pool, an own subscription); the
// outbox gives them back when the descriptor is dropped or sent (release()).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/counters.hpp"
#include "core/message_pool.hpp"
#include "core/priority_queue.hpp"
#include "nomq/endpoint.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail {

class Subscriptions;

// The recipient index of an outbox item that is the first transmission to the group.
inline constexpr std::uint16_t kAllRecipients = 0xFFFF;

// Fields ordered so that nothing pads between them (68 bytes, was 72).
struct OutItem {
  wire::PacketType type = wire::PacketType::heartbeat;
  std::uint8_t flags = 0;
  bool to_group = false;
  bool counted = false;             // a QoS 0 publish counted against max_queued_messages
  Endpoint to;
  std::uint32_t msg = kNoSlot;      // message pool slot (reference held): PUBLISH
  std::uint32_t pending = kNoSlot;  // tracked QoS 1/2 transmission
  std::uint32_t pending_gen = 0;
  std::uint32_t sub = kNoSlot;      // own subscription slot (reference held): SUBSCRIBE/UNSUB
  std::uint32_t acked_id = 0;       // ACK, PUBREC, PUBREL, PUBCOMP
  std::uint16_t recipient = 0;      // or kAllRecipients (first transmission to the group)
  wire::ChannelId channel_id{};
};

class Outbox {
 public:
  Outbox(Arena& arena, std::size_t capacity, std::size_t max_queued_qos0, WireVersion wire,
         MessagePool& pool, Subscriptions& subs, Counters& counters) noexcept;
  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return PriorityQueue<OutItem>::bytes_for(capacity);
  }

  // Queues `item` (its references pass to the outbox). false: full, the references were given
  // back.
  bool push(std::uint8_t priority, const OutItem& item) noexcept;
  // push(), counting a full outbox as a dropped `queue_full` (replies, announcements).
  void push_or_count(std::uint8_t priority, const OutItem& item) noexcept {
    if (!push(priority, item)) counters_.drop(Errc::queue_full);
  }
  // An ACK, PUBREC, PUBREL or PUBCOMP to `to`.
  void send_reply(wire::PacketType type, std::uint32_t acked_id, const wire::ChannelId& channel,
                  const Endpoint& to, std::uint8_t priority) noexcept;

  // Takes the next item (highest priority, then FIFO). false: empty.
  bool pop(OutItem& item, std::uint8_t& priority) noexcept;
  // Gives back the references `item` holds (after it was sent or discarded).
  void release(const OutItem& item) noexcept;

  bool full() const noexcept { return queue_.full(); }
  // max_queued_messages QoS 0 publishes are waiting.
  bool qos0_full() const noexcept { return queued_qos0_ >= max_queued_qos0_; }
  std::size_t state_bytes() const noexcept { return queue_.state_bytes(); }

 private:
  PriorityQueue<OutItem> queue_;
  std::size_t queued_qos0_ = 0;
  std::size_t max_queued_qos0_;
  bool v2_;
  MessagePool& pool_;
  Subscriptions& subs_;
  Counters& counters_;
};

}  // namespace nomq::detail
