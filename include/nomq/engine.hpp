// The protocol engine: one object per node, sans-I/O. Bytes and time in; datagrams to send,
// events and the next deadline out. No sockets, no clock, no global state, no exceptions, and no
// heap at all when the caller gives it a buffer (every table is sized from EngineLimits up front,
// in one block: Engine::state_bytes_for(config); docs/engine.md §2).
//
// Two clocks (nomq/time.hpp): `now` is a monotonic Instant and drives every timer; `wall` is the
// wall-clock time and is used only for the timestamps that go on the wire and their check.
//
//   auto engine = nomq::Engine::create(config, crypto, rng, now);  // Result<Engine>
//   engine.subscribe("plant/line1/temp", 0, now);
//   engine.handle_datagram(from, bytes, now, wall);         // hostile input is counted, never thrown
//   while (auto tx = engine.poll_transmit(now, wall, buffer)) send(tx->to_group ? group : tx->to, ...);
//   while (auto ev = engine.poll_event()) std::visit(handler, *ev);
//   if (auto d = engine.next_deadline()) arm_timer(*d);     // then engine.handle_timeout(now)
//
// Not thread-safe: the runtime serialises calls.
#pragma once

#include "nomq/export.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

#include "nomq/bytes.hpp"
#include "nomq/crypto.hpp"
#include "nomq/endpoint.hpp"
#include "nomq/error.hpp"
#include "nomq/time.hpp"
#include "nomq/wire.hpp"

