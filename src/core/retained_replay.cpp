#include "core/retained_replay.hpp"

#include <algorithm>

#include "core/gcra.hpp"
#include "core/outbox.hpp"
#include "core/publisher.hpp"
#include "core/reachability.hpp"
#include "core/subscriptions.hpp"

namespace nomq::detail {

using wire::PacketType;

Duration random_delay(Rng& rng, Duration max) noexcept {
  const auto max_us = max.count();
  if (max_us <= 0) return Duration{0};
  return Duration{static_cast<std::int64_t>(rng.random_u32() %
                                            static_cast<std::uint64_t>(max_us + 1))};
}

RetainedReplay::RetainedReplay(const Context& ctx, const Links& links)
    : c_(ctx),
      l_(links),
      store_(ctx.arena, links.pool, at_least_one(ctx.cfg.limits.max_retained_channels),
             ctx.cfg.limits.max_retained_per_channel),
      limiter_(ctx.arena, at_least_one(ctx.cfg.limits.max_peer_subscriptions)) {}

bool RetainedReplay::admit_replay(std::uint32_t session, const wire::ChannelId& channel,
                                  Instant now) noexcept {
  return gcra_admit(limiter_, limiter_key(session, channel), now,
                    c_.cfg.timers.retained_replay_interval, kReplayBurst);
}

void RetainedReplay::queue_retained(std::uint32_t slot, bool to_group,
                                    const Endpoint& to) noexcept {
  OutItem it;
  it.type = PacketType::publish;
  // QoS 0 with the retain flag and the original message id.
  it.flags = wire::publish_flags(0, true, wire::flags_priority(l_.pool.meta(slot).flags));
  it.to_group = to_group;
  it.to = to;
  it.msg = slot;
  l_.pool.ref(slot);
  l_.outbox.push_or_count(wire::flags_priority(it.flags), it);
}

void RetainedReplay::replay_to(const wire::ChannelId& channel, std::string_view filter,
                               const Endpoint& to, std::uint32_t session, Instant now) noexcept {
  const auto replay = [&](const wire::ChannelId& id) {
    // What the replay would send: an unverified endpoint gets it only within its budget, all
    // or nothing (a part would be sent twice once the rest is owed); rate-limited per
    // (session, channel) (docs/engine.md §17).
    std::uint64_t bytes = 0;
    store_.for_each_published(id, now, [&](std::uint32_t s) {
      if (l_.publisher.tracks(s, session)) return;
      bytes += wire::v2_datagram_size(5 + l_.pool.name(s).size() + l_.pool.message(s).size());
    });
    if (bytes == 0) return;
    if (!l_.reach.admit_work(to, bytes, true, now)) return;
    if (!admit_replay(session, id, now)) {
      c_.counters.add(&EngineStats::retained_replays_suppressed);
      return;
    }
    store_.for_each_published(id, now, [&](std::uint32_t s) {
      // A retained publish still in flight reaches the newcomer through its pending entry.
      if (l_.publisher.tracks(s, session)) return;
      queue_retained(s, false, to);
    });
  };
  if (filter.empty()) return replay(channel);
  store_.for_each_channel(now, [&](const wire::ChannelId& id, std::string_view name) {
    if (wire::filter_matches(filter, name)) replay(id);
  });
}

void RetainedReplay::on_want_retained(const wire::ChannelId& channel, std::string_view filter,
                                      Instant now) noexcept {
  const auto answer = [&](const wire::ChannelId& id, std::string_view name) {
    if (!l_.subs.follows(id, name) || store_.has_published(id, now) ||
        store_.copy(id, now) == kNoSlot) {
      return;
    }
    const Duration delay = random_delay(c_.rng, c_.cfg.timers.retained_answer_max_delay);
    store_.schedule_answer(id, now + delay);
  };
  if (filter.empty()) {
    const std::uint32_t c = store_.copy(channel, now);
    if (c != kNoSlot) answer(channel, l_.pool.name(c));
    return;
  }
  store_.for_each_channel(now, [&](const wire::ChannelId& id, std::string_view name) {
    if (wire::filter_matches(filter, name)) answer(id, name);
  });
}

bool RetainedReplay::on_retained_publish(const wire::Packet& p, Instant now) noexcept {
  // Another node answered (or the publisher replayed): ours is no longer needed.
  store_.cancel_answer(p.channel_id);
  if (p.qos() != 0) return false;
  const std::uint32_t c = store_.copy(p.channel_id, now);
  if (c == kNoSlot || l_.pool.meta(c).message_id != p.body.message_id) return false;
  const Bytes held = l_.pool.message(c);
  return held.size() == p.body.message.size() &&
         std::equal(held.begin(), held.end(), p.body.message.begin());
}

void RetainedReplay::keep_copy(const wire::Packet& p, Instant expires, Instant now) noexcept {
  const std::uint32_t s = l_.pool.alloc(p.body.channel.size(), p.body.message.size());
  if (s == kNoSlot) return;
  MessageMeta& m = l_.pool.meta(s);
  m.channel_id = p.channel_id;
  m.message_id = p.body.message_id;
  m.origin_session = p.session_id;
  m.expires = expires;
  m.flags = p.flags;
  l_.pool.set(s, p.body.channel, p.body.message);
  store_.set_copy(s, now);
  l_.pool.unref(s);
}

void RetainedReplay::drop_unfollowed_copies(std::string_view filter, Instant now) noexcept {
  store_.for_each_channel(now, [&](const wire::ChannelId& id, std::string_view name) {
    if (wire::filter_matches(filter, name) && !l_.subs.follows(id, name)) store_.drop_copy(id);
  });
}

void RetainedReplay::handle_timeout(Instant now) noexcept {
  while (auto ch = store_.pop_due_answer(now)) {
    const std::uint32_t c = store_.copy(*ch, now);
    if (c == kNoSlot || !l_.subs.follows(*ch, l_.pool.name(c))) continue;
    queue_retained(c, true, Endpoint{});
  }
}

}  // namespace nomq::detail
