// Receiving: opening datagrams (size, version, decode, own-packet filter), the v2 replay defence
// (SenderTable), PUBLISH handling in both versions (dedup by InboundQosTable, the v1 nonce
// cache), PUBREL, and the inbox of messages waiting for poll_event() (docs/engine.md §6, §10,
// §12). The count of QoS 2 states per sender session (which protects them from eviction) is
// kept here, next to the states.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "core/byte_heap.hpp"
#include "core/sizing.hpp"

#include "core/counters.hpp"
#include "core/deferred_acks.hpp"
#include "core/inbound_qos.hpp"
#include "core/nonce_cache.hpp"
#include "core/priority_queue.hpp"
#include "core/sender_table.hpp"
#include "nomq/crypto.hpp"
#include "nomq/engine.hpp"

namespace nomq::detail {

class Events;
class Outbox;
class Reachability;
class RetainedReplay;
class Session;
class Subscriptions;

class Receiver {
 public:
  struct Links {
    const Session& session;
    const Subscriptions& subs;
    Outbox& outbox;
    RetainedReplay& retained;
    Events& events;
    const Reachability& reach;  // whether a new sender session's endpoint is verified (M3)
  };
  Receiver(const Context& ctx, const Links& links);
  static std::size_t bytes_for(const EngineConfig& cfg) noexcept;

  // Checks and decodes one datagram; nullopt: dropped (counted). The packet's views point into
  // this receiver's scratch buffer until the next call. `wall` is checked against the
  // timestamp; an authentic datagram refused for it raises a clock_skew peer event.
  std::optional<wire::Packet> open(const Endpoint& from, Bytes datagram, Instant now,
                                   WallTime wall) noexcept;
  // The key index that opened the last datagram (0: the group's keys; 1..kMaxChannelKeys: a
  // channel key, docs/engine.md §20). Valid until the next open().
  std::uint8_t opened_key() const noexcept { return key_; }
  // v2 replay defence: the sender's window accepts the sequence number. false: dropped.
  // A new sender session may take a slot beyond the sender table's unverified share only if
  // `from` answered a reachability challenge (issue 13 M3). `challenge` is set when its new
  // session was refused for that share: `from` should be challenged.
  bool accept_v2(const wire::Packet& p, const Endpoint& from, Instant now, WallTime wall,
                 bool& challenge) noexcept;
  // `from` answered a challenge: its sender sessions join the verified share.
  void endpoint_verified(const Endpoint& from) noexcept { senders_.endpoint_verified(from); }
  bool knows_sender(std::uint32_t session) const noexcept { return senders_.find(session) != nullptr; }

  void on_publish_v2(const wire::Packet& p, const Endpoint& from, Instant now,
                     WallTime wall) noexcept;
  void on_publish_v1(const wire::Packet& p, const Endpoint& from, Instant now) noexcept;
  void on_pubrel(const wire::Packet& p, const Endpoint& from, Instant now) noexcept;
  // v1 SUBSCRIBE/UNSUBSCRIBE/HEARTBEAT: only checked against our channels, as the original.
  void on_v1_announce(const wire::Packet& p) noexcept;

  // Whether open() saw a datagram under this node's own session id with a sequence number it
  // never sent since the last call (M2: another key holder impersonates it). The engine then
  // renews the session (Session owns it); the receiver has counted it and raised the event.
  bool take_impersonation() noexcept {
    const bool seen = impersonated_;
    impersonated_ = false;
    return seen;
  }
  // Freshness after a restart (issue 13 M4, docs/engine.md §18). A receiver that starts has no
  // replay window for anyone, so a datagram captured before its start and replayed inside the
  // timestamp window would be delivered once more. note_start() fixes the start (the first
  // call counts; the engine calls it with every datagram and transmit). A sender session is
  // *live* once it sent something stamped in a later second than the start (it cannot have
  // been captured before the start), once it echoed one of our reachability tokens (its echo is
  // fresh), or once the receiver has run longer than the timestamp window (anything older is
  // stale). A PUBLISH stamped after the start is fresh by itself; one stamped earlier, from a
  // session not yet live or older than what made it live, is withheld: not delivered, not acknowledged (its publisher retransmits), counted as
  // unverified_sender. One exception: a QoS 0 PUBLISH stamped no earlier than the start's
  // second is delivered (QoS 0 is never retransmitted; the residual is documented).
  enum class Freshness : std::uint8_t { fresh, withheld, withheld_unverified };
  void note_start(Instant now, WallTime wall) noexcept;
  // For a PUBLISH accepted by accept_v2(). withheld_unverified: the session is not live yet
  // (the engine asks its endpoint for an echo); both withheld kinds are counted.
  Freshness freshness(const wire::Packet& p, Instant now) noexcept;
  // `session` echoed our token in the datagram with sequence number `packet_id`.
  void verified_live(std::uint32_t session, std::uint32_t packet_id) noexcept;
  // Expires inbound QoS states.
  void handle_timeout(Instant now) noexcept;
  // The next received message not expired at `now`, highest priority first.
  std::optional<MessageEvent> poll(Instant now) noexcept;
  // Engine::accept / refuse (EngineConfig::deferred_ack).
  Result<void> answer(AckToken token, bool accept, Instant now) noexcept;
  // The earliest lapse of a deferred acknowledgement.
  std::optional<Instant> next_deadline() const noexcept { return deferred_.next_deadline(); }
  std::size_t qos2_open(Instant now) const noexcept {
    return inbound_.count(InboundState::awaiting_pubrel, now);
  }
  std::size_t state_bytes() const noexcept;