namespace nomq {

using namespace std::chrono_literals;

using MessageId = std::uint32_t;
// Names one received QoS 1/2 message whose acknowledgement waits for the application
// (EngineConfig::deferred_ack): Engine::accept / Engine::refuse. 0: no token.
using AckToken = std::uint32_t;

// Bounds on every table. Defaults follow the original (50 pending, 20 channels, 1024-byte
// messages, 5 retained per channel); the rest are ours. Exceeding one is an error to the caller
// (API) or a counted drop (network input), never a silent loss.
struct EngineLimits {
  std::size_t max_pending = 50;              // QoS 1/2 publishes awaiting acknowledgement
  std::size_t max_channels = 20;             // this node's subscriptions
  std::size_t max_message_size = 1024;       // bytes of one message
  std::size_t max_retained_per_channel = 5;  // publisher-side retained store depth
  std::size_t max_retained_channels = 20;    // channels with retained messages (both roles)
  std::size_t max_peers = 64;                // discovery table: remote node sessions
  std::size_t max_peer_subscriptions = 512;  // (peer, channel) pairs known
  std::size_t max_peer_filters = 32;         // distinct wildcard filters peers subscribe to
  // Endpoints tracked for the anti-amplification limit (docs/engine.md §17): per endpoint the
  // bytes received and sent, and whether it echoed a reachability token.
  std::size_t max_endpoints = 64;
  std::size_t max_senders = 128;             // replay windows (one per sender session)
  // Fair shares (docs/engine.md §10, issue 13 M3): sender sessions one source endpoint may hold
  // in the sender table, and QoS 2 states awaiting PUBREL one sender session may hold.
  std::size_t max_senders_per_endpoint = 16;
  std::size_t max_qos2_per_session = 64;
  std::size_t max_inbound_qos = 256;         // QoS 1/2 dedup and QoS 2 receiver states
  std::size_t max_inbox = 256;               // received messages not yet polled
  std::size_t max_outbox = 512;              // datagrams not yet polled
  std::size_t max_queued_messages = 64;      // QoS 0 publishes copied, waiting in the outbox
  // Bytes, not slots: what the bodies (channel name + message) may take in all. Each body takes
  // its own size, so these bound memory by what is held, not by slots × maximum size; the
  // message pool's bytes include each message's metadata (48 bytes, rounded to 8).
  // 0: room for every slot at full size (max_message_size plus a 255-byte name), which never
  // refuses what a slot limit allows.
  std::size_t message_pool_bytes = 0;  // sending side: queued QoS 0, pending QoS 1/2, retained
  std::size_t inbox_bytes = 0;         // received messages not yet polled
  std::size_t max_channel_name = 255;  // longest name this node subscribes to (wire max 255)
  // Recipients tracked per pending QoS 1/2 publish (0: max_peers). A further answering node is
  // not tracked (counted unexpected_packet) and not in the report.
  std::size_t max_recipients = 0;
  // With EngineConfig::deferred_ack: received QoS 1/2 messages delivered to the application
  // and not yet accepted or refused. A further one is dropped unacknowledged (inbox_full; its
  // publisher retransmits). At most 65534. No table without deferred_ack.
  std::size_t max_deferred_acks = 256;
  // Peer events (joined, left, restarted, clock_skew, auth_failed, impersonation) waiting for
  // poll_event(). 0: 2 × max_peers + 8. A further one is dropped (counted inbox_full); delivery
  // reports have their own room (max_pending) and are never dropped.
  std::size_t max_peer_events = 0;
};

struct EngineTimers {
  Duration heartbeat_interval = 30s;          // re-announce subscriptions (v2)
  Duration session_timeout = 300s;            // a silent peer is forgotten
  Duration retransmit_initial = 200ms;        // first retransmission timeout, doubling
  Duration retransmit_max = 60s;              // backoff cap
  Duration session_lifetime = 24h;            // renew the session id after this
  Duration retained_answer_max_delay = 250ms; // subscribers' retained answers: random delay
  Duration inbound_state_lifetime = 600s;     // QoS 2 receiver state without PUBREL expires
  // v2 start-up discovery (docs/engine.md §3): soliciting HEARTBEATs at 0 and doubling gaps
  // (base discovery_period/256) while the offset plus retained_answer_max_delay fits the period;
  // a QoS 1/2 group publish made within the period keeps adding the subscribers that answer
  // until the period ends. 0: one solicitation at start, nothing held.
  Duration discovery_period = 1500ms;
  // Answers to a solicitation wait a random delay in [0, min(retained_answer_max_delay,
  // solicit_answer_spread × peers known)]: a few peers answer at once, many are spread.
  Duration solicit_answer_spread = 2ms;
  // A publish made within the discovery period is reported once every recipient answered and
  // the answers to the first solicitation can have arrived: that answer window (the spread
  // above, by the peers this node knows) plus this margin for transit. Subscribers that answer
  // later still get the message, tracked, until the period ends (stats().late_recipients).
  Duration discovery_settle = 30ms;
  // Answers to one solicitor session: a burst of 16, then one per this interval (rate limit).
  Duration solicit_answer_interval = 1s;
  // Retained replays per (subscriber session, channel): a burst of 2, then one per interval.
  Duration retained_replay_interval = 10s;
  // Datagrams failing authentication from one host: a PeerEvent auth_failed at the first, then
  // at most one per this interval while they go on (docs/engine.md §13).
  Duration auth_failure_report_interval = 10s;
  // With EngineConfig::deferred_ack: a delivered QoS 1/2 message the application neither
  // accepted nor refused within this time is refused (its token lapses, nothing is answered).
  Duration deferred_ack_timeout = 30s;
};

// A v2 session identity to continue after a restart (EngineConfig::resume, Engine::
// session_state(); docs/engine.md §11). A node that keeps it durable, with sequence numbers
// reserved ahead of those it used, can republish a QoS 1/2 message after a crash under the
// same (session, message id): receivers still holding its state recognise the repeat (QoS 2
// exactly once across the restart). The bridge does this (docs/bridge.md). A session whose
// epoch tag (docs/protocol.md §6.1) is not that of EngineConfig::key_epoch is not resumed: the
// keys changed in between, and a fresh session is drawn.
struct SessionResume {
  std::uint32_t session_id = 0;       // 0: none, draw a fresh session
  std::uint32_t next_sequence = 0;    // above every sequence number the session has used
  std::uint32_t next_message_id = 0;  // 0: drawn at random
};

struct NOMQ_EXPORT EngineConfig {
  WireVersion wire = WireVersion::v2;
  // v2: the key epoch of the keys create() is given. Its tag (epoch mod 4) goes into the top two
  // bits of this node's session ids (docs/protocol.md §6.1); Engine::rotate_keys moves it on.
  std::uint32_t key_epoch = 0;
  std::uint32_t epoch_offset = 0;                   // 0 or kEpoch2000Offset (v1 devices)
  std::uint32_t timestamp_window_s = 30;
  // v2: a timestamp more than this ahead of the receiver's clock is refused (future_timestamp),
  // so that nobody can stamp datagrams that stay fresh (and pin sender slots) for longer than
  // the window; the past side stays timestamp_window_s. Capped at timestamp_window_s.
  std::uint32_t timestamp_future_s = 5;
  std::uint32_t replay_window = 1024;               // sequence numbers per sender session (v2)
  std::size_t v1_nonce_cache = 1024;                // inner-nonce replay cache (v1; original: 100)
  wire::V1Layout v1_publish_layout = wire::V1Layout::gap20;
  std::uint16_t default_ttl_s = 3600;
  std::uint32_t max_retries = 0;                    // 0: until acknowledged or TTL expiry
  // Deferred acknowledgement (docs/engine.md §6): a received QoS 1/2 message is delivered with
  // MessageEvent::ack_token, and its ACK (QoS 1) / PUBREC (QoS 2) leaves only when the
  // application calls accept(token); refuse(token), or no answer within
  // timers.deferred_ack_timeout, sends nothing, so the publisher retransmits and, if the
  // application never accepts, reports this node as failed. For an application that must make
  // a message durable before its publisher may consider it delivered (the bridge's store).
  // Wire v2 only (validate() refuses it with v1).
  bool deferred_ack = false;
  // v2: continue this session instead of drawing one (session_id 0: draw). The sequence
  // numbers must be above any the session sent before, or receivers drop them as replays.
  SessionResume resume{};
  EngineLimits limits;
  EngineTimers timers;

