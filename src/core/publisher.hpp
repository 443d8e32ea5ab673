// Publishing: QoS 0 publishes into the outbox, and the pending QoS 1/2 publishes with their
// recipients, retransmission timers and delivery reports (docs/engine.md §4, §5, §9). Owns the
// pending table, the recipient and timer arrays and the per-publish minimum-deadline cache that
// next_deadline() reads; nothing outside this class touches them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/counters.hpp"
#include "core/fixed_map.hpp"
#include "core/message_pool.hpp"
#include "core/outbox.hpp"
#include "nomq/crypto.hpp"
#include "nomq/engine.hpp"

namespace nomq::detail {

class Discovery;
class Events;
class RetainedReplay;
class Session;
class Solicitation;

// Test hook (engine_testing.hpp): next_deadline() also scans every recipient and counts how
// often the cache disagrees. Per engine; off unless a test turns it on.
struct DeadlineCacheCounts {
  std::uint64_t checks = 0;
  std::uint64_t mismatches = 0;
};

class Publisher {
 public:
  // The components a publisher works with (each keeps its own state; these are calls).
  struct Links {
    Session& session;
    MessagePool& pool;
    Outbox& outbox;
    Discovery& discovery;
    RetainedReplay& retained;
    Solicitation& solicitation;
    Events& events;
  };
  Publisher(const Context& ctx, const Links& links);

  // At the start of every engine call: frees the slot whose report was polled last, and takes
  // the engine's clock (the latest `now` seen).
  void begin_call(Instant last_now) noexcept;

  // publish() of the API (docs in include/nomq/engine.hpp), without the closed check.
  Result<MessageId> publish(std::string_view channel, Bytes message,
                            const PublishOptions& options, Instant now) noexcept;
  // close(): every open publish ends, reason closed.
  void close() noexcept;

  // Expiry, the end of a wait, retransmissions.
  void handle_timeout(Instant now) noexcept;
  // The earliest expiry, wait end, hold end or retransmission of the open publishes.
  std::optional<Instant> next_deadline() const noexcept;

  // ACK, PUBREC or PUBCOMP.
  void on_reply(const wire::Packet& p, const Endpoint& from, Instant now) noexcept;
  // Discovery saw (session, channel) subscribe (established: a re-announcement). `filter`:
  // the text when `ch` is a wildcard filter (publishes on every matching channel), else empty.
  void on_new_subscriber(std::uint32_t session, const Endpoint& from, const wire::ChannelId& ch,
                         std::string_view filter, bool established, Instant now) noexcept;
  // The node at `at` now speaks as `new_session` (restart or renewal): one recipient, not two.
  void rename_recipients(std::uint32_t old_session, std::uint32_t new_session,
                         const Endpoint& at) noexcept;
  // `session` unsubscribed `channel` (nullptr: left; `filter`: its text when it is a filter):
  // group publishes on it (matching it) that still wait for the session end it, unless the
  // session still subscribes to their channel another way.
  void fail_recipients_of(std::uint32_t session, const wire::ChannelId* channel,
                          std::string_view filter) noexcept;

  bool qos2_publish_in_flight() const noexcept;
  // A key-epoch switch (docs/engine.md §19): every open publish already transmitted keeps the
  // session (and key epoch) it was first sent under for its retransmissions and PUBRELs while
  // the previous epoch is held, so that a receiver's (session, message id) deduplication still
  // recognises them; publishes made later go under the new session.
  void key_epoch_switched() noexcept;
  // Whether `it` (a tracked transmission) belongs to a publish sent under the previous epoch.
  bool under_previous_epoch(const OutItem& it) const noexcept;
  // A group publish waits for its first subscriber.
  bool publish_waiting() const noexcept;
  // An open publish of message slot `msg` has `session` as a recipient.
  bool tracks(std::uint32_t msg, std::uint32_t session) const noexcept;

