// The protocol engine (docs/engine.md is the normative description of its behaviour).
// Every table is sized in the constructor; no member function below allocates.
#include "nomq/engine.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>

#include "core/discovery_table.hpp"
#include "core/engine_errors.hpp"
#include "core/engine_testing.hpp"
#include "core/fixed_map.hpp"
#include "core/inbound_qos.hpp"
#include "core/message_pool.hpp"
#include "core/nonce_cache.hpp"
#include "core/priority_queue.hpp"
#include "core/retained_store.hpp"
#include "core/retransmit.hpp"
#include "core/sender_table.hpp"
#include "wire/utf8.hpp"

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

namespace detail {
namespace {

using wire::PacketType;

// A v2 session is renewed before its sequence numbers come near the 32-bit wrap.
constexpr std::uint32_t kSeqRenewSoft = 0xF0000000u;  // renew at the next quiet moment
constexpr std::uint32_t kSeqRenewHard = 0xFFFF0000u;  // renew now
constexpr std::uint16_t kAllRecipients = 0xFFFF;
// Solicitation answers one solicitor session may get at once before the rate limit applies:
// the start-up schedule (at most 8 rounds at default timers) plus the first backoff rounds of a
// waiting publish, so an honest solicitor is never throttled.
constexpr std::int64_t kSolicitBurst = 16;

struct OwnSub {
  std::uint8_t name_size = 0;
  std::uint8_t priority = 0;
  bool active = false;
  std::uint32_t refs = 0;  // outbox items naming this subscription
};

struct OutItem {
  PacketType type = PacketType::heartbeat;
  std::uint8_t flags = 0;
  bool to_group = false;
  Endpoint to;
  std::uint32_t msg = kNoSlot;      // message pool slot (reference held): PUBLISH
  std::uint32_t pending = kNoSlot;  // tracked QoS 1/2 transmission
  std::uint32_t pending_gen = 0;
  std::uint16_t recipient = 0;      // or kAllRecipients (first transmission to the group)
  std::uint32_t sub = kNoSlot;      // own subscription slot (reference held): SUBSCRIBE/UNSUB
  std::uint32_t acked_id = 0;       // ACK, PUBREC, PUBREL, PUBCOMP
  wire::ChannelId channel_id{};
  bool counted = false;             // a QoS 0 publish counted against max_queued_messages
};

struct InboxItem {
  std::uint16_t size = 0;
  std::uint8_t name_size = 0;
  std::uint8_t flags = 0;
  Endpoint from;
  std::uint32_t session = 0;
  std::uint32_t message_id = 0;
  Time expires{0};
};

struct Track {
  Time next{0};
  Time first_tx{0};
  std::uint32_t phase_tx = 0;  // transmissions in the current phase (backoff exponent)
  std::uint8_t phase = 0;      // 0: PUBLISH, 1: PUBREL (QoS 2)
  bool queued = false;
  bool terminal = false;
};

struct Pending {
  bool finished = false;  // report queued; the slot is freed once the report was polled
  std::uint32_t msg = kNoSlot;
  Qos qos = Qos::at_least_once;
  std::uint8_t priority = 0;
  bool group = false;     // no explicit destination: recipients come from discovery
  bool late_join = false; // subscribers appearing later are added (waited, or retained)
  Time expires{0};
  Time wait_until{0};
  Time hold_until{0};     // made within the discovery period: not reported before it ends
  Errc reason = Errc::ok;
  std::uint16_t count = 0;
  std::uint16_t terminal = 0;  // recipients [0, count) whose track is terminal
  // next_deadline()'s cache: the earliest `next` of the tracks neither terminal nor queued
  // (track_min_any: there is one), first reached at track_min_at. Every change to a track's
  // next/queued/terminal goes through tracks_changed() or track_left(), which keep it exact;
  // debug builds check it against a scan on every call.
  mutable Time track_min{0};
  mutable std::uint16_t track_min_at = 0;
  mutable bool track_min_any = false;
  mutable bool track_min_valid = false;
};

struct SolicitAnswer {
  Endpoint to;
  Time due{0};
  bool used = false;
};

struct ControlEvent {
  bool is_report = false;
  std::uint32_t pending = kNoSlot;
  PeerEvent peer;
};

}  // namespace
}  // namespace detail

using namespace detail;

namespace detail {
bool engine_check_deadline_cache = false;
std::uint64_t engine_deadline_checks = 0;
std::uint64_t engine_deadline_mismatches = 0;
}  // namespace detail

struct Engine::Impl {
  Impl(const EngineConfig& c, Crypto& cr, Time now);

  // --- helpers
  void drop(Errc e) noexcept {
    ++stats.dropped[static_cast<std::size_t>(e)];
    ++stats.dropped_total;
  }
  void begin_call(Time now) noexcept;
  bool v2() const noexcept { return cfg.wire == WireVersion::v2; }
  std::uint32_t draw_nonzero() noexcept {
    std::uint32_t v = 0;
    while (v == 0) v = crypto.random_u32();
    return v;
  }
  // v1 PUBLISH nonces and packet ids: a counter from a random start, not a fresh random draw
  // each. The 4-byte nonce is all a v1 receiver's replay cache keys on (ours holds 1024, the
  // original's 100), so random draws collided with this sender's own recent nonces at
  // 1024 / 2^32 per message once the cache was full: the receiver took the new message for a
  // replay (QoS 2: answered PUBREC without delivering). A counter never repeats within 2^32
  // publishes; collisions with other senders' nonces remain (docs/engine.md, v1 nonces).
  std::uint32_t next_v1_id() noexcept {
    if (++v1_counter == 0) v1_counter = 1;
    return v1_counter;
  }
  bool enqueue(std::uint8_t priority, const OutItem& item) noexcept;
  void release(const OutItem& item) noexcept;
  void send_reply(PacketType type, std::uint32_t acked_id, const wire::ChannelId& channel,
                  const Endpoint& to, std::uint8_t priority) noexcept;
  void announce_subscription(std::uint32_t sub_slot, bool want_retained,
                             const Endpoint* to = nullptr) noexcept;
  void announce_all(Time now) noexcept;
  void renew_session(Time now) noexcept;
  bool qos2_publish_in_flight() const noexcept;

  // --- discovery solicitation (v2, docs/engine.md §3)
  Duration solicit_offset(std::uint32_t round) const noexcept {
    return solicit_base * ((std::int64_t{1} << round) - 1);
  }
  void queue_solicit() noexcept;
  void start_solicit_backoff(Time now) noexcept;
  void run_solicit(Time now) noexcept;
  bool publish_waiting() const noexcept;
  void on_solicit(std::uint32_t session, const Endpoint& from, Time now) noexcept;
  void send_due_answers(Time now) noexcept;

  // --- pending publishes
  Recipient& recipient(std::uint32_t p, std::uint32_t i) noexcept { return recipients[p * max_recipients + i]; }
  Track& track(std::uint32_t p, std::uint32_t i) noexcept { return tracks[p * max_recipients + i]; }
  std::uint16_t add_recipient(std::uint32_t p, const Endpoint& ep, std::uint32_t session) noexcept;
  void make_terminal(std::uint32_t p, std::uint32_t i, RecipientState s, Errc why) noexcept;
  void check_complete(std::uint32_t p) noexcept;
  // Keep Pending::track_min exact: any change to a track's deadline, or a track that stops
  // being a timer candidate (terminal or queued; only the one holding the minimum matters).
  void tracks_changed(std::uint32_t p) noexcept { pending.value(p).track_min_valid = false; }
  void track_left(std::uint32_t p, std::uint32_t i) noexcept {
    Pending& e = pending.value(p);
    if (e.track_min_any && e.track_min_at == i) e.track_min_valid = false;
  }
  std::uint32_t find_recipient(std::uint32_t p, std::uint32_t sess,
                               const Endpoint& from) noexcept;
  void note_recipient(std::uint32_t p, std::uint32_t i) noexcept;
  void finish(std::uint32_t p, Errc reason) noexcept;
  void end_recipient_at_close(std::uint32_t p, std::uint32_t i, Errc why) noexcept;
  bool queue_publish_to(std::uint32_t p, std::uint16_t i) noexcept;
  void run_pending_timers(Time now) noexcept;
  void fail_recipients_of(std::uint32_t session, const wire::ChannelId* channel) noexcept;

  // --- inbound
  void on_v2(const wire::Packet& p, const Endpoint& from, Time now) noexcept;
  void on_v1(const wire::Packet& p, const Endpoint& from, Time now) noexcept;
  void on_publish_v2(const wire::Packet& p, const Endpoint& from, Time now) noexcept;
  void on_publish_v1(const wire::Packet& p, const Endpoint& from, Time now) noexcept;
  void on_reply(const wire::Packet& p, const Endpoint& from, Time now) noexcept;
  void on_pubrel(const wire::Packet& p, const Endpoint& from, Time now) noexcept;
  void on_announce(const wire::Packet& p, const Endpoint& from, Time now) noexcept;
  void rename_recipients(std::uint32_t old_sess, std::uint32_t new_sess,
                         const Endpoint& at) noexcept;
  // How long subscriptions inherited by a restarted/renewed session stay without its own
  // SUBSCRIBE: two re-announcement rounds (one may be lost) plus half a round for jitter and
  // transit (docs/engine.md §3).
  Duration tentative_bound() const noexcept {
    return 2 * cfg.timers.heartbeat_interval + cfg.timers.heartbeat_interval / 2;
  }
  void on_new_subscriber(std::uint32_t session, const Endpoint& from, const wire::ChannelId& ch,
                         bool established, Time now) noexcept;
  void replay_retained(const wire::ChannelId& ch, const Endpoint& to, std::uint32_t session,
                       Time now) noexcept;
  bool push_inbox(const wire::Packet& p, std::string_view channel, const Endpoint& from,
                  Time expires) noexcept;
  void keep_retained_copy(const wire::Packet& p, Time expires) noexcept;
  void push_peer_event(PeerEvent::Kind kind, const Endpoint& ep, std::uint32_t session) noexcept;