  // Ready configurations for devices (src/core/engine_profiles.cpp; docs/embedded.md lists
  // their limits and state per table): the seed's own limits (50 pending, 20 channels,
  // 1024-byte messages), and a small device's (8 pending, 8 channels, 256-byte messages),
  // both with every feature (QoS 2, retained, discovery, replay window).
  static EngineConfig seed_profile() noexcept;
  static EngineConfig small_profile() noexcept;
};

// When a key rotation (Engine::rotate_keys) takes effect, from the call: the new epoch is
// accepted at once; sending switches to it after `switch_after` (a new session; publishes
// already sent finish under the old one while it is accepted); the old epoch is accepted until
// `overlap` has passed, then refused (old_key_epoch). Two nodes told to rotate at most
// min(switch_after, overlap - switch_after) apart never lose each other (docs/engine.md §19).
struct KeyRotation {
  Duration switch_after = 150s;
  Duration overlap = 300s;
};

// Per-channel keys (v2; docs/engine.md §20, docs/protocol.md §14.4): at most kMaxChannelKeys
// per engine (each one more MAC a receiver may compute for a datagram marked channel-keyed),
// patterns of 1..kMaxChannelKeyPattern bytes.
inline constexpr std::size_t kMaxChannelKeys = 4;
inline constexpr std::size_t kMaxChannelKeyPattern = 32;

struct PublishOptions {
  Qos qos = Qos::at_most_once;
  bool retain = false;
  std::uint16_t ttl_s = 0;                  // 0: config default_ttl_s
  std::uint8_t priority = 0;                // 0..15, higher leaves first
  std::optional<Endpoint> destination;      // unicast; none: the group / every known subscriber
  std::optional<Duration> wait_for_subscribers;  // QoS 1/2 to the group with no subscriber known
                                            // yet: how long to wait (none: until TTL expiry)
  // v2: publish under this message id instead of the session's next one (0: the next). For a
  // republish after a restart under a resumed session (SessionResume): the same (session,
  // message id) is recognised as a repeat by receivers. An id that a pending publish has is
  // invalid_argument.
  MessageId message_id = 0;
};

// A datagram the caller must send now.
struct Transmit {
  bool to_group = false;  // true: the configured group destination (broadcast/multicast)
  Endpoint to;            // unicast destination when !to_group
  std::size_t size = 0;   // bytes written at the start of the caller's buffer
  std::uint8_t priority = 0;
};

// A received message. Views stay valid until the next call on the engine.
struct MessageEvent {
  std::string_view channel;  // v2: the name from the packet; v1: the subscribed name it matched
  Bytes message;
  Qos qos = Qos::at_most_once;
  bool retain = false;
  std::uint8_t priority = 0;
  Endpoint from;
  std::uint32_t sender_session = 0;
  MessageId message_id = 0;  // v2 message id; v1 inner nonce
  // v2: the seconds of lifetime left when polled, rounded up (never 0 for a delivered
  // message); what a bridge forwards as MQTT's Message Expiry Interval. v1: 0 (no ttl).
  std::uint32_t ttl_s = 0;
  // With EngineConfig::deferred_ack, for a QoS 1/2 message: the token accept()/refuse() take;
  // nothing is acknowledged until accept(). 0 otherwise (already acknowledged, or QoS 0).
  AckToken ack_token = 0;
};

enum class RecipientState : std::uint8_t {
  pending,       // no answer yet (only while the publish is in flight)
  acknowledged,  // QoS 1 ACK / QoS 2 PUBCOMP received
  received,      // QoS 2 PUBREC received, PUBCOMP never came: delivered, handshake incomplete
  unconfirmed,   // v1 device dropped a repeated nonce silently: may or may not have it
  failed,        // never answered before TTL expiry / retry limit / close
};
NOMQ_EXPORT std::string_view to_string(RecipientState s) noexcept;

struct Recipient {
  Endpoint endpoint;
  std::uint32_t session_id = 0;  // 0 for an explicit destination never heard from
  RecipientState state = RecipientState::pending;
  std::uint32_t transmissions = 0;
};

// The end of a QoS 1/2 publish: who acknowledged, who did not. `reason` is ok when every
// recipient acknowledged; otherwise expired (TTL), timed_out (retry limit), no_subscribers
// (nobody appeared within the wait), closed (engine closed first).
struct DeliveryReport {
  MessageId message_id = 0;
  std::string_view channel;
  Qos qos = Qos::at_least_once;
  Errc reason = Errc::ok;
  std::span<const Recipient> recipients;  // valid until the next call on the engine
  bool all_acknowledged() const noexcept { return reason == Errc::ok; }
};

// A change in what this node knows of another node. clock_skew: an authentic datagram (its MAC
// verified) was dropped because its timestamp lies outside timestamp_window_s of this node's
// wall clock: one of the two clocks is wrong (a device before NTP, a manual step). Traffic from
// that node is refused until the clocks agree again; QoS 1/2 publishes keep being retransmitted
// (on the monotonic clock) and go through once they do, or end in a report. Raised at most once
// per timestamp window for one session.
// auth_failed: datagrams from `endpoint` fail authentication (bad_mac): most likely a node with
// other keys (or another key epoch), or forged traffic. Raised at a host's first such datagram,
// then at most once per auth_failure_report_interval while they go on; session_id is 0 (the
// header is not authentic), `failures` counts the host's failed datagrams so far
// (Engine::auth_failures() has the table).
struct PeerEvent {
  // auth_failed: see above. impersonation: an authentic datagram under this node's own
  // session id with a sequence number it never sent (another key holder; docs/security.md M2).
  // The node has renewed its session at once; `endpoint` is where the forgery came from (the
  // UDP source, unverified).
  enum class Kind : std::uint8_t { joined, left, restarted, clock_skew, auth_failed, impersonation };
  Kind kind = Kind::joined;
  Endpoint endpoint;
  std::uint32_t session_id = 0;
  std::int64_t clock_offset_s = 0;  // clock_skew: the sender's wire time minus this node's
  std::uint64_t failures = 0;       // auth_failed: datagrams from that host that failed
};
NOMQ_EXPORT std::string_view to_string(PeerEvent::Kind k) noexcept;

using Event = std::variant<MessageEvent, DeliveryReport, PeerEvent>;

// Hosts whose datagrams failed authentication that an engine keeps count of (Engine::
// auth_failures(); a fixed table inside the engine, the least recently heard replaced).
inline constexpr std::size_t kMaxAuthFailureSources = 8;

// A host whose datagrams failed authentication (Engine::auth_failures()).
struct AuthFailureSource {
  Endpoint address;            // the sender's address; port 0 (ports change across restarts)
  std::uint64_t datagrams = 0; // how many failed
  Instant first{};             // first and last heard (monotonic clock)
  Instant last{};
};

struct EngineStats {
  std::uint64_t datagrams_received = 0;
  std::uint64_t datagrams_sent = 0;
  std::uint64_t messages_published = 0;
  std::uint64_t messages_delivered = 0;
  std::uint64_t retransmissions = 0;
  std::uint64_t duplicates_suppressed = 0;
  std::uint64_t solicitations_sent = 0;        // soliciting HEARTBEATs queued (v2)
  std::uint64_t solicitations_answered = 0;    // answers sent (one per solicitation, all channels)
  std::uint64_t solicitations_suppressed = 0;  // not answered: rate limit or answer table full
  // Subscribers that joined a discovery-period publish after its report (docs/engine.md §3):
  // how many, and how many of them did not acknowledge it in the end.
  std::uint64_t late_recipients = 0;
  std::uint64_t late_recipients_failed = 0;
  std::uint64_t impersonations_detected = 0;   // our session id with a sequence we never sent (v2)
  // Anti-amplification (docs/engine.md §17): datagrams not sent to an endpoint that has not
  // proved it receives our traffic because they would take the bytes sent there above 3x the
  // bytes received from it; reachability challenges sent; endpoints that echoed one.
  std::uint64_t amplification_limited = 0;
  std::uint64_t echo_challenges_sent = 0;
  std::uint64_t endpoints_verified = 0;
  // Retained replays not made: the (session, channel) asked again within
  // retained_replay_interval beyond its burst, or the limiter table was full.
  std::uint64_t retained_replays_suppressed = 0;
  // QoS 2 states awaiting PUBREL evicted from a full inbound table in favour of a session
  // holding fewer (fair share, docs/engine.md §6); their publisher's PUBREL is still answered.
  std::uint64_t qos2_states_evicted = 0;
  // Deferred acknowledgements (EngineConfig::deferred_ack): messages accepted, refused by the
  // application, and lapsed unanswered (deferred_ack_timeout).
  std::uint64_t deferred_accepted = 0;
  std::uint64_t deferred_refused = 0;
  std::uint64_t deferred_lapsed = 0;
  // Key rotation (docs/engine.md §19): sending switched to a new key epoch (a new session);
  // previous epochs retired.
  std::uint64_t key_epoch_switches = 0;
  std::uint64_t key_epochs_retired = 0;
  std::uint64_t dropped_total = 0;
  std::array<std::uint64_t, kErrcCount> dropped{};  // index: static_cast<size_t>(Errc)
  std::uint64_t dropped_by(Errc e) const noexcept { return dropped[static_cast<std::size_t>(e)]; }
};

// Errors come back as nomq::Error (nomq/error.hpp): the code to act on, and a message naming the
// refused argument, or the limit with its value and config key ("subscribed to 20 channels, the
// limit (config key max_channels)"). Building one allocates nothing.

namespace detail {
struct EngineTesting;
}  // namespace detail

// The engine's state by table (Engine::state_report): what each takes of the state block.
struct TableBytes {
  std::string_view table;  // e.g. "publisher (pending, recipients)"
  std::size_t bytes = 0;
};
inline constexpr std::size_t kEngineTables = 13;
using StateReport = std::array<TableBytes, kEngineTables>;

class NOMQ_EXPORT Engine {
 public:
  // The alignment a caller's state buffer must have.
  static constexpr std::size_t kStateAlign = alignof(std::max_align_t);

