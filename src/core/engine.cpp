// The protocol engine's façade (docs/engine.md is the normative description of its behaviour).
// Engine::Impl holds the components of src/core/ and only dispatches: each component owns its
// state, its timers (next_deadline) and its timeout handling; next_deadline() here is the
// minimum over them. Every table is built in create(), in one block (core/arena.hpp); nothing
// below allocates.
#include "nomq/engine.hpp"

#include "core/engine_impl.hpp"
#include "core/engine_testing.hpp"

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
    case PeerEvent::Kind::auth_failed: return "auth_failed";
    case PeerEvent::Kind::impersonation: return "impersonation";
  }
  return "unknown";
}

using namespace detail;

void Engine::Impl::on_v2(const wire::Packet& p, const Endpoint& from, std::size_t bytes,
                         Instant now, WallTime wall) noexcept {
  bool challenge = false;
  const bool admitted = receiver.accept_v2(p, from, now, wall, challenge);
  const bool echo = p.type == wire::PacketType::heartbeat &&
                    (wire::flags_echo_request(p.flags) || wire::flags_echo_response(p.flags));
  // `challenge`: the endpoint should prove it receives our traffic (the sender table's
  // verified share, issue 13 M3). The datagram is authentic (its MAC passed), so it counts
  // towards the endpoint's budget (docs/engine.md §17) even when its session was refused.
  if (admitted || challenge) reach.received(from, bytes, now);
  if (challenge && !closed && !(echo && wire::flags_echo_response(p.flags))) {
    reach.request_echo(from, now);
  }
  if (!admitted) {
    // A session refused for the unverified share still takes part in the reachability
    // exchange: its answer to our challenge carries our token, which proves the endpoint (and
    // admits its next datagram), and its own challenge is answered, or two nodes that each
    // refuse the other would wait for each other forever.
    if (challenge && echo) on_echo(p, from, now);
    return;
  }
  discovery.heard(p.session_id, now);
  if (echo) return on_echo(p, from, now);
  switch (p.type) {
    case wire::PacketType::publish:
      switch (receiver.freshness(p, now)) {
        case Receiver::Freshness::fresh: return receiver.on_publish_v2(p, from, now, wall);
        case Receiver::Freshness::withheld: return;
        case Receiver::Freshness::withheld_unverified:
          if (!closed) reach.request_echo(from, now);
          return;
      }
      return;
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

// --- calls

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
  if (wire::is_filter(channel)) m.retained.drop_unfollowed_copies(channel, now);
  return {};
}

Result<void> Engine::withdraw(std::string_view channel, Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (m.closed) return engine_error::closed();
  return m.subs.withdraw(channel);
}

Result<MessageId> Engine::publish(std::string_view channel, Bytes message,
                                  const PublishOptions& options, Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (m.closed) return engine_error::closed();
  Result<MessageId> r = m.publisher.publish(channel, message, options, now);
  // The application chose this address itself: not an amplification target (§17).
  if (r && options.destination && m.v2()) m.reach.vouch(*options.destination, now);
  return r;
}

Result<void> Engine::accept(AckToken token, Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  return m.receiver.answer(token, true, m.last_now);
}

Result<void> Engine::refuse(AckToken token, Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  return m.receiver.answer(token, false, m.last_now);
}

void Engine::handle_datagram(const Endpoint& from, Bytes datagram, Instant now, WallTime wall) {
  Impl& m = *impl_;
  m.begin_call(now);
  m.receiver.note_start(now, wall);
  m.counters.add(&EngineStats::datagrams_received);
  const std::uint64_t bad_mac = m.counters.stats().dropped_by(Errc::bad_mac);
  const std::optional<wire::Packet> p = m.receiver.open(from, datagram, now, wall);
  if (m.receiver.take_impersonation()) m.session.renew_now(now);
  if (!p) {
    if (m.counters.stats().dropped_by(Errc::bad_mac) != bad_mac) {
      m.auth_failures.note(from, now, m.closed);
    }
    return;
  }
  if (m.v2()) {
    m.on_v2(*p, from, datagram.size(), now, wall);
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
  m.receiver.note_start(now, wall);
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
  consider(m.key_rotation_deadline());
  if (m.v2() && !m.closed) {
    consider(m.session.next_deadline(m.last_now));
    consider(m.discovery.next_deadline());
    consider(m.retained.next_deadline());
    consider(m.solicitation.next_deadline());
  }
  consider(m.publisher.next_deadline());
  consider(m.receiver.next_deadline());
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
SessionResume Engine::session_state() const noexcept {
  const Session& s = impl_->session;
  return SessionResume{s.id(), s.next_sequence(), s.next_message_id()};
}
std::size_t Engine::pending_count() const noexcept { return impl_->publisher.open_count(); }
std::size_t Engine::tail_count() const noexcept { return impl_->publisher.tail_count(); }
const EngineStats& Engine::stats() const noexcept { return impl_->counters.stats(); }
std::span<const AuthFailureSource> Engine::auth_failures() const noexcept {
  return impl_->auth_failures.sources();
}
const EngineConfig& Engine::config() const noexcept { return impl_->cfg; }

std::size_t Engine::state_bytes() const noexcept { return state_bytes_for(impl_->cfg); }
StateReport Engine::state_report() const noexcept { return Impl::report_for(impl_->cfg); }

namespace detail {

void EngineTesting::check_deadline_cache(Engine& e, bool on) noexcept {
  e.impl_->publisher.set_deadline_check(on);
}

std::size_t EngineTesting::state_bytes_used(const Engine& e) noexcept {
  return arena_round(sizeof(Engine::Impl)) + e.impl_->arena.used();
}

void EngineTesting::set_next_sequence(Engine& e, std::uint32_t seq) noexcept {
  e.impl_->session.set_next_sequence(seq);
}

DeadlineCacheCounts EngineTesting::deadline_cache_counts(const Engine& e) noexcept {
  return e.impl_->publisher.deadline_check_counts();
}

}  // namespace detail
}  // namespace nomq
