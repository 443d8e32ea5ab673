// The protocol engine's façade (docs/engine.md is the normative description of its behaviour).
// Engine::Impl holds the components of src/core/ and only dispatches: each component owns its
// state, its timers (next_deadline) and its timeout handling; next_deadline() here is the
// minimum over them. Every table is sized in the constructor; nothing below allocates.
#include "nomq/engine.hpp"

#include "core/counters.hpp"
#include "core/discovery.hpp"
#include "core/engine_errors.hpp"
#include "core/engine_testing.hpp"
#include "core/events.hpp"
#include "core/message_pool.hpp"
#include "core/outbox.hpp"
#include "core/publisher.hpp"
#include "core/receiver.hpp"
#include "core/retained_replay.hpp"
#include "core/session.hpp"
#include "core/solicitation.hpp"
#include "core/subscriptions.hpp"
#include "core/transmitter.hpp"

namespace nomq {

std::string_view to_string(RecipientState s) noexcept {
  switch (s) {
    case RecipientState::pending: return "pending";
    case RecipientState::acknowledged: return "acknowledged";
    case RecipientState::received: return "received";
    case RecipientState::unconfirmed: return "unconfirmed";
    case RecipientState::failed: return "failed";
  }
  return "unknown";
}

std::string_view to_string(PeerEvent::Kind k) noexcept {
  switch (k) {
    case PeerEvent::Kind::joined: return "joined";
    case PeerEvent::Kind::left: return "left";
    case PeerEvent::Kind::restarted: return "restarted";
    case PeerEvent::Kind::clock_skew: return "clock_skew";
    case PeerEvent::Kind::impersonation: return "impersonation";
  }
  return "unknown";
}

using namespace detail;

namespace {

EngineConfig effective(const EngineConfig& c) {
  EngineConfig e = c;
  if (e.limits.max_message_size > 65535) e.limits.max_message_size = 65535;
  return e;
}

std::size_t pool_slots(const EngineLimits& l) {
  return at_least_one(l.max_pending + l.max_queued_messages +
                      l.max_retained_channels * (l.max_retained_per_channel + 1) + l.max_channels);
}

}  // namespace

// Members in construction order; a component may name one declared later (it only keeps the
// reference until the engine is built). Only Session's constructor draws random numbers.
struct Engine::Impl {
  Impl(const EngineConfig& c, Crypto& cr, Instant now)
      : cfg(effective(c)),
        crypto(cr),
        last_now(now),
        pool(pool_slots(cfg.limits), cfg.limits.max_message_size),
        outbox(at_least_one(cfg.limits.max_outbox), cfg.limits.max_queued_messages, cfg.wire, pool,
               subs, counters),
        subs(cfg.limits.max_channels, cfg.wire, crypto, outbox),
        session(ctx, subs, now),
        events(at_least_one(cfg.limits.max_pending), at_least_one(cfg.limits.max_peers), counters),
        publisher(ctx, {session, pool, outbox, discovery, retained, solicitation, events}),
        retained(ctx, {pool, outbox, subs, publisher}),
        discovery(ctx, {events, publisher, solicitation, retained}),
        solicitation(ctx, {outbox, subs, publisher}, now),
        receiver(ctx, {session, subs, outbox, retained, events}),
        transmitter(ctx, {session, outbox, subs, pool, publisher}) {}

  bool v2() const noexcept { return cfg.wire == WireVersion::v2; }
  void begin_call(Instant now) noexcept {
    if (now > last_now) last_now = now;
    publisher.begin_call(last_now);
  }
  void on_v2(const wire::Packet& p, const Endpoint& from, Instant now, WallTime wall) noexcept;
  void on_v1(const wire::Packet& p, const Endpoint& from, Instant now) noexcept;