  // Checks `config`: every count limit at least 1 (at least 0 for max_queued_messages and
  // max_retained_channels, which may disable QoS 0 queueing and retained messages), sizes that
  // fit the wire (max_message_size <= 65535, max_channel_name <= 255), byte budgets that hold
  // at least one full-size body. Errors: config_bad_field, naming the field, the value and the
  // limit it broke.
  static Result<void> validate(const EngineConfig& config) noexcept;

  // The bytes of state an engine with `config` holds: the exact size of the block create()
  // takes (the Impl and every table, each rounded to kStateAlign). `config` must validate.
  static std::size_t state_bytes_for(const EngineConfig& config) noexcept;
  // The same, by table; the entries add up to state_bytes_for(config).
  static StateReport state_report_for(const EngineConfig& config) noexcept;

  // Validates `config`, takes one block of state_bytes_for(config) bytes from `memory` (the
  // only allocation the engine ever makes; given back by the destructor), and builds every
  // table in it. Draws the session id from `rng`. `now`: the current monotonic instant.
  // `crypto` and `rng` must outlive the engine. Errors: config_bad_field (validate()),
  // buffer_too_small (the resource could not provide the block).
  static Result<Engine> create(const EngineConfig& config, Crypto& crypto, Rng& rng, Instant now,
                               std::pmr::memory_resource* memory = std::pmr::get_default_resource());
  // The same in the caller's `buffer` (aligned to kStateAlign, at least state_bytes_for(config)
  // bytes, outliving the engine): no heap at all. Errors: config_bad_field, buffer_too_small
  // (with the size needed), invalid_argument (misaligned).
  static Result<Engine> create(const EngineConfig& config, Crypto& crypto, Rng& rng, Instant now,
                               std::span<std::byte> buffer);

