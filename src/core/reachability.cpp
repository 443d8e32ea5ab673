#include "core/reachability.hpp"

#include <algorithm>
#include <utility>

#include "core/outbox.hpp"

namespace nomq::detail {

Reachability::Reachability(const Context& ctx, Outbox& outbox)
    : c_(ctx), outbox_(outbox), map_(ctx.arena, at_least_one(ctx.cfg.limits.max_endpoints)) {}

Reachability::Entry* Reachability::find(const Endpoint& e) noexcept {
  const std::uint32_t s = map_.find(e);
  return s == kNoSlot ? nullptr : &map_.value(s);
}

Reachability::Entry* Reachability::find_or_insert(const Endpoint& e, Instant now) noexcept {
  if (Entry* found = find(e)) return found;
  if (map_.full()) {
    // The least recently heard unverified entry; only if every entry is verified, the least
    // recently heard of those (docs/engine.md §17: spoofed sources cannot pin verified peers).
    std::uint32_t victim = kNoSlot;
    bool victim_verified = true;
    map_.for_each([&](std::uint32_t s) {
      const Entry& x = map_.value(s);
      const bool v = is_verified(x, now);
      if (victim == kNoSlot || (victim_verified && !v) ||
          (v == victim_verified && x.last_heard < map_.value(victim).last_heard)) {
        victim = s;
        victim_verified = v;
      }
    });
    map_.erase_slot(victim);
  }
  const std::uint32_t s = map_.insert(e);
  if (s == kNoSlot) return nullptr;
  map_.value(s) = Entry{};
  map_.value(s).last_heard = now;
  return &map_.value(s);
}

void Reachability::received(const Endpoint& from, std::size_t bytes, Instant now) noexcept {
  Entry* e = find_or_insert(from, now);
  if (e == nullptr) return;
  e->bytes_in += bytes;
  e->last_heard = now;
  // Work is owed and the earlier challenge (or its echo) may be lost: the new bytes pay for
  // another one.
  if (!is_verified(*e, now) && (e->replay_owed || e->answer_owed) &&
      (!e->challenged || now - e->challenged_at >= c_.cfg.timers.retransmit_initial)) {
    challenge(from, *e, now);
  }
}

void Reachability::vouch(const Endpoint& to, Instant now) noexcept {
  Entry* e = find_or_insert(to, now);
  if (e == nullptr) return;
  e->verified = true;
  e->verified_until = now + c_.cfg.timers.session_timeout;
}

bool Reachability::verified(const Endpoint& to, Instant now) const noexcept {
  const std::uint32_t s = map_.find(to);
  return s != kNoSlot && is_verified(map_.value(s), now);
}

void Reachability::challenge(const Endpoint& to, Entry& e, Instant now) noexcept {
  if (e.bytes_out + kChallengeBytes > kFactor * e.bytes_in) return;  // not even that
  if (!e.challenged) c_.rng.random_bytes(e.token);
  e.challenged = true;
  e.challenged_at = now;
  OutItem it;
  it.type = wire::PacketType::heartbeat;
  it.flags = wire::kFlagEchoRequest;
  it.to = to;
  it.channel_id = e.token;
  if (outbox_.push(15, it)) c_.counters.add(&EngineStats::echo_challenges_sent);
}

void Reachability::request_echo(const Endpoint& to, Instant now) noexcept {
  Entry* e = find_or_insert(to, now);
  if (e == nullptr) return;
  if (e->challenged && now - e->challenged_at < c_.cfg.timers.retransmit_initial) return;
  challenge(to, *e, now);
}

bool Reachability::admit_work(const Endpoint& to, std::uint64_t bytes, bool replay,
                              Instant now) noexcept {
  Entry* e = find_or_insert(to, now);
  if (e == nullptr) return false;
  if (is_verified(*e, now)) return true;
  if (e->bytes_out + bytes + kChallengeBytes <= kFactor * e->bytes_in) return true;
  (replay ? e->replay_owed : e->answer_owed) = true;
  c_.counters.add(&EngineStats::amplification_limited);
  if (!e->challenged || now - e->challenged_at >= c_.cfg.timers.retransmit_initial) {
    challenge(to, *e, now);
  }
  return false;
}

bool Reachability::permit(const Endpoint& to, std::size_t bytes, bool is_challenge,
                          Instant now) noexcept {
  Entry* e = find_or_insert(to, now);
  if (e == nullptr) return false;
  if (is_verified(*e, now)) return true;
  const std::uint64_t reserve = is_challenge ? 0 : kChallengeBytes;
  if (e->bytes_out + bytes + reserve <= kFactor * e->bytes_in) {
    e->bytes_out += bytes;
    return true;
  }
  c_.counters.add(&EngineStats::amplification_limited);
  if (!is_challenge &&
      (!e->challenged || now - e->challenged_at >= c_.cfg.timers.retransmit_initial)) {
    challenge(to, *e, now);
  }
  return false;
}

Reachability::Owed Reachability::on_echo(const Endpoint& from, const wire::ChannelId& token,
                                         Instant now) noexcept {
  Owed owed;
  Entry* e = find(from);
  if (e == nullptr || !e->challenged || e->token != token) {
    c_.counters.drop(Errc::unexpected_packet);
    return owed;
  }
  e->challenged = false;
  e->verified = true;
  e->verified_until = now + c_.cfg.timers.session_timeout;
  c_.counters.add(&EngineStats::endpoints_verified);
  owed.verified = true;
  owed.replay = std::exchange(e->replay_owed, false);
  owed.answer = std::exchange(e->answer_owed, false);
  return owed;
}

}  // namespace nomq::detail
