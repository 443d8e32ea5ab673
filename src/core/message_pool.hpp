// Fixed pool of message bodies the engine holds on the sending side: queued QoS 0 publishes,
// pending QoS 1/2 publishes and retained messages (both roles). A slot holds the metadata; the
// channel name and message bytes live in a ByteHeap of a configured byte budget
// (message_pool_bytes), each taking what it is, not the maximum. Slots are reference counted
// so that one body can be pending, retained and queued for transmission at once without being
// copied.
#pragma once

#include <cstddef>
#include <cstdint>
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
    return arena_bytes<MessageMeta>(count) + arena_bytes<std::uint32_t>(count) +
           ByteHeap::bytes_for(count, bytes);
  }

  // A free slot with one reference and room for a name of `name_size` and a message of
  // `message_size` bytes, or kNoSlot (no slot, or not enough free bytes). Views of other slots
  // (name(), message()) do not survive this call.
  std::uint32_t alloc(std::size_t name_size, std::size_t message_size) noexcept;
  void ref(std::uint32_t s) noexcept { ++meta_[s].refs; }
  void unref(std::uint32_t s) noexcept;

  // Copies name and message in. Preconditions: the sizes given to alloc().
  void set(std::uint32_t s, std::string_view name, Bytes message) noexcept;

  MessageMeta& meta(std::uint32_t s) noexcept { return meta_[s]; }
  const MessageMeta& meta(std::uint32_t s) const noexcept { return meta_[s]; }
  std::string_view name(std::uint32_t s) const noexcept;
  Bytes message(std::uint32_t s) const noexcept;

  std::size_t free_count() const noexcept { return free_count_; }
  std::size_t capacity() const noexcept { return meta_.size(); }
  std::size_t bytes_capacity() const noexcept { return heap_.capacity(); }
  std::size_t bytes_used() const noexcept { return heap_.used(); }
  std::size_t state_bytes() const noexcept;

 private:
  FixedArray<MessageMeta> meta_;
  FixedArray<std::uint32_t> free_;
  ByteHeap heap_;
  std::size_t free_count_ = 0;
};

}  // namespace nomq::detail