  std::optional<Transmit> transmit(Time now, MutableBytes buffer) noexcept;

  EngineConfig cfg;
  Crypto& crypto;
  EngineStats stats;
  std::uint32_t session = 0;
  std::uint32_t prev_session = 0;
  Time session_start{0};
  std::uint32_t next_seq = 1;
  std::uint32_t next_message_id = 1;
  Time next_heartbeat{0};
  Time last_now{0};
  bool closed = false;
  std::size_t max_recipients = 1;
  std::size_t queued_qos0 = 0;

  MessagePool pool;
  RetainedStore retained;
  SenderTable senders;
  DiscoveryTable discovery;
  InboundQosTable inbound;
  NonceCache nonces;
  std::uint32_t v1_counter = 0;  // next_v1_id()
  FixedMap<wire::ChannelId, OwnSub, ChannelIdHash, ChannelIdEq> subs;
  std::vector<char> sub_names;
  std::size_t active_subs = 0;
  FixedMap<std::uint32_t, Pending, U32Hash, U32Eq> pending;
  std::vector<std::uint32_t> pending_gen;
  std::vector<Recipient> recipients;
  std::vector<Track> tracks;
  // Per pending slot, by discovery-table slot: a hint of the recipient index of that peer's
  // session (verified before use, so a stale hint only costs the linear search it replaces).
  // Keeps the search for an acknowledging recipient O(1) with many subscribers.
  std::vector<std::uint16_t> recipient_hint;
  std::size_t pending_open = 0;  // unfinished pending publishes
  PriorityQueue<OutItem> outbox;
  PriorityQueue<InboxItem> inbox;
  std::vector<std::uint8_t> inbox_bytes;
  std::size_t inbox_stride;
  std::vector<ControlEvent> control;
  std::size_t control_head = 0;
  std::size_t control_count = 0;
  std::uint32_t deferred_free = kNoSlot;  // pending slot whose report was just polled
  std::vector<std::uint8_t> scratch;

  Time discovery_end{0};
  Time solicit_start{0};
  Duration solicit_base{0};
  std::uint32_t solicit_rounds = 1;   // start-up schedule length
  std::uint32_t solicit_round = 0;    // next round; == solicit_rounds: backoff phase
  bool solicit_armed = false;
  Time next_solicit{0};
  Duration solicit_gap{0};
  std::vector<SolicitAnswer> answers;  // scheduled answers to solicitations (max_peers)
  std::size_t answers_used = 0;        // entries of `answers` in use

  // The id of the channel published on last: publishers mostly repeat a channel, and its id
  // is a SHA-256 of the name (about 200 ns) otherwise computed on every publish.
  std::array<char, wire::kMaxChannelName> last_channel{};
  std::size_t last_channel_size = 0;  // 0: nothing cached (names are never empty)
  wire::ChannelId last_channel_id{};
  // Only a name that passed publish()'s checks is cached, so a match needs no UTF-8 check.
  bool is_last_channel(std::string_view channel) const noexcept {
    return channel.size() == last_channel_size &&
           std::equal(channel.begin(), channel.end(), last_channel.begin());
  }
  wire::ChannelId publish_channel_id(std::string_view channel) noexcept {
    if (is_last_channel(channel)) return last_channel_id;
    last_channel_id = wire::channel_id(crypto, channel);
    std::copy(channel.begin(), channel.end(), last_channel.begin());
    last_channel_size = channel.size();
    return last_channel_id;
  }
};

namespace {
std::size_t at_least_one(std::size_t n) { return n == 0 ? 1 : n; }
}  // namespace

Engine::Impl::Impl(const EngineConfig& c, Crypto& cr, Time now)
    : cfg(c),
      crypto(cr),
      pool(at_least_one(c.limits.max_pending + c.limits.max_queued_messages +
                        c.limits.max_retained_channels * (c.limits.max_retained_per_channel + 1) +
                        c.limits.max_channels),
           c.limits.max_message_size),
      retained(pool, at_least_one(c.limits.max_retained_channels),
               c.limits.max_retained_per_channel),
      senders(at_least_one(c.limits.max_senders), c.replay_window, c.timestamp_window_s),
      discovery(at_least_one(c.limits.max_peers), at_least_one(c.limits.max_peer_subscriptions)),
      inbound(at_least_one(c.limits.max_inbound_qos)),
      nonces(c.wire == WireVersion::v1 ? c.v1_nonce_cache : 1,
             std::chrono::seconds(2 * std::uint64_t{c.timestamp_window_s} + 1)),
      subs(at_least_one(2 * c.limits.max_channels)),
      pending(at_least_one(c.limits.max_pending)),
      outbox(at_least_one(c.limits.max_outbox)),
      inbox(at_least_one(c.limits.max_inbox)),
      inbox_stride(wire::kMaxChannelName + c.limits.max_message_size) {
  if (cfg.limits.max_message_size > 65535) cfg.limits.max_message_size = 65535;
  inbox_stride = wire::kMaxChannelName + cfg.limits.max_message_size;
  max_recipients = at_least_one(cfg.limits.max_peers);
  sub_names.assign(subs.capacity() * wire::kMaxChannelName, 0);
  pending_gen.assign(pending.capacity(), 0);
  recipients.resize(pending.capacity() * max_recipients);
  tracks.resize(pending.capacity() * max_recipients);
  recipient_hint.assign(pending.capacity() * max_recipients, 0);
  inbox_bytes.assign(inbox.capacity() * inbox_stride, 0);
  control.resize(pending.capacity() + 2 * max_recipients + 8);
  scratch.assign(wire::kMaxDatagram, 0);
  answers.resize(max_recipients);
  session = draw_nonzero();
  next_message_id = draw_nonzero();
  v1_counter = crypto.random_u32();
  session_start = now;
  last_now = now;
  next_heartbeat = now + cfg.timers.heartbeat_interval;
  if (v2()) {
    // A fresh node knows nobody: ask at once, then again at doubling gaps (loss), each early
    // enough that the answers, delayed by up to retained_answer_max_delay, land within the
    // discovery period.
    const Duration period = cfg.timers.discovery_period;
    discovery_end = now + (period.count() > 0 ? period : Duration{0});
    solicit_start = now;
    solicit_base = period / 256;
    if (solicit_base.count() > 0) {
      while (solicit_rounds < 30 &&
             solicit_offset(solicit_rounds) + cfg.timers.retained_answer_max_delay <= period) {
        ++solicit_rounds;
      }
    }
    queue_solicit();
    solicit_round = 1;
    if (solicit_rounds > 1) {
      solicit_armed = true;
      next_solicit = now + solicit_offset(1);
    }
  }
}

void Engine::Impl::begin_call(Time now) noexcept {
  if (now > last_now) last_now = now;
  if (deferred_free != kNoSlot) {
    const std::uint32_t p = deferred_free;
    deferred_free = kNoSlot;
    pool.unref(pending.value(p).msg);
    ++pending_gen[p];
    pending.erase_slot(p);
  }
}

// --- outbox

bool Engine::Impl::enqueue(std::uint8_t priority, const OutItem& item) noexcept {
  if (outbox.push(priority, item) == PriorityQueue<OutItem>::npos) {
    release(item);
    return false;
  }
  return true;
}

void Engine::Impl::release(const OutItem& item) noexcept {
  if (item.counted && queued_qos0 > 0) --queued_qos0;
  if (item.msg != kNoSlot) pool.unref(item.msg);
  if (item.sub != kNoSlot) {
    OwnSub& s = subs.value(item.sub);
    if (s.refs > 0) --s.refs;
    if (!s.active && s.refs == 0) subs.erase_slot(item.sub);
  }
}

void Engine::Impl::send_reply(PacketType type, std::uint32_t acked_id,
                              const wire::ChannelId& channel, const Endpoint& to,
                              std::uint8_t priority) noexcept {
  OutItem it;
  it.type = type;
  // v1 flags are fixed by the original (ACK carries QoS 1, the others 0); v2 carries priority.
  if (v2()) {
    it.flags = static_cast<std::uint8_t>(priority << 4);
  } else {
    it.flags = type == PacketType::ack ? 1 : 0;
  }
  it.to = to;
  it.acked_id = acked_id;
  it.channel_id = channel;
  if (!enqueue(priority, it)) drop(Errc::queue_full);
}

void Engine::Impl::announce_subscription(std::uint32_t slot, bool want_retained,
                                         const Endpoint* to) noexcept {
  OwnSub& s = subs.value(slot);
  OutItem it;
  it.type = PacketType::subscribe;
  it.flags = static_cast<std::uint8_t>((s.priority << 4) | (want_retained ? wire::kFlagWantRetained : 0));
  it.to_group = to == nullptr;
  if (to != nullptr) it.to = *to;
  it.sub = slot;
  it.channel_id = subs.key(slot);
  ++s.refs;
  if (!enqueue(s.priority, it)) drop(Errc::queue_full);
}

