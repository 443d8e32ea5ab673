#include "core/message_pool.hpp"

#include <cstring>

namespace nomq::detail {

MessagePool::MessagePool(Arena& arena, std::size_t count, std::size_t bytes) noexcept
    : meta_(arena.make<MessageMeta>(count)),
      free_(arena.make<std::uint32_t>(count)),
      heap_(arena, count, bytes) {
  for (std::size_t i = 0; i < count; ++i) free_[i] = static_cast<std::uint32_t>(count - 1 - i);
  free_count_ = count;
}

std::uint32_t MessagePool::alloc(std::size_t name_size, std::size_t message_size) noexcept {
  if (free_count_ == 0) return kNoSlot;
  const std::uint32_t s = free_[free_count_ - 1];
  if (!heap_.alloc(s, name_size + message_size)) return kNoSlot;
  --free_count_;
  meta_[s] = MessageMeta{};
  meta_[s].refs = 1;
  meta_[s].name_size = static_cast<std::uint8_t>(name_size);
  meta_[s].size = static_cast<std::uint16_t>(message_size);
  return s;
}

void MessagePool::unref(std::uint32_t s) noexcept {
  if (s >= meta_.size() || meta_[s].refs == 0) return;
  if (--meta_[s].refs == 0) {
    heap_.free(s);
    free_[free_count_++] = s;
  }
}

void MessagePool::set(std::uint32_t s, std::string_view name, Bytes message) noexcept {
  const MessageMeta& m = meta_[s];
  std::uint8_t* at = heap_.data(s);
  if (!name.empty()) std::memcpy(at, name.data(), m.name_size);
  if (!message.empty()) std::memcpy(at + m.name_size, message.data(), m.size);
}

std::string_view MessagePool::name(std::uint32_t s) const noexcept {
  return {reinterpret_cast<const char*>(heap_.data(s)), meta_[s].name_size};
}

Bytes MessagePool::message(std::uint32_t s) const noexcept {
  return {heap_.data(s) + meta_[s].name_size, meta_[s].size};
}

std::size_t MessagePool::state_bytes() const noexcept {
  return meta_.state_bytes() + free_.state_bytes() + heap_.state_bytes();
}

}  // namespace nomq::detail
