// The engine's key handling and reachability exchange, kept out of engine.cpp (the façade,
// which only dispatches): key epochs and their rotation (docs/engine.md §19), channel keys
// (§20), and the echo that verifies an endpoint (§17, §10's verified share, §18's freshness).
#include "nomq/engine.hpp"

#include "core/engine_impl.hpp"
#include "wire/utf8.hpp"

namespace nomq {

using namespace detail;

// Reachability check (docs/engine.md §17): echo a challenge's token to its sender; a token we
// sent coming back verifies the endpoint and releases the work refused for lack of budget.
void Engine::Impl::on_echo(const wire::Packet& p, const Endpoint& from, Instant now) noexcept {
  if (wire::flags_echo_request(p.flags)) {
    if (closed) return;
    OutItem it;
    it.type = wire::PacketType::heartbeat;
    it.flags = wire::kFlagEchoResponse;
    it.to = from;
    it.channel_id = p.channel_id;
    outbox.push_or_count(15, it);
    return;
  }
  const Reachability::Owed owed = reach.on_echo(from, p.channel_id, now);
  if (!owed.verified) return;
  receiver.verified_live(p.session_id, p.packet_id);
  receiver.endpoint_verified(from);
  // Its session was refused for the sender table's unverified share (M3): its announcements
  // were dropped with it, so ask it for them again now that it will be admitted.
  const bool refused = !receiver.knows_sender(p.session_id);
  publisher.retry_refused(from, now);
  if (closed) return;
  if (refused) solicitation.solicit(from);
  if (owed.replay) discovery.replay_owed(from, now);
  if (owed.answer) {
    subs.announce_all_to(from);
    counters.add(&EngineStats::solicitations_answered);
  }
}

void Engine::Impl::run_key_rotation(Instant now) noexcept {
  if (keys.switch_pending() && now >= keys.switch_at()) {
    keys.switch_to_next();
    session.switch_epoch(now);
    publisher.key_epoch_switched();
    counters.add(&EngineStats::key_epoch_switches);
  }
  if (keys.overlap_open() && !keys.switch_pending() && now >= keys.retire_at()) {
    keys.retire_previous();
    counters.add(&EngineStats::key_epochs_retired);
  }
}

std::optional<Instant> Engine::Impl::key_rotation_deadline() const noexcept {
  if (keys.switch_pending()) return keys.switch_at();
  if (keys.overlap_open()) return keys.retire_at();
  return std::nullopt;
}

Result<void> Engine::rotate_keys(Crypto& next, std::uint32_t epoch, const KeyRotation& when,
                                 Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (!m.v2()) {
    return Error{Errc::invalid_argument,
                 "key rotation needs wire v2 (v1 has no key epochs: change v1 keys together)"};
  }
  if (m.closed) return engine_error::closed();
  if (const auto pending = m.keys.next_epoch()) {
    return Error{Errc::invalid_argument, "the rotation to key epoch ", *pending,
                 " has not switched yet: wait for it (key_overlap_s / 2)"};
  }
  if (epoch != m.keys.epoch() + 1) {
    return Error{Errc::invalid_argument, "key epoch ", epoch, ": the next epoch must be ",
                 m.keys.epoch() + std::uint64_t{1}};
  }
  if (when.switch_after < Duration::zero() || when.overlap <= when.switch_after) {
    return Error{Errc::invalid_argument,
                 "key rotation: overlap must be longer than switch_after (and neither negative)"};
  }
  const Instant switch_at = m.last_now + when.switch_after;
  const Instant retire_at = m.last_now + when.overlap;
  if (m.keys.overlap_open()) m.counters.add(&EngineStats::key_epochs_retired);
  m.keys.add_next(next, epoch, switch_at, retire_at);
  m.run_key_rotation(m.last_now);
  return {};
}

Result<void> Engine::add_channel_key(std::string_view pattern, Crypto& keys, Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (!m.v2()) {
    return Error{Errc::invalid_argument, "channel keys need wire v2 (v1 channel ids are unkeyed)"};
  }
  if (m.closed) return engine_error::closed();
  if (pattern.empty() || pattern.size() > kMaxChannelKeyPattern) {
    return Error{Errc::invalid_argument, "channel key pattern of ", pattern.size(),
                 " bytes (needs 1..", kMaxChannelKeyPattern, ")"};
  }
  if (!is_valid_utf8(as_bytes(pattern)) || (wire::is_filter(pattern) && !wire::valid_filter(pattern))) {
    return Error{Errc::invalid_argument, "channel key pattern '", pattern,
                 "': not UTF-8, or a malformed filter ('+' and '#' fill a level, '#' last)"};
  }
  if (m.keys.add_channel_key(pattern, keys) == 0) {
    return Error{Errc::too_many_channels, "channel key '", pattern, "': ", kMaxChannelKeys,
                 " channel keys are held already (kMaxChannelKeys)"};
  }
  m.publisher.forget_channel_id();
  m.subs.rekey();
  return {};
}

Result<void> Engine::remove_channel_key(std::string_view pattern, Instant now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (!m.keys.remove_channel_key(pattern)) {
    return Error{Errc::not_subscribed, "no channel key has the pattern '", pattern, "'"};
  }
  m.publisher.forget_channel_id();
  if (!m.closed) m.subs.rekey();
  return {};
}

std::size_t Engine::channel_key_count() const noexcept { return impl_->keys.channel_key_count(); }
bool Engine::holds_channel_key(const Crypto& keys) const noexcept {
  return impl_->keys.holds_channel_key(&keys);
}

std::uint32_t Engine::key_epoch() const noexcept { return impl_->keys.epoch(); }
bool Engine::holds_keys(const Crypto& keys) const noexcept { return impl_->keys.holds(&keys); }

}  // namespace nomq