void Engine::Impl::announce_all(Time now) noexcept {
  (void)now;
  subs.for_each([&](std::uint32_t s) {
    OwnSub& o = subs.value(s);
    if (!o.active) return;
    // Re-announcements never ask for retained messages: want-retained marks a fresh
    // subscription, which is also how publishers tell one from an established one.
    announce_subscription(s, false);
  });
  OutItem hb;
  hb.type = PacketType::heartbeat;
  hb.to_group = true;
  if (!enqueue(0, hb)) drop(Errc::queue_full);
}

void Engine::Impl::queue_solicit() noexcept {
  OutItem hb;
  hb.type = PacketType::heartbeat;
  hb.flags = wire::kFlagSolicit;
  hb.to_group = true;
  if (!enqueue(0, hb)) {
    drop(Errc::queue_full);
    return;
  }
  ++stats.solicitations_sent;
}

bool Engine::Impl::publish_waiting() const noexcept {
  bool any = false;
  pending.for_each([&](std::uint32_t p) {
    const Pending& e = pending.value(p);
    if (!e.finished && e.group && e.count == 0) any = true;
  });
  return any;
}

void Engine::Impl::start_solicit_backoff(Time now) noexcept {
  solicit_round = solicit_rounds;
  solicit_gap = std::max<Duration>(cfg.timers.retransmit_initial, Duration{1000});
  next_solicit = now + solicit_gap;
  solicit_armed = true;
}

void Engine::Impl::run_solicit(Time now) noexcept {
  if (!solicit_armed || now < next_solicit) return;
  if (solicit_round < solicit_rounds) {
    queue_solicit();
    ++solicit_round;
    if (solicit_round < solicit_rounds) {
      next_solicit = solicit_start + solicit_offset(solicit_round);
    } else if (publish_waiting()) {
      start_solicit_backoff(now);
    } else {
      solicit_armed = false;
    }
    return;
  }
  // Backoff phase: only while a publish still waits for its first subscriber.
  if (!publish_waiting()) {
    solicit_armed = false;
    return;
  }
  queue_solicit();
  solicit_gap = std::min<Duration>(solicit_gap * 2, std::max<Duration>(cfg.timers.retransmit_max, solicit_gap));
  next_solicit = now + solicit_gap;
}

void Engine::Impl::on_solicit(std::uint32_t sess, const Endpoint& from, Time now) noexcept {
  if (closed || active_subs == 0) return;  // nothing to announce
  SenderInfo* s = senders.find(sess);
  if (s == nullptr) return;
  // GCRA per solicitor session: a burst of kSolicitBurst answers, then one per interval. The
  // sender table bounds the sessions (a new one evicts only stale ones), so a key holder cannot
  // make this node answer without bound by minting session ids either.
  const Duration interval = cfg.timers.solicit_answer_interval;
  const Time tat = std::max(s->solicit_tat, now);
  if (tat - now > interval * (kSolicitBurst - 1)) {
    ++stats.solicitations_suppressed;
    return;
  }
  SolicitAnswer* slot = nullptr;
  for (SolicitAnswer& a : answers) {
    if (!a.used) {
      slot = &a;
      break;
    }
  }
  if (slot == nullptr) {
    ++stats.solicitations_suppressed;
    return;
  }
  s->solicit_tat = tat + interval;
  // Spread the answers of many peers over the delay (the solicitor's receive queue).
  const auto max_us = cfg.timers.retained_answer_max_delay.count();
  const auto delay = max_us > 0 ? static_cast<std::int64_t>(crypto.random_u32() % static_cast<std::uint64_t>(max_us + 1)) : 0;
  *slot = SolicitAnswer{from, now + Duration{delay}, true};
  ++answers_used;
}

void Engine::Impl::send_due_answers(Time now) noexcept {
  for (SolicitAnswer& a : answers) {
    if (!a.used || a.due > now) continue;
    a.used = false;
    --answers_used;
    if (closed) continue;
    const Endpoint to = a.to;
    subs.for_each([&](std::uint32_t s) {
      if (subs.value(s).active) announce_subscription(s, false, &to);
    });
    ++stats.solicitations_answered;
  }
}

bool Engine::Impl::qos2_publish_in_flight() const noexcept {
  bool any = false;
  pending.for_each([&](std::uint32_t p) {
    const Pending& e = pending.value(p);
    if (e.finished || e.qos != Qos::exactly_once) return;
    for (std::uint32_t i = 0; i < e.count; ++i) {
      const Track& t = tracks[p * max_recipients + i];
      if (!t.terminal && t.phase == 0) any = true;
    }
  });
  return any;
}

void Engine::Impl::renew_session(Time now) noexcept {
  prev_session = session;
  do {
    session = draw_nonzero();
  } while (session == prev_session);
  next_seq = 1;
  session_start = now;
  // Peers learn the new session at once (they see it as a restart of this endpoint).
  if (v2() && !closed) announce_all(now);
}

// --- pending publishes

std::uint16_t Engine::Impl::add_recipient(std::uint32_t p, const Endpoint& ep,
                                          std::uint32_t sess) noexcept {
  Pending& e = pending.value(p);
  if (e.count >= max_recipients) return kAllRecipients;
  const std::uint16_t i = e.count++;
  recipient(p, i) = Recipient{ep, sess, RecipientState::pending, 0};
  track(p, i) = Track{};
  tracks_changed(p);
  note_recipient(p, i);
  return i;
}

void Engine::Impl::note_recipient(std::uint32_t p, std::uint32_t i) noexcept {
  const std::uint32_t sess = recipient(p, i).session_id;
  if (sess == 0) return;
  const std::uint32_t ps = discovery.slot_of(sess);
  if (ps == kNoSlot || ps >= max_recipients) return;
  std::uint16_t& hint = recipient_hint[p * max_recipients + ps];
  // The first recipient of a session wins, as in the linear search.
  if (hint < i && recipient(p, hint).session_id == sess) return;
  hint = static_cast<std::uint16_t>(i);
}

// The recipient of publish `p` an answer from `session` at `from` belongs to: the first with
// that session, else the first at that endpoint; kNoSlot if none.
std::uint32_t Engine::Impl::find_recipient(std::uint32_t p, std::uint32_t sess,
                                           const Endpoint& from) noexcept {
  const Pending& e = pending.value(p);
  if (sess != 0) {
    const std::uint32_t ps = discovery.slot_of(sess);
    if (ps != kNoSlot && ps < max_recipients) {
      const std::uint16_t k = recipient_hint[p * max_recipients + ps];
      if (k < e.count && recipient(p, k).session_id == sess) return k;
    }
  }
  for (std::uint32_t k = 0; k < e.count; ++k) {
    if (recipient(p, k).session_id != 0 && recipient(p, k).session_id == sess) return k;
  }
  for (std::uint32_t k = 0; k < e.count; ++k) {
    if (recipient(p, k).endpoint == from) return k;
  }
  return kNoSlot;
}

void Engine::Impl::make_terminal(std::uint32_t p, std::uint32_t i, RecipientState s,
                                 Errc why) noexcept {
  Track& t = track(p, i);
  if (t.terminal) return;
  t.terminal = true;
  track_left(p, i);
  recipient(p, i).state = s;
  Pending& e = pending.value(p);
  ++e.terminal;
  if (why != Errc::ok && e.reason == Errc::ok) e.reason = why;
}

void Engine::Impl::check_complete(std::uint32_t p) noexcept {
  Pending& e = pending.value(p);
  if (e.finished || e.count == 0) return;
  // Subscribers may still be answering the start-up solicitations.
  if (last_now < e.hold_until) return;
  if (e.terminal < e.count) return;  // O(1) per answer: no walk over all recipients
  finish(p, e.reason);
}

void Engine::Impl::finish(std::uint32_t p, Errc reason) noexcept {
  Pending& e = pending.value(p);
  if (e.finished) return;
  bool all_ack = e.count > 0;
  for (std::uint32_t i = 0; i < e.count; ++i) {
    if (recipient(p, i).state != RecipientState::acknowledged) all_ack = false;
  }
  e.reason = all_ack ? Errc::ok : (reason == Errc::ok ? Errc::timed_out : reason);
  e.finished = true;
  --pending_open;
  // The control ring is sized for one report per pending slot plus peer events.
  ControlEvent ev;
  ev.is_report = true;
  ev.pending = p;
  if (control_count == control.size()) {
    // Make room by dropping the oldest peer event (reports are never dropped).
    for (std::size_t k = 0; k < control_count; ++k) {
      ControlEvent& c = control[(control_head + k) % control.size()];
      if (!c.is_report) {
        for (std::size_t m = k; m + 1 < control_count; ++m) {
          control[(control_head + m) % control.size()] =
              control[(control_head + m + 1) % control.size()];
        }
        --control_count;
        drop(Errc::inbox_full);
        break;
      }
    }
  }
  control[(control_head + control_count) % control.size()] = ev;
  ++control_count;
}

