#include "core/message_pool.hpp"

#include <cstring>

namespace nomq::detail {

MessagePool::MessagePool(Arena& arena, std::size_t count, std::size_t bytes) noexcept
    : free_(arena.make<std::uint32_t>(count)),
      heap_(arena, count, bytes) {
  for (std::size_t i = 0; i < count; ++i) free_[i] = static_cast<std::uint32_t>(count - 1 - i);
  free_count_ = count;
}

std::uint32_t MessagePool::alloc(std::size_t name_size, std::size_t message_size) noexcept {
  if (free_count_ == 0) return kNoSlot;
  const std::uint32_t s = free_[free_count_ - 1];
  if (!heap_.alloc(s, block_bytes(name_size, message_size))) return kNoSlot;
  --free_count_;
  MessageMeta* m = ::new (static_cast<void*>(heap_.data(s))) MessageMeta{};
  m->refs = 1;
  m->name_size = static_cast<std::uint8_t>(name_size);
  m->size = static_cast<std::uint16_t>(message_size);
  return s;
}

void MessagePool::unref(std::uint32_t s) noexcept {
  if (s >= free_.size() || heap_.size(s) == 0) return;  // a free slot has no block
  MessageMeta& m = meta(s);
  if (m.refs == 0) return;
  if (--m.refs == 0) {
    heap_.free(s);
    free_[free_count_++] = s;
  }
}

void MessagePool::set(std::uint32_t s, std::string_view name, Bytes message) noexcept {
  const MessageMeta& m = meta(s);
  std::uint8_t* at = heap_.data(s) + sizeof(MessageMeta);
  if (!name.empty()) std::memcpy(at, name.data(), m.name_size);
  if (!message.empty()) std::memcpy(at + m.name_size, message.data(), m.size);
}

std::string_view MessagePool::name(std::uint32_t s) const noexcept {
  return {reinterpret_cast<const char*>(heap_.data(s) + sizeof(MessageMeta)), meta(s).name_size};
}

Bytes MessagePool::message(std::uint32_t s) const noexcept {
  const MessageMeta& m = meta(s);
  return {heap_.data(s) + sizeof(MessageMeta) + m.name_size, m.size};
}

std::size_t MessagePool::state_bytes() const noexcept {
  return free_.state_bytes() + heap_.state_bytes();
}

}  // namespace nomq::detail
