// Fixed pool of message bodies the engine holds on the sending side: queued QoS 0 publishes,
// pending QoS 1/2 publishes and retained messages (both roles). A slot is a handle into a
// ByteHeap of a configured byte budget (message_pool_bytes) whose block holds the message's
// metadata (MessageMeta), channel name and message bytes, each message taking what it is, not
// the maximum: a free slot costs its heap bookkeeping only (20 bytes), where a metadata array
// took 48 more bytes for every slot whether used or not (docs/embedded.md). Slots are reference
// counted so that one body can be pending, retained and queued for transmission at once
// without being copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string_view>

#include "core/byte_heap.hpp"

#include "core/fixed_map.hpp"
#include "nomq/bytes.hpp"
#include "nomq/time.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail {

struct MessageMeta {
  wire::ChannelId channel_id{};
  std::uint32_t message_id = 0;   // v2 message id; v1 packet id
  std::uint32_t nonce = 0;        // v1 inner nonce
  std::uint32_t origin_session = 0;
  Instant expires{};
  std::uint16_t size = 0;
  std::uint8_t name_size = 0;
  std::uint8_t flags = 0;         // publish flags: qos | retain | priority
  std::uint32_t refs = 0;
};

class MessagePool {
 public:
  MessagePool(Arena& arena, std::size_t count, std::size_t bytes) noexcept;
  static constexpr std::size_t bytes_for(std::size_t count, std::size_t bytes) noexcept {
    return arena_bytes<std::uint32_t>(count) + ByteHeap::bytes_for(count, bytes);
  }
  // The budget one message takes: its metadata, name and bytes, rounded up so that the next
  // block's metadata stays aligned.
  static constexpr std::size_t block_bytes(std::size_t name_size, std::size_t message_size) noexcept {
    constexpr std::size_t a = alignof(MessageMeta);
    return (sizeof(MessageMeta) + name_size + message_size + a - 1) / a * a;
  }

  // A free slot with one reference and room for a name of `name_size` and a message of
  // `message_size` bytes, or kNoSlot (no slot, or not enough free bytes). Views of other slots
  // (name(), message()) do not survive this call.
  std::uint32_t alloc(std::size_t name_size, std::size_t message_size) noexcept;
  void ref(std::uint32_t s) noexcept { ++meta(s).refs; }
  void unref(std::uint32_t s) noexcept;

  // Copies name and message in. Preconditions: the sizes given to alloc().
  void set(std::uint32_t s, std::string_view name, Bytes message) noexcept;

  // Valid until the next alloc() (which may move blocks).
  MessageMeta& meta(std::uint32_t s) noexcept {
    return *std::launder(reinterpret_cast<MessageMeta*>(heap_.data(s)));
  }
  const MessageMeta& meta(std::uint32_t s) const noexcept {
    return *std::launder(reinterpret_cast<const MessageMeta*>(heap_.data(s)));
  }
  std::string_view name(std::uint32_t s) const noexcept;
  Bytes message(std::uint32_t s) const noexcept;

  std::size_t free_count() const noexcept { return free_count_; }
  std::size_t capacity() const noexcept { return free_.size(); }
  std::size_t bytes_capacity() const noexcept { return heap_.capacity(); }
  std::size_t bytes_used() const noexcept { return heap_.used(); }
  std::size_t state_bytes() const noexcept;

 private:
  FixedArray<std::uint32_t> free_;
  ByteHeap heap_;
  std::size_t free_count_ = 0;
};

}  // namespace nomq::detail