void Engine::Impl::end_recipient_at_close(std::uint32_t p, std::uint32_t i, Errc why) noexcept {
  const Pending& e = pending.value(p);
  const Track& t = track(p, i);
  if (t.terminal) return;
  if (t.phase == 1) {
    make_terminal(p, i, RecipientState::received, why);
  } else if (!v2() && e.qos == Qos::exactly_once && recipient(p, i).transmissions >= 2) {
    // A v1 device drops a repeated nonce without answering: it may hold the message.
    make_terminal(p, i, RecipientState::unconfirmed, why);
  } else {
    make_terminal(p, i, RecipientState::failed, why);
  }
}

bool Engine::Impl::queue_publish_to(std::uint32_t p, std::uint16_t i) noexcept {
  Pending& e = pending.value(p);
  OutItem it;
  it.type = PacketType::publish;
  it.flags = pool.meta(e.msg).flags;
  it.msg = e.msg;
  it.pending = p;
  it.pending_gen = pending_gen[p];
  it.recipient = i;
  if (i == kAllRecipients) {
    it.to_group = true;
  } else {
    it.to = recipient(p, i).endpoint;
    if (track(p, i).phase == 1) {
      it.type = PacketType::pubrel;
      it.msg = kNoSlot;
      it.acked_id = pool.meta(e.msg).message_id;
      it.channel_id = pool.meta(e.msg).channel_id;
      it.flags = v2() ? static_cast<std::uint8_t>(e.priority << 4) : 0;
    }
  }
  if (it.msg != kNoSlot) pool.ref(it.msg);
  if (outbox.push(e.priority, it) == PriorityQueue<OutItem>::npos) {
    if (it.msg != kNoSlot) pool.unref(it.msg);
    return false;
  }
  if (i == kAllRecipients) {
    for (std::uint32_t k = 0; k < e.count; ++k) track(p, k).queued = true;
    tracks_changed(p);
  } else {
    track(p, i).queued = true;
    track_left(p, i);
  }
  return true;
}

void Engine::Impl::fail_recipients_of(std::uint32_t sess, const wire::ChannelId* channel) noexcept {
  pending.for_each([&](std::uint32_t p) {
    Pending& e = pending.value(p);
    if (e.finished || !e.group) return;
    if (channel != nullptr && pool.meta(e.msg).channel_id != *channel) return;
    for (std::uint32_t i = 0; i < e.count; ++i) {
      if (recipient(p, i).session_id == sess && !track(p, i).terminal) {
        end_recipient_at_close(p, i, Errc::no_subscribers);
      }
    }
    check_complete(p);
  });
}

void Engine::Impl::run_pending_timers(Time now) noexcept {
  const auto& t = cfg.timers;
  pending.for_each([&](std::uint32_t p) {
    Pending& e = pending.value(p);
    if (e.finished) return;
    if (now >= e.expires) {
      for (std::uint32_t i = 0; i < e.count; ++i) end_recipient_at_close(p, i, Errc::expired);
      finish(p, e.count == 0 ? Errc::no_subscribers : Errc::expired);
      return;
    }
    if (e.count == 0) {
      if (now >= e.wait_until) finish(p, Errc::no_subscribers);
      return;
    }
    for (std::uint16_t i = 0; i < e.count; ++i) {
      Track& tr = track(p, i);
      if (tr.terminal || tr.queued || now < tr.next) continue;
      const Recipient& r = recipient(p, i);
      if (cfg.max_retries != 0 && tr.phase_tx >= cfg.max_retries + 1) {
        end_recipient_at_close(p, i, Errc::timed_out);
        continue;
      }
      if (!v2() && e.qos == Qos::exactly_once && tr.phase == 0 && r.transmissions > 0 &&
          now - tr.first_tx >= std::chrono::seconds(cfg.timestamp_window_s)) {
        // Past the device's nonce lifetime a same-nonce retransmission would be delivered
        // again: stop, and say we cannot know (docs/engine.md, "v1 retransmission").
        make_terminal(p, i, RecipientState::unconfirmed, Errc::timed_out);
        continue;
      }
      if (!queue_publish_to(p, i)) {
        tr.next = now + t.retransmit_initial;
        tracks_changed(p);
      }
    }
    check_complete(p);
  });
}

// --- inbound

void Engine::Impl::push_peer_event(PeerEvent::Kind kind, const Endpoint& ep,
                                   std::uint32_t sess) noexcept {
  // Peer events never displace delivery reports: at most size - max_pending of them wait.
  std::size_t peers_waiting = 0;
  for (std::size_t k = 0; k < control_count; ++k) {
    if (!control[(control_head + k) % control.size()].is_report) ++peers_waiting;
  }
  if (peers_waiting + pending.capacity() >= control.size()) {
    drop(Errc::inbox_full);
    return;
  }
  ControlEvent ev;
  ev.peer = PeerEvent{kind, ep, sess};
  control[(control_head + control_count) % control.size()] = ev;
  ++control_count;
}

bool Engine::Impl::push_inbox(const wire::Packet& p, std::string_view channel,
                              const Endpoint& from, Time expires) noexcept {
  InboxItem item;
  item.size = static_cast<std::uint16_t>(p.body.message.size());
  item.name_size = static_cast<std::uint8_t>(channel.size());
  item.flags = p.flags;
  item.from = from;
  item.session = p.session_id;
  item.message_id = p.body.message_id;
  item.expires = expires;
  const std::uint32_t n = inbox.push(p.priority(), item);
  if (n == PriorityQueue<InboxItem>::npos) return false;
  std::uint8_t* at = inbox_bytes.data() + n * inbox_stride;
  if (!channel.empty()) std::memcpy(at, channel.data(), channel.size());
  if (!p.body.message.empty()) {
    std::memcpy(at + wire::kMaxChannelName, p.body.message.data(), p.body.message.size());
  }
  return true;
}

void Engine::Impl::keep_retained_copy(const wire::Packet& p, Time expires) noexcept {
  const std::uint32_t s = pool.alloc();
  if (s == kNoSlot) return;
  MessageMeta& m = pool.meta(s);
  m.channel_id = p.channel_id;
  m.message_id = p.body.message_id;
  m.origin_session = p.session_id;
  m.expires = expires;
  m.flags = p.flags;
  pool.set(s, p.body.channel, p.body.message);
  retained.set_copy(s, last_now);
  pool.unref(s);
}

void Engine::Impl::on_publish_v2(const wire::Packet& p, const Endpoint& from, Time now) noexcept {
  const std::uint32_t sub = subs.find(p.channel_id);
  if (sub == kNoSlot || !subs.value(sub).active) return drop(Errc::unknown_channel);
  const std::uint8_t qos = p.qos();
  if (qos > 2) return drop(Errc::unexpected_packet);
  if (p.ttl == 0) return drop(Errc::expired);
  if (p.body.message.size() > cfg.limits.max_message_size) return drop(Errc::message_too_large);
  // The message expires ttl seconds after it was sent. The sender's timestamp is truncated to
  // the second, so it was sent before timestamp + 1 s; under the clock agreement the timestamp
  // window already assumes, timestamp + 1 s + ttl bounds the expiry however long the datagram
  // travelled (arrival + ttl alone would not count the transit time).
  const Time sent_by = std::chrono::seconds(std::int64_t{p.timestamp} + cfg.epoch_offset + 1);
  const Time expires = std::min(now, sent_by) + std::chrono::seconds(p.ttl);
  if (now > expires) return drop(Errc::expired);
  const std::uint32_t id = p.body.message_id;
  const std::uint8_t prio = p.priority();
  if (qos >= 1) {
    if (InboundEntry* e = inbound.find(p.session_id, id, now)) {
      (void)e;
      send_reply(qos == 1 ? PacketType::ack : PacketType::pubrec, id, p.channel_id, from, prio);
      ++stats.duplicates_suppressed;
      return drop(Errc::duplicate);
    }
  }
  if (p.retain()) {
    // Another node answered (or the publisher replayed): ours is no longer needed.
    retained.cancel_answer(p.channel_id);
    if (qos == 0) {
      const std::uint32_t c = retained.copy(p.channel_id, now);
      if (c != kNoSlot && pool.meta(c).message_id == id) {
        const Bytes held = pool.message(c);
        if (held.size() == p.body.message.size() &&
            std::equal(held.begin(), held.end(), p.body.message.begin())) {
          ++stats.duplicates_suppressed;
          return drop(Errc::duplicate);
        }
      }
    }
  }
  if (inbox.full()) return drop(Errc::inbox_full);
  if (qos >= 1) {
    const Duration life = cfg.timers.inbound_state_lifetime;
    const Time until = qos == 2 ? now + life : std::min(expires, now + life);
    if (inbound.insert(p.session_id, id, qos == 2 ? InboundState::awaiting_pubrel : InboundState::delivered, now, until) == nullptr) {
      return drop(Errc::inbox_full);
    }
    if (qos == 2) {
      if (SenderInfo* s = senders.find(p.session_id)) ++s->qos2_states;
    }
  }
  push_inbox(p, p.body.channel, from, expires);
  if (p.retain()) {
    keep_retained_copy(p, expires);
  }
  if (qos == 1) send_reply(PacketType::ack, id, p.channel_id, from, prio);
  if (qos == 2) send_reply(PacketType::pubrec, id, p.channel_id, from, prio);
}