  // The transmitter's questions and news about an outbox item of a tracked publish.
  bool still_wanted(const OutItem& item) const noexcept;
  void discarded(const OutItem& item) noexcept;
  void send_failed(const OutItem& item, Instant now) noexcept;
  // Not sent: over the amplification budget of an unverified endpoint (docs/engine.md §17).
  // Tried again one retransmit_initial later, or at once when retry_refused() is called.
  void send_refused(const OutItem& item, Instant now) noexcept;
  // `to` was verified: every transmission refused for it is due now.
  void retry_refused(const Endpoint& to, Instant now) noexcept;
  void sent(const OutItem& item, Instant now) noexcept;

  // The report of pending slot `slot` (queued in Events); the slot is freed at the next call.
  DeliveryReport take_report(std::uint32_t slot) noexcept;

  std::size_t open_count() const noexcept { return open_; }
  std::size_t tail_count() const noexcept { return tail_; }
  static std::size_t bytes_for(const EngineLimits& l) noexcept;
  std::size_t state_bytes() const noexcept;

  void set_deadline_check(bool on) noexcept { check_on_ = on; }
  DeadlineCacheCounts deadline_check_counts() const noexcept { return check_; }

 private:
  struct Track {
    Instant next{};
    Instant first_tx{};
    std::uint32_t phase_tx = 0;  // transmissions in the current phase (backoff exponent)
    std::uint8_t phase = 0;      // 0: PUBLISH, 1: PUBREL (QoS 2)
    bool queued = false;
    bool terminal = false;
    bool refused = false;  // the last transmission was over an unverified endpoint's budget
  };
  // Fields by size, largest first (no padding between them: 64 bytes on a Cortex-M4, 80 in
  // declaration-by-topic order).
  struct Pending {
    Instant expires{};
    Instant wait_until{};
    Instant hold_until{};      // made within the discovery period: keeps adding subscribers
                               // until it ends (after the report: the tail)
    Instant settle_until{};    // ... and is reported no earlier than this (first answers in)
    // The earliest `next` of the tracks neither terminal nor queued (any: there is one), first
    // reached at min_at. Kept exact by tracks_changed() / track_left(), the only writers of a
    // track's timer state besides this class's own recomputation in next_deadline().
    mutable Instant min{};
    std::uint32_t msg = kNoSlot;
    std::uint16_t reported_count = 0;  // recipients named in the report; later ones are late
    std::uint16_t count = 0;
    std::uint16_t terminal = 0;  // recipients [0, count) whose track is terminal
    mutable std::uint16_t min_at = 0;
    bool finished = false;  // report queued; the slot is freed once the report was polled
    Qos qos = Qos::at_least_once;
    std::uint8_t priority = 0;
    bool group = false;      // no explicit destination: recipients come from discovery
    bool late_join = false;  // subscribers appearing later are added (waited, or retained)
    bool reported = false;     // reported before hold_until: the tail runs, no second report
    bool report_taken = false; // its report was polled (the slot may be freed)
    Errc reason = Errc::ok;
    mutable bool min_any = false;
    mutable bool min_valid = false;
    bool previous_epoch = false;  // first sent under the previous key epoch's session
  };

  Recipient& recipient(std::uint32_t p, std::uint32_t i) noexcept {
    return recipients_[p * max_recipients_ + i];
  }
  const Recipient& recipient(std::uint32_t p, std::uint32_t i) const noexcept {
    return recipients_[p * max_recipients_ + i];
  }
  Track& track(std::uint32_t p, std::uint32_t i) noexcept {
    return tracks_[p * max_recipients_ + i];
  }
  const Track& track(std::uint32_t p, std::uint32_t i) const noexcept {
    return tracks_[p * max_recipients_ + i];
  }
  void tracks_changed(std::uint32_t p) noexcept { pending_.value(p).min_valid = false; }
  void track_left(std::uint32_t p, std::uint32_t i) noexcept {
    Pending& e = pending_.value(p);
    if (e.min_any && e.min_at == i) e.min_valid = false;
  }
  void refresh_min(std::uint32_t p) const noexcept;
  void check_min(std::uint32_t p) const noexcept;