 private:
  // open() of a datagram marked as channel-keyed: tries each channel key held.
  Result<wire::Packet> open_channel_keyed(Bytes datagram, const wire::DecodeOptions& opt) noexcept;
  // Whether `p` (just opened with key_) is sealed with the set its channel name selects.
  bool sealed_as_named(const wire::Packet& p) const noexcept;

  struct InboxItem {
    std::uint16_t size = 0;
    std::uint8_t name_size = 0;
    std::uint8_t flags = 0;
    Endpoint from;
    std::uint32_t session = 0;
    std::uint32_t message_id = 0;
    AckToken token = 0;  // deferred acknowledgement (MessageEvent::ack_token)
    Instant expires{};
  };
  // Room in the inbox (a node and the bytes) for a message on `channel`.
  bool inbox_fits(std::string_view channel, Bytes message) const noexcept {
    return !inbox_.full() && channel.size() + message.size() <= inbox_heap_.capacity() - inbox_heap_.used();
  }
  // Precondition: inbox_fits().
  void push_inbox(const wire::Packet& p, std::string_view channel, const Endpoint& from,
                  Instant expires, AckToken token = 0) noexcept;
  // Deferred acknowledgement of a QoS 1/2 message just remembered under (session, id): its
  // token, its inbound entry marked; 0 when deferred_ack is off.
  AckToken defer(const wire::Packet& p, std::uint32_t id, const Endpoint& from,
                 Instant now) noexcept;
  // A refused or lapsed deferred message: its inbound entry goes, so a retransmission is
  // delivered again.
  void forget(const DeferredAck& d, Instant now) noexcept;
  Errc remember_v2(const wire::Packet& p, Instant expires, Instant now) noexcept;
  void released_qos2(std::uint32_t session) noexcept;
  void note_clock_skew(const Endpoint& from, Bytes datagram, Instant now, WallTime wall) noexcept;
  // A clock_skew event for an authentic datagram of `session` stamped `timestamp` (once per
  // session per window).
  void note_skew(const Endpoint& from, std::uint32_t session, std::uint32_t timestamp,
                 Instant now, WallTime wall) noexcept;

  const Context& c_;  // Engine::Impl::ctx (outlives every component)
  Links l_;
  SenderTable senders_;
  InboundQosTable inbound_;
  NonceCache nonces_;
  DeferredAcks deferred_;
  PriorityQueue<InboxItem> inbox_;
  ByteHeap inbox_heap_;  // name + message of each inbox node, keyed by node index
  FixedArray<std::uint8_t> scratch_;
  // clock_skew events raised lately, by session: one per session per timestamp window. A few
  // entries suffice: the event tells the application that clocks disagree; the counter
  // dropped_by(stale_timestamp) has every datagram.
  struct SkewNote {
    std::uint32_t session = 0;
    Instant at{};
  };
  std::array<SkewNote, 8> skew_notes_{};
  std::size_t skew_next_ = 0;
  bool impersonated_ = false;
  std::uint8_t key_ = 0;  // opened_key()
  // M4: when this receiver started (monotonic, and the wall clock in wire seconds then).
  bool started_ = false;
  Instant start_{};
  std::uint32_t start_wire_ = 0;
  bool fresh_by_time(std::uint32_t timestamp, Instant now) const noexcept;
};

}  // namespace nomq::detail