void Engine::Impl::on_publish_v1(const wire::Packet& p, const Endpoint& from, Time now) noexcept {
  const std::uint32_t sub = subs.find(p.channel_id);
  if (sub == kNoSlot || !subs.value(sub).active) return drop(Errc::unknown_channel);
  const std::uint8_t qos = p.qos();
  if (qos > 2) return drop(Errc::unexpected_packet);
  if (p.body.message.size() > cfg.limits.max_message_size) return drop(Errc::message_too_large);
  const std::uint32_t nonce = p.body.message_id;
  const std::uint8_t prio = p.priority();
  const PacketType answer = qos == 1 ? PacketType::ack : PacketType::pubrec;
  // Our own v1 senders keep the packet id across retransmissions (a QoS 1 one with a fresh
  // nonce), so (session, packet id) catches what the nonce cache cannot.
  if (qos >= 1 && inbound.find(p.session_id, p.packet_id, now) != nullptr) {
    send_reply(answer, p.packet_id, p.channel_id, from, prio);
    ++stats.duplicates_suppressed;
    return drop(Errc::duplicate);
  }
  if (nonces.contains(nonce, now)) {
    if (qos == 0) return drop(Errc::replayed);
    send_reply(answer, p.packet_id, p.channel_id, from, prio);
    ++stats.duplicates_suppressed;
    return drop(Errc::duplicate);
  }
  if (inbox.full()) return drop(Errc::inbox_full);
  if (qos >= 1) {
    const Time until = now + cfg.timers.inbound_state_lifetime;
    if (inbound.insert(p.session_id, p.packet_id,
                       qos == 2 ? InboundState::awaiting_pubrel : InboundState::delivered, now,
                       until) == nullptr) {
      return drop(Errc::inbox_full);
    }
  }
  nonces.insert(nonce, now);
  const std::string_view name{&sub_names[sub * wire::kMaxChannelName], subs.value(sub).name_size};
  // v1 receivers do not apply the ttl (the original never checks it); the inbox keeps the
  // message until polled.
  push_inbox(p, name, from, Time::max());
  if (qos >= 1) send_reply(answer, p.packet_id, p.channel_id, from, prio);
}

void Engine::Impl::on_reply(const wire::Packet& p, const Endpoint& from, Time now) noexcept {
  (void)now;
  const std::uint32_t id = p.body.acked_id;
  const std::uint32_t slot = pending.find(id);
  if (slot == kNoSlot || pending.value(slot).finished) return drop(Errc::unexpected_packet);
  Pending& e = pending.value(slot);
  const bool qos2 = e.qos == Qos::exactly_once;
  if ((p.type == PacketType::ack) == qos2) return drop(Errc::unexpected_packet);
  std::uint32_t i = find_recipient(slot, p.session_id, from);
  // v1: matched by packet id alone. v2 explicit destination not heard from yet: the first
  // answer binds it (the node may answer from another port than the one addressed, e.g. when
  // the destination was its group port).
  if (i == kNoSlot && !e.group && e.count == 1 &&
      (!v2() || recipient(slot, 0).session_id == 0)) {
    i = 0;
  }
  if (i == kNoSlot) {
    // A subscriber we did not know heard the group transmission and answered: count it in.
    if (!e.group || p.type == PacketType::pubcomp) return drop(Errc::unexpected_packet);
    const std::uint16_t added = add_recipient(slot, from, p.session_id);
    if (added == kAllRecipients) return drop(Errc::unexpected_packet);
    recipient(slot, added).transmissions = 1;
    track(slot, added).phase_tx = 1;
    track(slot, added).first_tx = now;
    i = added;
  }
  Recipient& r = recipient(slot, i);
  Track& t = track(slot, i);
  if (r.session_id == 0 || r.session_id != p.session_id) {
    r.session_id = p.session_id;
    note_recipient(slot, i);
  }
  // A node answers a PUBLISH only on a channel it subscribes to: that confirms a subscription
  // it inherited from its previous session as well as its own SUBSCRIBE would.
  if (v2() && e.group && discovery.is_tentative(p.session_id, p.channel_id)) {
    (void)discovery.add_subscription(p.session_id, p.channel_id);
  }
  // Further packets (PUBREL, retransmissions) go where the answer came from.
  r.endpoint = from;
  switch (p.type) {
    case PacketType::ack:
      if (t.terminal) return drop(Errc::duplicate);
      make_terminal(slot, i, RecipientState::acknowledged, Errc::ok);
      break;
    case PacketType::pubrec:
      if (t.terminal || t.phase == 1) return drop(Errc::duplicate);
      t.phase = 1;
      t.phase_tx = 0;
      t.next = now;
      r.state = RecipientState::received;
      if (!t.queued && !queue_publish_to(slot, static_cast<std::uint16_t>(i))) {
        t.next = now + cfg.timers.retransmit_initial;
      }
      tracks_changed(slot);
      break;
    case PacketType::pubcomp:
      if (t.terminal || t.phase != 1) return drop(Errc::duplicate);
      make_terminal(slot, i, RecipientState::acknowledged, Errc::ok);
      break;
    default:
      return drop(Errc::unexpected_packet);
  }
  check_complete(slot);
}

void Engine::Impl::on_pubrel(const wire::Packet& p, const Endpoint& from, Time now) noexcept {
  const std::uint32_t id = p.body.acked_id;
  InboundEntry* e = inbound.find(p.session_id, id, now);
  if (e != nullptr && e->state == InboundState::awaiting_pubrel) {
    e->state = InboundState::released;
    if (SenderInfo* s = senders.find(p.session_id); s != nullptr && s->qos2_states > 0) {
      --s->qos2_states;
    }
  } else if (e != nullptr && e->state == InboundState::released) {
    ++stats.duplicates_suppressed;
    drop(Errc::duplicate);
  }
  // Answered even without state (it expired, or our PUBCOMP was lost after we released it):
  // the publisher needs the PUBCOMP to finish.
  send_reply(PacketType::pubcomp, id, p.channel_id, from, p.priority());
}

void Engine::Impl::replay_retained(const wire::ChannelId& ch, const Endpoint& to,
                                   std::uint32_t sess, Time now) noexcept {
  retained.for_each_published(ch, now, [&](std::uint32_t s) {
    // A retained publish still in flight reaches the newcomer through its pending entry.
    bool tracked = false;
    pending.for_each([&](std::uint32_t p) {
      const Pending& e = pending.value(p);
      if (e.finished || e.msg != s) return;
      for (std::uint32_t i = 0; i < e.count; ++i) {
        if (recipient(p, i).session_id == sess) tracked = true;
      }
    });
    if (tracked) return;
    OutItem it;
    it.type = PacketType::publish;
    it.flags = wire::publish_flags(0, true, wire::flags_priority(pool.meta(s).flags));
    it.to = to;
    it.msg = s;
    pool.ref(s);
    if (!enqueue(wire::flags_priority(it.flags), it)) drop(Errc::queue_full);
  });
}

void Engine::Impl::rename_recipients(std::uint32_t old_sess, std::uint32_t new_sess,
                                     const Endpoint& at) noexcept {
  // The same node under a new session stays one recipient of the publishes in flight (its
  // answers carry the new session; an UNSUBSCRIBE or a tentative subscription's expiry names
  // the new session too).
  pending.for_each([&](std::uint32_t p) {
    Pending& e = pending.value(p);
    if (e.finished || !e.group) return;
    for (std::uint32_t i = 0; i < e.count; ++i) {
      Recipient& r = recipient(p, i);
      if (r.session_id == old_sess && r.endpoint == at) {
        r.session_id = new_sess;
        note_recipient(p, i);
      }
    }
  });
}

void Engine::Impl::on_new_subscriber(std::uint32_t sess, const Endpoint& from,
                                     const wire::ChannelId& ch, bool established,
                                     Time now) noexcept {
  pending.for_each([&](std::uint32_t p) {
    Pending& e = pending.value(p);
    if (e.finished || !e.group || pool.meta(e.msg).channel_id != ch) return;
    // A re-announcement (want-retained clear) comes from a subscription older than this
    // announcement: the publish may have been meant for it and missed it (its earlier
    // announcements were lost), so it joins in-flight publishes too. A fresh subscription
    // joins only those that wait for subscribers or are retained.
    if (!e.late_join && !established) return;
    for (std::uint32_t i = 0; i < e.count; ++i) {
      Recipient& r = recipient(p, i);
      if (r.session_id == sess) return;
      if (r.endpoint == from) {
        // The same node under a new session (restart or renewal): one recipient, not two.
        r.session_id = sess;
        note_recipient(p, i);
        return;
      }
    }
    const std::uint16_t i = add_recipient(p, from, sess);
    if (i == kAllRecipients) return;
    track(p, i).next = now;
    if (!queue_publish_to(p, i)) track(p, i).next = now + cfg.timers.retransmit_initial;
    tracks_changed(p);
  });
  replay_retained(ch, from, sess, now);
}

