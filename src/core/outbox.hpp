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
  // ACK family: the key index that seals it (0: the group's keys, else a channel key slot,
  // core/key_ring.hpp): that of the datagram it answers. PUBLISH and SUBSCRIBE/UNSUBSCRIBE
  // are sealed with the set their name selects; HEARTBEAT with the group's.
  std::uint8_t key = 0;
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
  // An ACK, PUBREC, PUBREL or PUBCOMP to `to`, sealed with the reply key (below).
  void send_reply(wire::PacketType type, std::uint32_t acked_id, const wire::ChannelId& channel,
                  const Endpoint& to, std::uint8_t priority) noexcept;

  // The key index replies are sealed with: Receiver::open() sets that of the datagram being
  // handled; a deferred answer sets the one it stored.
  void set_reply_key(std::uint8_t key) noexcept { reply_key_ = key; }
  std::uint8_t reply_key() const noexcept { return reply_key_; }

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
  std::uint8_t reply_key_ = 0;
  std::size_t max_queued_qos0_;
  bool v2_;
  MessagePool& pool_;
  Subscriptions& subs_;
  Counters& counters_;
};

}  // namespace nomq::detail