  ~Engine();
  Engine(Engine&& other) noexcept;
  Engine& operator=(Engine&& other) noexcept;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Subscribes and (v2) announces it to the group (asking peers for retained messages).
  // `channel` may be an MQTT topic filter (v2 only): '+' one level, '#' the rest
  // ("plant/+/temp", "plant/#"); publishers deliver every matching channel to it, QoS 1/2
  // included, and replay retained messages of every matching channel.
  // Priority above 15 is clamped. Errors: invalid_argument (empty or not UTF-8, a malformed
  // filter, a filter with wire v1),
  // channel_name_too_long, too_many_channels, already_subscribed (priority is updated),
  // closed.
  Result<void> subscribe(std::string_view channel, std::uint8_t priority, Instant now);
  // Errors: not_subscribed.
  Result<void> unsubscribe(std::string_view channel, Instant now);
  // Announces (v2, UNSUBSCRIBE to the group) that this node does not subscribe to `channel`,
  // a channel or filter it does not follow: peers drop at once a subscription they still
  // hold for this endpoint from its previous session (a restart at the same address inherits
  // them until they are confirmed or two re-announcement rounds pass, docs/engine.md §3), and
  // end what their publishes still wait for on it (reported failed). mosquitto_sub -U.
  // Errors: invalid_argument (empty or not UTF-8, a malformed filter, wire v1: nothing is
  // announced there), channel_name_too_long, already_subscribed (use unsubscribe()),
  // too_many_channels (no slot for the announcement), closed.
  Result<void> withdraw(std::string_view channel, Instant now);