void Engine::Impl::on_announce(const wire::Packet& p, const Endpoint& from, Time now) noexcept {
  // A restarted node's start-up solicitation leaves before its SUBSCRIBEs, and any of them may
  // be lost: the new session inherits the old one's subscriptions as tentative (it stays a
  // tracked recipient at this endpoint) until its SUBSCRIBEs confirm them, an UNSUBSCRIBE
  // removes one, or two re-announcement rounds pass without confirmation.
  const auto seen = discovery.announce(p.session_id, from, now, now + tentative_bound());
  switch (seen.kind) {
    case DiscoveryTable::Seen::full:
      return drop(Errc::peer_table_full);
    case DiscoveryTable::Seen::joined:
      push_peer_event(PeerEvent::Kind::joined, from, p.session_id);
      break;
    case DiscoveryTable::Seen::restarted:
      push_peer_event(PeerEvent::Kind::restarted, from, p.session_id);
      rename_recipients(seen.replaced_session, p.session_id, from);
      break;
    case DiscoveryTable::Seen::known:
      break;
  }
  if (p.type == PacketType::heartbeat) {
    if (wire::flags_solicit(p.flags)) on_solicit(p.session_id, from, now);
    return;
  }
  if (p.type == PacketType::unsubscribe) {
    discovery.remove_subscription(p.session_id, p.channel_id);
    fail_recipients_of(p.session_id, &p.channel_id);
    return;
  }
  const auto added = discovery.add_subscription(p.session_id, p.channel_id);
  if (added == DiscoveryTable::Added::full) return drop(Errc::peer_table_full);
  const bool want = wire::flags_want_retained(p.flags);
  if (added == DiscoveryTable::Added::added || added == DiscoveryTable::Added::confirmed) {
    on_new_subscriber(p.session_id, from, p.channel_id, !want, now);
  } else if (want) {
    replay_retained(p.channel_id, from, p.session_id, now);
  }
  if (want) {
    const std::uint32_t sub = subs.find(p.channel_id);
    if (sub != kNoSlot && subs.value(sub).active && !retained.has_published(p.channel_id, now) &&
        retained.copy(p.channel_id, now) != kNoSlot) {
      const auto max_us = cfg.timers.retained_answer_max_delay.count();
      const auto delay = max_us > 0 ? static_cast<std::int64_t>(crypto.random_u32() % static_cast<std::uint64_t>(max_us + 1)) : 0;
      retained.schedule_answer(p.channel_id, now + Duration{delay});
    }
  }
}

void Engine::Impl::on_v2(const wire::Packet& p, const Endpoint& from, Time now) noexcept {
  SenderInfo* s = senders.find_or_insert(p.session_id, wire_seconds(now, cfg.epoch_offset));
  if (s == nullptr) return drop(Errc::sender_table_full);
  if (const Errc v = senders.accept(*s, p.packet_id, p.timestamp, now); v != Errc::ok) {
    return drop(v);
  }
  discovery.heard(p.session_id, now);
  switch (p.type) {
    case PacketType::publish: return on_publish_v2(p, from, now);
    case PacketType::subscribe:
    case PacketType::unsubscribe:
    case PacketType::heartbeat: return on_announce(p, from, now);
    case PacketType::ack:
    case PacketType::pubrec:
    case PacketType::pubcomp: return on_reply(p, from, now);
    case PacketType::pubrel: return on_pubrel(p, from, now);
  }
}

void Engine::Impl::on_v1(const wire::Packet& p, const Endpoint& from, Time now) noexcept {
  switch (p.type) {
    case PacketType::publish: return on_publish_v1(p, from, now);
    case PacketType::ack:
    case PacketType::pubrec:
    case PacketType::pubcomp: return on_reply(p, from, now);
    case PacketType::pubrel: return on_pubrel(p, from, now);
    case PacketType::subscribe:
    case PacketType::unsubscribe:
    case PacketType::heartbeat: {
      // As the original: only a subscribed channel gets past the channel check, and then
      // nothing happens (v1 has no discovery). A heartbeat's zero channel never matches.
      const std::uint32_t sub = subs.find(p.channel_id);
      if (sub == kNoSlot || !subs.value(sub).active) drop(Errc::unknown_channel);
      return;
    }
  }
}

// --- transmit

std::optional<Transmit> Engine::Impl::transmit(Time now, MutableBytes buffer) noexcept {
  while (!outbox.empty()) {
    const std::uint32_t n = outbox.front();
    const std::uint8_t prio = outbox.front_priority();
    const OutItem it = outbox.at(n);
    outbox.pop();
    // A tracked item is still wanted only if its recipient still waits for exactly this.
    bool wanted = true;
    if (it.pending != kNoSlot) {
      if (!pending.used(it.pending) || pending_gen[it.pending] != it.pending_gen ||
          pending.value(it.pending).finished) {
        wanted = false;
      } else if (it.recipient == kAllRecipients) {
        const Pending& e = pending.value(it.pending);
        bool any = false;
        for (std::uint32_t k = 0; k < e.count; ++k) {
          Track& t = track(it.pending, k);
          if (t.queued && !t.terminal && t.phase == 0) any = true;
        }
        wanted = any;
      } else {
        Track& t = track(it.pending, it.recipient);
        const bool phase_ok = (it.type == PacketType::pubrel) == (t.phase == 1);
        wanted = t.queued && !t.terminal && phase_ok;
        if (!phase_ok) wanted = false;
      }
    }
    std::uint16_t ttl = wire::kV1DefaultTtl;
    if (it.msg != kNoSlot) {
      ttl = remaining_ttl(pool.meta(it.msg).expires, now);
      if (ttl == 0) wanted = false;  // expired: never sent (the pending timer reports it)
    }
    if (!wanted) {
      if (it.pending != kNoSlot && pending.used(it.pending) &&
          pending_gen[it.pending] == it.pending_gen) {
        const Pending& e = pending.value(it.pending);
        if (it.recipient == kAllRecipients) {
          for (std::uint32_t k = 0; k < e.count; ++k) track(it.pending, k).queued = false;
        } else if (it.recipient < e.count) {
          track(it.pending, it.recipient).queued = false;
        }
        tracks_changed(it.pending);
      }
      release(it);
      continue;
    }
    if (v2() && next_seq >= kSeqRenewHard) renew_session(now);

    wire::Packet p;
    p.version = cfg.wire;
    p.type = it.type;
    p.flags = it.flags;
    p.session_id = session;
    p.ttl = ttl;
    p.timestamp = wire_seconds(now, cfg.epoch_offset);
    crypto.random_bytes(p.iv);
    switch (it.type) {
      case PacketType::publish: {
        const MessageMeta& m = pool.meta(it.msg);
        p.channel_id = m.channel_id;
        p.body.channel = pool.name(it.msg);
        p.body.message = pool.message(it.msg);
        if (v2()) {
          p.body.message_id = m.message_id;
        } else {
          p.packet_id = m.message_id;
          // QoS 1 retransmissions carry a fresh nonce, QoS 0/2 the publish's own
          // (docs/engine.md, "v1 retransmission").
          p.body.message_id = wire::flags_qos(m.flags) == 1 ? next_v1_id() : m.nonce;
          p.body.inner_timestamp = p.timestamp;
          p.body.v1_layout = cfg.v1_publish_layout;
        }
        break;
      }
      case PacketType::subscribe:
      case PacketType::unsubscribe: {
        p.channel_id = subs.key(it.sub);
        p.body.channel = std::string_view{&sub_names[it.sub * wire::kMaxChannelName],
                                          subs.value(it.sub).name_size};
        if (!v2()) p.packet_id = crypto.random_u32();
        break;
      }
      case PacketType::heartbeat:
        if (!v2()) p.packet_id = crypto.random_u32();
        break;
      default:
        p.channel_id = it.channel_id;
        p.body.acked_id = it.acked_id;
        if (!v2()) p.packet_id = it.acked_id;
        break;
    }
    if (v2()) p.packet_id = next_seq++;
    const Result<std::size_t> r = wire::encode(p, crypto, buffer);
    if (!r) {
      drop(r.error());
      if (it.pending != kNoSlot) {
        if (it.recipient == kAllRecipients) {
          for (std::uint32_t k = 0; k < pending.value(it.pending).count; ++k) {
            track(it.pending, k).queued = false;
            track(it.pending, k).next = now + cfg.timers.retransmit_initial;
          }
        } else {
          track(it.pending, it.recipient).queued = false;
          track(it.pending, it.recipient).next = now + cfg.timers.retransmit_initial;
        }
        tracks_changed(it.pending);
      }
      release(it);
      continue;
    }
    if (it.pending != kNoSlot) {
      auto sent = [&](std::uint32_t k) {
        Track& t = track(it.pending, k);
        Recipient& rc = recipient(it.pending, k);
        if (!t.queued || t.terminal) return;
        t.queued = false;
        // A resend of what this recipient already got in this phase (PUBLISH, or PUBREL);
        // the first PUBREL is a new datagram, not a retransmission.
        if (t.phase_tx > 0) ++stats.retransmissions;
        if (rc.transmissions == 0) t.first_tx = now;
        ++rc.transmissions;
        ++t.phase_tx;
        t.next = now + retransmit_timeout(cfg.timers.retransmit_initial,
                                          cfg.timers.retransmit_max, t.phase_tx);
        if (!v2() && t.phase == 0 && pending.value(it.pending).qos == Qos::exactly_once) {
          // End of the same-nonce window: decide there rather than at the next backoff step.
          const Time window_end = t.first_tx + std::chrono::seconds(cfg.timestamp_window_s);
          if (t.next > window_end) t.next = window_end;
        }
      };
      if (it.recipient == kAllRecipients) {
        for (std::uint32_t k = 0; k < pending.value(it.pending).count; ++k) sent(k);
      } else {
        sent(it.recipient);
      }
      tracks_changed(it.pending);
    }
    release(it);
    ++stats.datagrams_sent;
    Transmit tx;
    tx.to_group = it.to_group;
    tx.to = it.to;
    tx.size = *r;
    tx.priority = prio;
    return tx;
  }
  return std::nullopt;
}

