#include "core/message_pool.hpp"

#include <cstring>

namespace nomq::detail {

MessagePool::MessagePool(std::size_t count, std::size_t max_message_size)
    : max_message_size_(max_message_size) {
  meta_.resize(count);
  bytes_.assign(count * max_message_size, 0);
  names_.assign(count * wire::kMaxChannelName, 0);
  free_.resize(count);
  for (std::size_t i = 0; i < count; ++i) free_[i] = static_cast<std::uint32_t>(count - 1 - i);
  free_count_ = count;
}

std::uint32_t MessagePool::alloc() noexcept {
  if (free_count_ == 0) return kNoSlot;
  const std::uint32_t s = free_[--free_count_];
  meta_[s] = MessageMeta{};
  meta_[s].refs = 1;
  return s;
}

void MessagePool::unref(std::uint32_t s) noexcept {
  if (s >= meta_.size() || meta_[s].refs == 0) return;
  if (--meta_[s].refs == 0) free_[free_count_++] = s;
}

void MessagePool::set(std::uint32_t s, std::string_view name, Bytes message) noexcept {
  MessageMeta& m = meta_[s];
  m.name_size = static_cast<std::uint8_t>(name.size());
  m.size = static_cast<std::uint16_t>(message.size());
  if (!name.empty()) std::memcpy(&names_[s * wire::kMaxChannelName], name.data(), name.size());
  if (!message.empty()) {
    std::memcpy(&bytes_[s * max_message_size_], message.data(), message.size());
  }
}

std::string_view MessagePool::name(std::uint32_t s) const noexcept {
  return {&names_[s * wire::kMaxChannelName], meta_[s].name_size};
}

Bytes MessagePool::message(std::uint32_t s) const noexcept {
  return {bytes_.data() + s * max_message_size_, meta_[s].size};
}

std::size_t MessagePool::state_bytes() const noexcept {
  return meta_.capacity() * sizeof(MessageMeta) + bytes_.capacity() + names_.capacity() +
         free_.capacity() * sizeof(std::uint32_t);
}

}  // namespace nomq::detail