  // Queues a publish. QoS 0: one datagram. QoS 1/2: tracked per recipient and retransmitted until
  // acknowledged, TTL expiry or max_retries; ends with exactly one DeliveryReport event.
  // Returns the message id (v2) or packet id (v1) that the DeliveryReport will carry.
  // Errors: invalid_argument (empty or non-UTF-8 channel, a name with '+' or '#', priority > 15, QoS > 2, invalid
  // destination), channel_name_too_long, message_too_large (above max_message_size or one
  // datagram), too_many_pending (poll events: a slot is freed when its report is polled),
  // too_many_retained, queue_full (poll_transmit first), no_subscribers (v1 QoS 1/2 without a
  // destination), closed. On error nothing was queued.
  Result<MessageId> publish(std::string_view channel, Bytes message, const PublishOptions& options,
                            Instant now);

  // Deferred acknowledgement (EngineConfig::deferred_ack): answers a message delivered with
  // MessageEvent::ack_token. accept queues its ACK (QoS 1) or PUBREC (QoS 2; the handshake then
  // goes on as usual); a retransmission that arrived meanwhile was dropped unanswered and the
  // next one is answered as a duplicate. refuse sends nothing and forgets the message: its
  // publisher retransmits it, a retransmission is delivered again (with a new token), and a
  // publisher whose message is never accepted ends it with this node failed in its report.
  // Errors: invalid_argument (0, or a token this engine never gave), expired (the token was
  // already answered or refused, or lapsed after timers.deferred_ack_timeout).
  Result<void> accept(AckToken token, Instant now);
  Result<void> refuse(AckToken token, Instant now);