// --- Engine

Engine::Engine(const EngineConfig& config, Crypto& crypto, Time now)
    : impl_(std::make_unique<Impl>(config, crypto, now)) {}
Engine::~Engine() = default;

Result<void> Engine::subscribe(std::string_view channel, std::uint8_t priority, Time now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (m.closed) return engine_error::closed();
  if (channel.empty()) return engine_error::empty_channel();
  if (channel.size() > wire::kMaxChannelName) return engine_error::channel_name_too_long(channel.size());
  if (!is_valid_utf8(as_bytes(channel))) return engine_error::channel_not_utf8();  // v2 receivers refuse it
  const std::uint8_t prio = priority > 15 ? 15 : priority;
  const wire::ChannelId id = wire::channel_id(m.crypto, channel);
  std::uint32_t s = m.subs.find(id);
  if (s != kNoSlot && m.subs.value(s).active) {
    m.subs.value(s).priority = prio;
    return engine_error::already_subscribed(channel);
  }
  if (m.active_subs >= m.cfg.limits.max_channels) return engine_error::too_many_channels(m.cfg.limits.max_channels);
  if (s == kNoSlot) {
    s = m.subs.insert(id);
    if (s == kNoSlot) return engine_error::too_many_channels(m.cfg.limits.max_channels);
    std::memcpy(&m.sub_names[s * wire::kMaxChannelName], channel.data(), channel.size());
    m.subs.value(s).name_size = static_cast<std::uint8_t>(channel.size());
  }
  OwnSub& o = m.subs.value(s);
  o.active = true;
  o.priority = prio;
  ++m.active_subs;
  if (m.v2()) m.announce_subscription(s, true);
  return {};
}

Result<void> Engine::unsubscribe(std::string_view channel, Time now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (channel.empty()) return engine_error::empty_channel();
  if (channel.size() > wire::kMaxChannelName) return engine_error::channel_name_too_long(channel.size());
  const wire::ChannelId id = wire::channel_id(m.crypto, channel);
  const std::uint32_t s = m.subs.find(id);
  if (s == kNoSlot || !m.subs.value(s).active) return engine_error::not_subscribed();
  OwnSub& o = m.subs.value(s);
  o.active = false;
  --m.active_subs;
  m.retained.drop_copy(id);
  if (m.v2() && !m.closed) {
    OutItem it;
    it.type = PacketType::unsubscribe;
    it.flags = 0;
    it.to_group = true;
    it.sub = s;
    ++o.refs;
    if (!m.enqueue(o.priority, it)) m.drop(Errc::queue_full);
  }
  if (o.refs == 0) m.subs.erase_slot(s);
  return {};
}

Result<MessageId> Engine::publish(std::string_view channel, Bytes message,
                                  const PublishOptions& options, Time now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (m.closed) return engine_error::closed();
  if (channel.empty() || options.priority > 15 ||
      static_cast<std::uint8_t>(options.qos) > 2) {
    return engine_error::bad_publish_options(channel, options);
  }
  if (options.destination && !options.destination->valid()) return engine_error::bad_destination();
  if (channel.size() > wire::kMaxChannelName) return engine_error::channel_name_too_long(channel.size());
  if (!m.is_last_channel(channel) && !is_valid_utf8(as_bytes(channel))) {
    return engine_error::channel_not_utf8();
  }
  if (message.size() > m.cfg.limits.max_message_size) return engine_error::message_too_large(message.size(), m.cfg.limits.max_message_size);
  {
    // Refuse here what could never be encoded later (a datagram above wire::kMaxDatagram).
    wire::Packet probe;
    probe.version = m.cfg.wire;
    probe.type = PacketType::publish;
    probe.body.channel = channel;
    probe.body.message = message;
    if (wire::encoded_size(probe) > wire::kMaxDatagram) return engine_error::datagram_too_large(channel.size(), message.size(), wire::encoded_size(probe));
  }
  const bool tracked = options.qos != Qos::at_most_once;
  if (tracked && !m.v2() && !options.destination) return engine_error::v1_needs_destination();
  if (tracked && m.pending.full()) return engine_error::too_many_pending(m.cfg.limits.max_pending);
  if (!tracked && m.queued_qos0 >= m.cfg.limits.max_queued_messages) return engine_error::qos0_queue_full(m.cfg.limits.max_queued_messages);
  if (m.outbox.full()) return engine_error::outbox_full(m.cfg.limits.max_outbox);
  const wire::ChannelId id = m.publish_channel_id(channel);
  if (options.retain && !m.retained.can_add(id, now)) return engine_error::too_many_retained(m.cfg.limits);
  const std::uint32_t slot = m.pool.alloc();
  if (slot == kNoSlot) return engine_error::message_slots_full();

  const std::uint16_t ttl_s = options.ttl_s == 0 ? m.cfg.default_ttl_s : options.ttl_s;
  MessageId mid = 0;
  if (m.v2()) {
    mid = m.next_message_id++;
    if (m.next_message_id == 0) m.next_message_id = 1;
  } else {
    do {
      mid = m.next_v1_id();
    } while (m.pending.find(mid) != kNoSlot);
  }
  MessageMeta& meta = m.pool.meta(slot);
  meta.channel_id = id;
  meta.message_id = mid;
  meta.nonce = m.v2() ? m.draw_nonzero() : m.next_v1_id();
  meta.origin_session = m.session;
  meta.expires = now + std::chrono::seconds(ttl_s);
  meta.flags = wire::publish_flags(static_cast<int>(options.qos), options.retain, options.priority);
  m.pool.set(slot, channel, message);
  if (options.retain) (void)m.retained.add_published(slot, now);
  ++m.stats.messages_published;

  if (!tracked) {
    OutItem it;
    it.type = PacketType::publish;
    it.flags = meta.flags;
    it.to_group = !options.destination;
    if (options.destination) it.to = *options.destination;
    it.msg = slot;  // the allocation's reference passes to the outbox item
    it.counted = true;
    ++m.queued_qos0;
    m.enqueue(options.priority, it);
    return mid;
  }

  const std::uint32_t p = m.pending.insert(mid);
  Pending& e = m.pending.value(p);
  e.msg = slot;  // the allocation's reference passes to the pending entry
  e.qos = options.qos;
  e.priority = options.priority;
  e.group = !options.destination;
  e.expires = meta.expires;
  ++m.pending_open;
  if (options.destination) {
    m.add_recipient(p, *options.destination, 0);
    m.queue_publish_to(p, 0);
    return mid;
  }
  m.discovery.for_each_subscriber(id, [&](const detail::Peer& peer) {
    m.add_recipient(p, peer.endpoint, peer.session_id);
  });
  // Within the discovery period the discovery table is still filling: subscribers that
  // answer the solicitations join, and the publish is not reported before the period ends.
  const bool discovering = m.v2() && now < m.discovery_end;
  if (discovering) e.hold_until = std::min(m.discovery_end, e.expires);
  e.late_join = e.count == 0 || options.retain || discovering;
  if (e.count == 0) {
    const Time until = options.wait_for_subscribers ? now + *options.wait_for_subscribers : e.expires;
    e.wait_until = std::min(std::max(until, e.hold_until), e.expires);
    if (e.wait_until <= now) {
      m.finish(p, Errc::no_subscribers);
    } else if (m.v2() && !m.solicit_armed) {
      m.queue_solicit();
      m.start_solicit_backoff(now);
    }
    return mid;
  }
  m.queue_publish_to(p, kAllRecipients);
  return mid;
}

void Engine::handle_datagram(const Endpoint& from, Bytes datagram, Time now) {
  Impl& m = *impl_;
  m.begin_call(now);
  ++m.stats.datagrams_received;
  if (datagram.size() > m.scratch.size()) return m.drop(Errc::bad_length);
  const std::uint8_t version = wire::peek_version(datagram);
  if ((version == 1 || version == 2) && version != static_cast<std::uint8_t>(m.cfg.wire)) {
    return m.drop(Errc::wrong_wire_version);
  }
  wire::DecodeOptions opt;
  opt.version = m.cfg.wire;
  opt.now = now;
  opt.epoch_offset = m.cfg.epoch_offset;
  opt.timestamp_window_s = m.cfg.timestamp_window_s;
  // v2: hand decode only the subscription named by the header's channel id (if any), so that
  // it can skip hashing the body's name without a scan over every subscription. The header is
  // not authenticated yet; a forged id only picks which pair decode compares against.
  // The header layout is wire's (src/wire/wire_internal.hpp kOffChannelId; that header's
  // nomq::detail::wire namespace would clash with nomq::wire here).
  constexpr std::size_t kHeaderChannelIdOffset = 35;
  wire::KnownChannel candidate;
  if (m.v2() && datagram.size() >= kHeaderChannelIdOffset + candidate.id.size()) {
    std::memcpy(candidate.id.data(), datagram.data() + kHeaderChannelIdOffset,
                candidate.id.size());
    const std::uint32_t s = m.subs.find(candidate.id);
    if (s != kNoSlot && m.subs.value(s).active) {
      candidate.name = std::string_view{&m.sub_names[s * wire::kMaxChannelName],
                                        m.subs.value(s).name_size};
      opt.known_channels = std::span<const wire::KnownChannel>{&candidate, 1};
    }
  }
  const Result<wire::Packet> r = wire::decode(datagram, m.crypto, opt, m.scratch);
  if (!r) return m.drop(r.error());
  const wire::Packet& p = *r;
  if (p.session_id == m.session || (m.prev_session != 0 && p.session_id == m.prev_session)) {
    return m.drop(Errc::own_packet);
  }
  if (m.v2()) {
    m.on_v2(p, from, now);
  } else {
    m.on_v1(p, from, now);
  }
}

