// Fixed pool of message bodies the engine holds on the sending side: queued QoS 0 publishes,
// pending QoS 1/2 publishes and retained messages (both roles). Each slot has room for one
// channel name (255 bytes) and one message of max_message_size bytes; slots are reference
// counted so that one body can be pending, retained and queued for transmission at once
// without being copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

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
  MessagePool(std::size_t count, std::size_t max_message_size);

  // A free slot with one reference, or kNoSlot.
  std::uint32_t alloc() noexcept;
  void ref(std::uint32_t s) noexcept { ++meta_[s].refs; }
  void unref(std::uint32_t s) noexcept;

  // Copies name and message in. Preconditions: name <= 255 bytes, message <= max size.
  void set(std::uint32_t s, std::string_view name, Bytes message) noexcept;

  MessageMeta& meta(std::uint32_t s) noexcept { return meta_[s]; }
  const MessageMeta& meta(std::uint32_t s) const noexcept { return meta_[s]; }
  std::string_view name(std::uint32_t s) const noexcept;
  Bytes message(std::uint32_t s) const noexcept;

  std::size_t free_count() const noexcept { return free_count_; }
  std::size_t capacity() const noexcept { return meta_.size(); }
  std::size_t state_bytes() const noexcept;

 private:
  std::size_t max_message_size_;
  std::vector<MessageMeta> meta_;
  std::vector<std::uint8_t> bytes_;
  std::vector<char> names_;
  std::vector<std::uint32_t> free_;
  std::size_t free_count_ = 0;
};

}  // namespace nomq::detail