  // Feeds one received datagram. Never fails: rejections are counted in stats().dropped.
  // `wall`: this node's wall clock, checked against the datagram's timestamp (a datagram outside
  // timestamp_window_s is dropped as stale_timestamp and, if authentic, raises clock_skew).
  void handle_datagram(const Endpoint& from, Bytes datagram, Instant now, WallTime wall);

  // Runs timers (retransmissions, heartbeats, expiry). Call when next_deadline() has passed;
  // calling it early is harmless.
  void handle_timeout(Instant now);

  // The next datagram to send, highest priority first then FIFO, written into `buffer` (give it
  // at least wire::kMaxDatagram bytes). nullopt when nothing is queued.
  // `wall` stamps the datagram (the wire timestamp is that of the moment it leaves).
  std::optional<Transmit> poll_transmit(Instant now, WallTime wall, MutableBytes buffer);

  // The next event: received messages (highest priority first within what has arrived),
  // delivery reports, peer changes. Views stay valid until the next call on the engine.
  std::optional<Event> poll_event();

  // When handle_timeout() next has work; nullopt when nothing is scheduled.
  std::optional<Instant> next_deadline() const;

  // Announces unsubscription of every channel (v2) and ends every pending publish with a
  // DeliveryReport (reason closed). The engine accepts no publish afterwards.
  void close(Instant now);

  // Key rotation (v2; docs/engine.md §19): `next` holds the keys of epoch `epoch`, which must
  // be key_epoch() + 1. Datagrams of that epoch are accepted from now on; sending switches to it
  // (a new session, announced) as `when` says; the current epoch stays accepted until
  // now + when.overlap, then its datagrams are dropped as old_key_epoch. A previous epoch still
  // in its overlap is retired at once. `next` must outlive its use (holds_keys()).
  // Errors: invalid_argument (wire v1, which has no epochs; an epoch other than key_epoch() + 1;
  // a rotation whose switch is still pending; overlap not above switch_after), closed.
  Result<void> rotate_keys(Crypto& next, std::uint32_t epoch, const KeyRotation& when, Instant now);
  // The key epoch this engine sends under.
  std::uint32_t key_epoch() const noexcept;
  // Whether the engine still uses `keys` (current, next or previous epoch): a caller may free a
  // key set it gave rotate_keys() once this is false.
  bool holds_keys(const Crypto& keys) const noexcept;

