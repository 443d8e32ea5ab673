// Engine construction: the config check, the state sizes (per table and in all) and the one
// block of state, from the caller's buffer or a memory resource (docs/engine.md §2).
#include <cstdint>
#include <new>

#include "core/engine_impl.hpp"

namespace nomq {

using namespace detail;

// --- construction

namespace {

Error bad_field(std::string_view field, std::size_t value, std::string_view rule,
                std::size_t limit) noexcept {
  return Error{Errc::config_bad_field, "engine config: ", field, " = ", value, " ", rule, " ",
               limit};
}

}  // namespace

Result<void> Engine::validate(const EngineConfig& c) noexcept {
  const EngineLimits& l = c.limits;
  // Each limit's range. The tables sized by max_pending, max_channels (twice), max_peers,
  // max_peer_filters, max_endpoints, max_senders and max_retained_channels number their slots
  // in 16 bits (core/fixed_map.hpp); the recipient index of a pending publish is 16 bits too.
  constexpr std::size_t kAny = static_cast<std::size_t>(-1);
  struct Range {
    std::string_view field;
    std::size_t value;
    std::size_t min;
    std::size_t max;
  };
  const Range ranges[] = {
      {"max_pending", l.max_pending, 1, kMaxSlot16},
      {"max_channels", l.max_channels, 1, kMaxSlot16 / 2},
      {"max_message_size", l.max_message_size, 1, 65535},
      {"max_retained_per_channel", l.max_retained_per_channel, 1, kAny},
      {"max_retained_channels", l.max_retained_channels, 0, kMaxSlot16},
      {"max_peers", l.max_peers, 1, kMaxSlot16},
      {"max_peer_subscriptions", l.max_peer_subscriptions, 1, kAny},
      {"max_peer_filters", l.max_peer_filters, 1, kMaxSlot16},
      {"max_endpoints", l.max_endpoints, 1, kMaxSlot16},
      {"max_senders", l.max_senders, 1, kMaxSlot16},
      {"max_senders_per_endpoint", l.max_senders_per_endpoint, 1, kAny},
      {"max_qos2_per_session", l.max_qos2_per_session, 1, kAny},
      {"max_inbound_qos", l.max_inbound_qos, 1, kAny},
      {"max_inbox", l.max_inbox, 1, kAny},
      {"max_outbox", l.max_outbox, 1, kAny},
      {"max_channel_name", l.max_channel_name, 1, kAny},
      {"replay_window", c.replay_window, 64, kAny},
  };
  for (const Range& r : ranges) {
    if (r.value < r.min) return bad_field(r.field, r.value, "is below the minimum", r.min);
    if (r.value > r.max) return bad_field(r.field, r.value, "is above the maximum", r.max);
  }
  if (l.max_channel_name > wire::kMaxChannelName) {
    return bad_field("max_channel_name", l.max_channel_name, "is above the wire's maximum",
                     wire::kMaxChannelName);
  }
  if (c.deferred_ack && c.wire != WireVersion::v2) {
    return Error{Errc::config_bad_field, "engine config: deferred_ack needs wire v2"};
  }
  if (c.deferred_ack && l.max_deferred_acks > 0xFFFE) {
    return bad_field("max_deferred_acks", l.max_deferred_acks, "is above the maximum", 0xFFFE);
  }
  const std::size_t body = l.max_channel_name + l.max_message_size;
  const std::size_t block = MessagePool::block_bytes(l.max_channel_name, l.max_message_size);
  if (l.message_pool_bytes != 0 && l.message_pool_bytes < block) {
    return bad_field("message_pool_bytes", l.message_pool_bytes,
                     "cannot hold one message: at least its metadata + max_channel_name + "
                     "max_message_size =", block);
  }
  if (l.inbox_bytes != 0 && l.inbox_bytes < body) {
    return bad_field("inbox_bytes", l.inbox_bytes,
                     "cannot hold one message: at least max_channel_name + max_message_size =", body);
  }
  return {};
}

StateReport Engine::Impl::report_for(const EngineConfig& c) noexcept {
  const EngineLimits& l = c.limits;
  return StateReport{{
      {"engine (fixed part)", arena_round(sizeof(Impl))},
      {"message pool (sent, retained bodies)", MessagePool::bytes_for(pool_slots(l), pool_bytes(l))},
      {"outbox", Outbox::bytes_for(at_least_one(l.max_outbox))},
      {"subscriptions", Subscriptions::bytes_for(l.max_channels, l.max_channel_name)},
      {"events", Events::bytes_for(at_least_one(l.max_pending), at_least_one(l.max_peers),
                                   l.max_peer_events)},
      {"publisher (pending, recipients)", Publisher::bytes_for(l)},
      {"retained store", RetainedReplay::bytes_for(l)},
      {"discovery (peers, peer subscriptions)", Discovery::bytes_for(l)},
      {"solicitation (answers, rate limiter)", Solicitation::bytes_for(l)},
      {"reachability (endpoint budgets)", Reachability::bytes_for(l)},
      {"receiver: senders (replay windows)",
       SenderTable::bytes_for(at_least_one(l.max_senders), c.replay_window)},
      {"receiver: inbound QoS, v1 nonces",
       InboundQosTable::bytes_for(at_least_one(l.max_inbound_qos)) +
           NonceCache::bytes_for(nonce_capacity(c))},
      {"receiver: inbox, datagram scratch",
       Receiver::bytes_for(c) - SenderTable::bytes_for(at_least_one(l.max_senders), c.replay_window) -
           InboundQosTable::bytes_for(at_least_one(l.max_inbound_qos)) -
           NonceCache::bytes_for(nonce_capacity(c))},
  }};
}

StateReport Engine::state_report_for(const EngineConfig& config) noexcept {
  return Impl::report_for(config);
}

std::size_t Engine::state_bytes_for(const EngineConfig& config) noexcept {
  std::size_t n = 0;
  for (const TableBytes& t : Impl::report_for(config)) n += t.bytes;
  return n;
}

Result<Engine> Engine::create(const EngineConfig& config, Crypto& crypto, Rng& rng, Instant now,
                              std::pmr::memory_resource* memory) {
  if (Result<void> ok = validate(config); !ok) return ok.error();
  if (memory == nullptr) return Error{Errc::invalid_argument, "Engine::create: no memory resource"};
  const std::size_t size = state_bytes_for(config);
  void* block = memory->allocate(size, kStateAlign);
  if (block == nullptr) {
    return Error{Errc::buffer_too_small, "Engine::create: the memory resource gave no block of ",
                 size, " bytes"};
  }
  const std::size_t head = arena_round(sizeof(Impl));
  Impl* impl = ::new (block) Impl(config, crypto, rng, now, static_cast<std::byte*>(block) + head,
                                  size - head);
  return Engine{impl, memory};
}

Result<Engine> Engine::create(const EngineConfig& config, Crypto& crypto, Rng& rng, Instant now,
                              std::span<std::byte> buffer) {
  if (Result<void> ok = validate(config); !ok) return ok.error();
  const std::size_t size = state_bytes_for(config);
  if (buffer.size() < size) {
    return Error{Errc::buffer_too_small, "Engine::create: a state buffer of ", buffer.size(),
                 " bytes, this config needs ", size, " (Engine::state_bytes_for)"};
  }
  if (reinterpret_cast<std::uintptr_t>(buffer.data()) % kStateAlign != 0) {
    return Error{Errc::invalid_argument, "Engine::create: the state buffer is not aligned to ",
                 kStateAlign, " bytes (Engine::kStateAlign)"};
  }
  const std::size_t head = arena_round(sizeof(Impl));
  Impl* impl = ::new (static_cast<void*>(buffer.data()))
      Impl(config, crypto, rng, now, buffer.data() + head, size - head);
  return Engine{impl, nullptr};
}

void Engine::destroy() noexcept {
  if (impl_ == nullptr) return;
  const std::size_t size = state_bytes_for(impl_->cfg);
  impl_->~Impl();
  if (memory_ != nullptr) memory_->deallocate(impl_, size, kStateAlign);
  impl_ = nullptr;
  memory_ = nullptr;
}

Engine::~Engine() { destroy(); }

Engine::Engine(Engine&& other) noexcept : impl_(other.impl_), memory_(other.memory_) {
  other.impl_ = nullptr;
  other.memory_ = nullptr;
}

Engine& Engine::operator=(Engine&& other) noexcept {
  if (this != &other) {
    destroy();
    impl_ = other.impl_;
    memory_ = other.memory_;
    other.impl_ = nullptr;
    other.memory_ = nullptr;
  }
  return *this;
}

}  // namespace nomq