void Engine::handle_timeout(Time now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (m.v2() && !m.closed) {
    const bool lifetime_over = now - m.session_start >= m.cfg.timers.session_lifetime;
    if ((lifetime_over || m.next_seq >= kSeqRenewSoft) && !m.qos2_publish_in_flight()) {
      m.renew_session(now);
      m.next_heartbeat = now + m.cfg.timers.heartbeat_interval;
    }
    if (now >= m.next_heartbeat) {
      m.announce_all(now);
      m.next_heartbeat = now + m.cfg.timers.heartbeat_interval;
    }
    while (auto gone = m.discovery.expire_one(now, m.cfg.timers.session_timeout)) {
      m.push_peer_event(PeerEvent::Kind::left, gone->endpoint, gone->session_id);
      m.fail_recipients_of(gone->session_id, nullptr);
    }
    // An inherited subscription never confirmed: whatever still waits on it ends, reported
    // failed (never silently ok).
    while (auto k = m.discovery.expire_tentative(now)) {
      m.fail_recipients_of(k->session_id, &k->channel);
    }
    m.run_solicit(now);
    m.send_due_answers(now);
    while (auto ch = m.retained.pop_due_answer(now)) {
      const std::uint32_t c = m.retained.copy(*ch, now);
      const std::uint32_t sub = m.subs.find(*ch);
      if (c == kNoSlot || sub == kNoSlot || !m.subs.value(sub).active) continue;
      OutItem it;
      it.type = PacketType::publish;
      it.flags = wire::publish_flags(0, true, wire::flags_priority(m.pool.meta(c).flags));
      it.to_group = true;
      it.msg = c;
      m.pool.ref(c);
      if (!m.enqueue(wire::flags_priority(it.flags), it)) m.drop(Errc::queue_full);
    }
  }
  m.inbound.expire(now, [&m](std::uint32_t sess) {
    if (SenderInfo* s = m.senders.find(sess); s != nullptr && s->qos2_states > 0) {
      --s->qos2_states;
    }
  });
  m.run_pending_timers(now);
}

std::optional<Transmit> Engine::poll_transmit(Time now, MutableBytes buffer) {
  Impl& m = *impl_;
  m.begin_call(now);
  return m.transmit(now, buffer);
}

std::optional<Event> Engine::poll_event() {
  Impl& m = *impl_;
  m.begin_call(m.last_now);
  if (m.control_count > 0) {
    const ControlEvent ev = m.control[m.control_head];
    m.control_head = (m.control_head + 1) % m.control.size();
    --m.control_count;
    if (!ev.is_report) return Event{ev.peer};
    const Pending& e = m.pending.value(ev.pending);
    DeliveryReport rep;
    rep.message_id = m.pending.key(ev.pending);
    rep.channel = m.pool.name(e.msg);
    rep.qos = e.qos;
    rep.reason = e.reason;
    rep.recipients = std::span<const Recipient>{&m.recipient(ev.pending, 0), e.count};
    m.deferred_free = ev.pending;
    return Event{rep};
  }
  while (!m.inbox.empty()) {
    const std::uint32_t n = m.inbox.front();
    const InboxItem item = m.inbox.at(n);
    m.inbox.pop();  // the node's bytes stay untouched until a later call pushes again
    if (item.expires <= m.last_now) {
      m.drop(Errc::expired);
      continue;
    }
    const std::uint8_t* at = m.inbox_bytes.data() + n * m.inbox_stride;
    MessageEvent ev;
    ev.channel = std::string_view{reinterpret_cast<const char*>(at), item.name_size};
    ev.message = Bytes{at + wire::kMaxChannelName, item.size};
    ev.qos = static_cast<Qos>(wire::flags_qos(item.flags));
    ev.retain = wire::flags_retain(item.flags);
    ev.priority = wire::flags_priority(item.flags);
    ev.from = item.from;
    ev.sender_session = item.session;
    ev.message_id = item.message_id;
    ++m.stats.messages_delivered;
    return Event{ev};
  }
  return std::nullopt;
}

std::optional<Time> Engine::next_deadline() const {
  const Impl& m = *impl_;
  std::optional<Time> t;
  auto consider = [&t](Time x) {
    if (!t || x < *t) t = x;
  };
  if (m.v2() && !m.closed) {
    consider(m.next_heartbeat);
    // A renewal deferred by a QoS 2 publish in flight is retried at the next timer that
    // fires; a deadline already past would make the caller spin.
    if (const Time renew = m.session_start + m.cfg.timers.session_lifetime; renew > m.last_now) {
      consider(renew);
    }
    if (auto d = m.discovery.next_expiry(m.cfg.timers.session_timeout)) consider(*d);
    if (auto d = m.discovery.next_tentative_expiry()) consider(*d);
    if (auto d = m.retained.next_answer()) consider(*d);
    if (m.solicit_armed) consider(m.next_solicit);
    if (m.answers_used > 0) {
      for (const SolicitAnswer& a : m.answers) {
        if (a.used) consider(a.due);
      }
    }
  }
  // The node computes this on every loop turn: the tables above answer in O(1) in the common
  // case (recency list, counts), and only open publishes are visited here.
  if (m.pending_open > 0) m.pending.scan([&](std::uint32_t p) {
    const Pending& e = m.pending.value(p);
    if (e.finished) return;
    consider(e.expires);
    if (e.count == 0) consider(e.wait_until);
    if (e.hold_until > m.last_now) consider(e.hold_until);
    if (!e.track_min_valid) {
      // Amortised O(1) per answer: recomputed after a change, not per call.
      e.track_min_any = false;
      for (std::uint32_t i = 0; i < e.count; ++i) {
        const Track& tr = m.tracks[p * m.max_recipients + i];
        if (tr.terminal || tr.queued) continue;
        if (!e.track_min_any || tr.next < e.track_min) {
          e.track_min = tr.next;
          e.track_min_at = static_cast<std::uint16_t>(i);
          e.track_min_any = true;
        }
      }
      e.track_min_valid = true;
    }
#ifdef NDEBUG
    constexpr bool kAssert = false;
#else
    constexpr bool kAssert = true;
#endif
    if (kAssert || engine_check_deadline_cache) {
      std::optional<Time> scan;
      for (std::uint32_t i = 0; i < e.count; ++i) {
        const Track& tr = m.tracks[p * m.max_recipients + i];
        if (!tr.terminal && !tr.queued && (!scan || tr.next < *scan)) scan = tr.next;
      }
      const bool same = scan.has_value() == e.track_min_any && (!scan || *scan == e.track_min);
      ++engine_deadline_checks;
      if (!same) ++engine_deadline_mismatches;
      assert(same);
    }
    if (e.track_min_any) consider(e.track_min);
  });
  return t;
}

void Engine::close(Time now) {
  Impl& m = *impl_;
  m.begin_call(now);
  if (m.closed) return;
  if (m.v2()) {
    m.subs.for_each([&](std::uint32_t s) {
      OwnSub& o = m.subs.value(s);
      if (!o.active) return;
      OutItem it;
      it.type = PacketType::unsubscribe;
      it.to_group = true;
      it.sub = s;
      ++o.refs;
      if (!m.enqueue(o.priority, it)) m.drop(Errc::queue_full);
    });
  }
  m.pending.for_each([&](std::uint32_t p) {
    const Pending& e = m.pending.value(p);
    if (e.finished) return;
    for (std::uint32_t i = 0; i < e.count; ++i) m.end_recipient_at_close(p, i, Errc::closed);
    m.finish(p, Errc::closed);
  });
  m.closed = true;
}

std::uint32_t Engine::session_id() const noexcept { return impl_->session; }
std::size_t Engine::inbound_qos2_open() const noexcept {
  const Impl& m = *impl_;
  return m.inbound.count(InboundState::awaiting_pubrel, m.last_now);
}

std::size_t Engine::pending_count() const noexcept { return impl_->pending_open; }
const EngineStats& Engine::stats() const noexcept { return impl_->stats; }
const EngineConfig& Engine::config() const noexcept { return impl_->cfg; }

std::size_t Engine::state_bytes() const noexcept {
  const Impl& m = *impl_;
  return sizeof(Engine) + sizeof(Impl) + m.pool.state_bytes() + m.retained.state_bytes() +
         m.senders.state_bytes() + m.discovery.state_bytes() + m.inbound.state_bytes() +
         m.nonces.state_bytes() + m.subs.state_bytes() + m.sub_names.capacity() +
         m.pending.state_bytes() + m.pending_gen.capacity() * sizeof(std::uint32_t) +
         m.recipients.capacity() * sizeof(Recipient) + m.tracks.capacity() * sizeof(Track) +
         m.outbox.state_bytes() + m.inbox.state_bytes() + m.inbox_bytes.capacity() +
         m.control.capacity() * sizeof(ControlEvent) + m.scratch.capacity() +
         m.answers.capacity() * sizeof(SolicitAnswer);
}

}  // namespace nomq