  Result<void> check_publish(std::string_view channel, Bytes message,
                     const PublishOptions& options) const noexcept;
  wire::ChannelId channel_id_of(std::string_view channel) noexcept;
  bool is_last_channel(std::string_view channel) const noexcept;
 public:
  // Forgets the cached channel id (a channel key was added or removed: the tag may change).
  void forget_channel_id() noexcept { last_channel_size_ = 0; }
 private:
  void store_message(std::uint32_t slot, std::string_view channel, Bytes message,
                     const PublishOptions& options, const wire::ChannelId& id,
                     MessageId mid, Instant now) noexcept;
  void start_tracked(MessageId mid, std::uint32_t msg, const PublishOptions& options,
                     Instant now) noexcept;

  std::uint16_t add_recipient(std::uint32_t p, const Endpoint& ep, std::uint32_t session) noexcept;
  void note_recipient(std::uint32_t p, std::uint32_t i) noexcept;
  std::uint32_t find_recipient(std::uint32_t p, std::uint32_t session,
                               const Endpoint& from) noexcept;
  void make_terminal(std::uint32_t p, std::uint32_t i, RecipientState s, Errc why) noexcept;
  void end_recipient(std::uint32_t p, std::uint32_t i, Errc why) noexcept;
  void check_complete(std::uint32_t p) noexcept;
  void finish(std::uint32_t p, Errc reason) noexcept;
  Errc outcome(std::uint32_t p, Errc reason) const noexcept;
  void report_early(std::uint32_t p) noexcept;
  void retire(std::uint32_t p) noexcept;
  bool end_a_tail() noexcept;
  Instant settle_time(std::uint32_t p) noexcept;
  bool queue_publish_to(std::uint32_t p, std::uint16_t i) noexcept;
  void run_timers(std::uint32_t p, Instant now) noexcept;
  void on_pubrec(std::uint32_t p, std::uint32_t i, Instant now) noexcept;
  void for_tracks_of(const OutItem& item, void (Publisher::*f)(std::uint32_t, std::uint32_t,
                                                              Instant), Instant now) noexcept;
  void mark_refused(std::uint32_t p, std::uint32_t i, Instant now) noexcept;
  void mark_sent(std::uint32_t p, std::uint32_t i, Instant now) noexcept;
  void mark_failed(std::uint32_t p, std::uint32_t i, Instant now) noexcept;
  void mark_unqueued(std::uint32_t p, std::uint32_t i, Instant now) noexcept;

  const Context& c_;  // Engine::Impl::ctx (outlives every component)
  Links l_;
  bool v2_;
  std::size_t max_recipients_;
  FixedMap<std::uint32_t, Pending, U32Hash, U32Eq, std::uint16_t> pending_;
  FixedArray<std::uint32_t> generation_;  // per slot: bumped when the slot is freed
  FixedArray<Recipient> recipients_;
  FixedArray<Track> tracks_;
  // Per pending slot, by discovery-table slot: a hint of the recipient index of that peer's
  // session (verified before use, so a stale hint only costs the linear search it replaces).
  // Keeps the search for an acknowledging recipient O(1) with many subscribers.
  FixedArray<std::uint16_t> recipient_hint_;
  std::size_t open_ = 0;                 // unfinished pending publishes
  std::size_t tail_ = 0;                 // reported early, still delivering to late answerers
  std::uint32_t deferred_free_ = kNoSlot;  // pending slot whose report was just polled
  Instant last_now_{};

  // The id of the channel published on last: publishers mostly repeat a channel, and its id is
  // a SHA-256 of the name (about 200 ns) otherwise computed on every publish. Only a name that
  // passed publish()'s checks is cached, so a match needs no UTF-8 check. Room for
  // max_channel_name bytes (arena): a longer name is not cached.
  FixedArray<char> last_channel_;
  std::size_t last_channel_size_ = 0;  // 0: nothing cached (names are never empty)
  wire::ChannelId last_channel_id_{};

  bool check_on_ = false;
  mutable DeadlineCacheCounts check_;
};

}  // namespace nomq::detail