  EngineConfig cfg;
  Crypto& crypto;
  Counters counters;
  Context ctx{cfg, crypto, counters};
  Instant last_now;
  bool closed = false;
  MessagePool pool;
  Outbox outbox;
  Subscriptions subs;
  Session session;
  Events events;
  Publisher publisher;
  RetainedReplay retained;
  Discovery discovery;
  Solicitation solicitation;
  Receiver receiver;
  Transmitter transmitter;
};

void Engine::Impl::on_v2(const wire::Packet& p, const Endpoint& from, Instant now,
                         WallTime wall) noexcept {
  if (!receiver.accept_v2(p, now, wall)) return;
  discovery.heard(p.session_id, now);
  switch (p.type) {
    case wire::PacketType::publish: return receiver.on_publish_v2(p, from, now, wall);
    case wire::PacketType::subscribe:
    case wire::PacketType::unsubscribe:
    case wire::PacketType::heartbeat: return discovery.on_announce(p, from, now);
    case wire::PacketType::ack:
    case wire::PacketType::pubrec:
    case wire::PacketType::pubcomp: return publisher.on_reply(p, from, now);
    case wire::PacketType::pubrel: return receiver.on_pubrel(p, from, now);
  }
}

void Engine::Impl::on_v1(const wire::Packet& p, const Endpoint& from, Instant now) noexcept {
  switch (p.type) {
    case wire::PacketType::publish: return receiver.on_publish_v1(p, from, now);
    case wire::PacketType::ack:
    case wire::PacketType::pubrec:
    case wire::PacketType::pubcomp: return publisher.on_reply(p, from, now);
    case wire::PacketType::pubrel: return receiver.on_pubrel(p, from, now);
    case wire::PacketType::subscribe:
    case wire::PacketType::unsubscribe:
    case wire::PacketType::heartbeat: return receiver.on_v1_announce(p);
  }
}

Engine::Engine(const EngineConfig& config, Crypto& crypto, Instant now)
    : impl_(std::make_unique<Impl>(config, crypto, now)) {}
Engine::~Engine() = default;

Result<void> Engine::subscribe(std::string_view channel, std::uint8_t priority, Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (m.closed) return engine_error::closed();
  return m.subs.subscribe(channel, priority);
}

Result<void> Engine::unsubscribe(std::string_view channel, Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  const Result<wire::ChannelId> id = m.subs.unsubscribe(channel, m.closed);
  if (!id) return id.error();
  m.retained.drop_copy(*id);
  return {};
}

Result<MessageId> Engine::publish(std::string_view channel, Bytes message,
                                  const PublishOptions& options, Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (m.closed) return engine_error::closed();
  return m.publisher.publish(channel, message, options, now);
}

void Engine::handle_datagram(const Endpoint& from, Bytes datagram, Instant now, WallTime wall) {
  Impl& m = *impl_;
  m.begin_call(now);
  m.counters.add(&EngineStats::datagrams_received);
  const std::optional<wire::Packet> p = m.receiver.open(from, datagram, now, wall);
  if (m.receiver.take_impersonation()) m.session.renew_now(now);
  if (!p) return;
  if (m.v2()) {
    m.on_v2(*p, from, now, wall);
  } else {
    m.on_v1(*p, from, now);
  }
}

void Engine::handle_timeout(Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (m.v2() && !m.closed) {
    m.session.handle_timeout(now, m.publisher);
    m.discovery.handle_timeout(now);
    m.solicitation.handle_timeout(now);
    m.retained.handle_timeout(now);
  }
  m.receiver.handle_timeout(now);
  m.publisher.handle_timeout(now);
}

std::optional<Transmit> Engine::poll_transmit(Instant now, WallTime wall, MutableBytes buffer) {
  Impl& m = *impl_;
  m.begin_call(now);
  return m.transmitter.poll(now, wall, buffer);
}

std::optional<Event> Engine::poll_event() {
  Impl& m = *impl_;
  m.begin_call(m.last_now);
  ControlEvent ev;
  if (m.events.pop(ev)) {
    if (!ev.is_report) return Event{ev.peer};
    return Event{m.publisher.take_report(ev.pending)};
  }
  if (auto msg = m.receiver.poll(m.last_now)) return Event{*msg};
  return std::nullopt;
}

std::optional<Instant> Engine::next_deadline() const {
  const Impl& m = *impl_;
  std::optional<Instant> t;
  auto consider = [&t](std::optional<Instant> x) {
    if (x && (!t || *x < *t)) t = x;
  };
  if (m.v2() && !m.closed) {
    consider(m.session.next_deadline(m.last_now));
    consider(m.discovery.next_deadline());
    consider(m.retained.next_deadline());
    consider(m.solicitation.next_deadline());
  }
  consider(m.publisher.next_deadline());
  return t;
}

void Engine::close(Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (m.closed) return;
  m.subs.unsubscribe_all();
  m.publisher.close();
  m.session.close();
  m.solicitation.close();
  m.closed = true;
}

std::uint32_t Engine::session_id() const noexcept { return impl_->session.id(); }
std::size_t Engine::inbound_qos2_open() const noexcept {
  return impl_->receiver.qos2_open(impl_->last_now);
}
std::size_t Engine::pending_count() const noexcept { return impl_->publisher.open_count(); }
const EngineStats& Engine::stats() const noexcept { return impl_->counters.stats(); }
const EngineConfig& Engine::config() const noexcept { return impl_->cfg; }

std::size_t Engine::state_bytes() const noexcept {
  const Impl& m = *impl_;
  return sizeof(Engine) + sizeof(Impl) + m.pool.state_bytes() + m.outbox.state_bytes() +
         m.subs.state_bytes() + m.events.state_bytes() + m.publisher.state_bytes() +
         m.retained.state_bytes() + m.discovery.state_bytes() + m.solicitation.state_bytes() +
         m.receiver.state_bytes();
}

namespace detail {

void EngineTesting::check_deadline_cache(Engine& e, bool on) noexcept {
  e.impl_->publisher.set_deadline_check(on);
}

DeadlineCacheCounts EngineTesting::deadline_cache_counts(const Engine& e) noexcept {
  return e.impl_->publisher.deadline_check_counts();
}

}  // namespace detail
}  // namespace nomq
