// How the configured limits translate into table sizes, in one place: the constructors and
// Engine::state_bytes_for() both read these.
#pragma once

#include <cstddef>

#include "core/fixed_map.hpp"
#include "core/message_pool.hpp"
#include "nomq/engine.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail {

// Message pool slots: every body the sending side can hold at once (pending, queued QoS 0,
// retained with one subscriber copy per retained channel, and one spare per own channel).
constexpr std::size_t pool_slots(const EngineLimits& l) noexcept {
  return at_least_one(l.max_pending + l.max_queued_messages +
                      l.max_retained_channels * (l.max_retained_per_channel + 1) + l.max_channels);
}

// One full-size body: the longest channel name and the largest message.
constexpr std::size_t full_body(const EngineLimits& l) noexcept {
  return wire::kMaxChannelName + l.max_message_size;
}

// message_pool_bytes (bodies and their metadata), 0 meaning every slot at full size.
constexpr std::size_t pool_bytes(const EngineLimits& l) noexcept {
  return l.message_pool_bytes != 0
             ? l.message_pool_bytes
             : pool_slots(l) * MessagePool::block_bytes(wire::kMaxChannelName, l.max_message_size);
}

// inbox_bytes, 0 meaning every inbox node at full size.
constexpr std::size_t inbox_bytes(const EngineLimits& l) noexcept {
  return l.inbox_bytes != 0 ? l.inbox_bytes : at_least_one(l.max_inbox) * full_body(l);
}

// Recipients per pending publish.
constexpr std::size_t recipients_per_publish(const EngineLimits& l) noexcept {
  return at_least_one(l.max_recipients != 0 ? l.max_recipients : l.max_peers);
}

// The receiver's decode buffer: the largest datagram that can carry a message this engine
// accepts (any channel name, max_message_size bytes), capped at the wire's maximum; a longer
// datagram is dropped (bad_length) before decoding, as one above the wire maximum always was.
constexpr std::size_t receive_scratch(const EngineLimits& l) noexcept {
  const std::size_t most = wire::kHeaderSize + wire::kMacSize + 2 * 16 /* IV, padding */ +
                           32 /* body fields */ + wire::kMaxChannelName + l.max_message_size;
  return most < wire::kMaxDatagram ? most : wire::kMaxDatagram;
}

// The v1 inner-nonce cache (one entry for a v2 engine, which has no use for it).
constexpr std::size_t nonce_capacity(const EngineConfig& c) noexcept {
  return c.wire == WireVersion::v1 ? at_least_one(c.v1_nonce_cache) : 1;
}

// Deferred acknowledgements (EngineConfig::deferred_ack, v2 only): no table when off.
constexpr std::size_t deferred_capacity(const EngineConfig& c) noexcept {
  return c.deferred_ack && c.wire == WireVersion::v2 ? at_least_one(c.limits.max_deferred_acks) : 0;
}

}  // namespace nomq::detail