  // Per-channel keys (v2; docs/engine.md §20): channels matching `pattern` (an exact channel
  // name, or an MQTT filter such as "door/#") are sealed with `keys` instead of the group's
  // keys, and their channel ids are keyed tags (keys.channel_tag()). A name matching several
  // patterns takes the exact one, else the longest filter. Received datagrams marked
  // channel-keyed are opened with the channel keys held; a named datagram (PUBLISH, SUBSCRIBE,
  // UNSUBSCRIBE) sealed with another set than its name's is dropped (wrong_channel_key), as is
  // an answer sealed with another set than its publish's. Takes effect at once: own
  // subscriptions whose ids change are re-announced under the new key. A pattern already held
  // has its set replaced. `keys` must outlive its use (holds_channel_key()).
  // Errors: invalid_argument (wire v1; pattern empty, longer than kMaxChannelKeyPattern, not
  // UTF-8 or a malformed filter), too_many_channels (kMaxChannelKeys held), closed.
  Result<void> add_channel_key(std::string_view pattern, Crypto& keys, Instant now);
  // Stops using the key of `pattern` (its channels go back to the group's keys; own
  // subscriptions are re-announced). Errors: not_subscribed (no key has that pattern).
  Result<void> remove_channel_key(std::string_view pattern, Instant now);
  std::size_t channel_key_count() const noexcept;
  // Whether `keys` is still a channel key set of this engine (a caller may free it if not).
  bool holds_channel_key(const Crypto& keys) const noexcept;

  std::uint32_t session_id() const noexcept;
  // v2: the session, the sequence number the next datagram takes and the next message id:
  // what a restart passes back in EngineConfig::resume (reserving sequence numbers ahead).
  SessionResume session_state() const noexcept;
  std::size_t pending_count() const noexcept;
  // Publishes already reported that still take subscribers answering late (made within the
  // discovery period; the tail, docs/engine.md §3). A process about to exit keeps running until
  // this is 0, or a subscriber that answered after the report misses the message. A tail ends
  // with the discovery period, or later once its late recipients have acknowledged (at the
  // latest the TTL).
  std::size_t tail_count() const noexcept;
  // QoS 2 messages received (PUBLISH delivered, PUBREC sent) whose PUBREL has not arrived yet,
  // i.e. handshakes this node still owes a PUBCOMP for. A receiver about to exit should keep
  // running (handling datagrams and timeouts) until this is 0, or its publishers retransmit
  // PUBREL in vain and report the recipient as only `received`. States expire after
  // inbound_state_lifetime. v1 and v2.
  std::size_t inbound_qos2_open() const noexcept;
  const EngineStats& stats() const noexcept;
  // Hosts whose datagrams failed authentication (stats().dropped_by(bad_mac) counts them all),
  // at most kMaxAuthFailureSources, the least recently heard replaced when full. Valid until
  // the next call on the engine.
  std::span<const AuthFailureSource> auth_failures() const noexcept;
  const EngineConfig& config() const noexcept;
  // Bytes of state this engine holds: state_bytes_for(config()) (all tables at their
  // configured capacity, whatever is in use).
  std::size_t state_bytes() const noexcept;
  // The same by table.
  StateReport state_report() const noexcept;

 private:
  friend struct detail::EngineTesting;  // per-engine test hooks (src/core/engine_testing.hpp)
  struct Impl;
  Engine(Impl* impl, std::pmr::memory_resource* memory) noexcept : impl_(impl), memory_(memory) {}
  void destroy() noexcept;
  Impl* impl_ = nullptr;
  std::pmr::memory_resource* memory_ = nullptr;  // null: the caller's buffer
};

}  // namespace nomq
