// The Linux runtime: a NoMQ node with its UDP sockets, event loop and a thread-safe API around
// the sans-I/O engine (nomq/engine.hpp). This is what an application includes.
//
//   auto node = nomq::Node::create(options);            // or nomq::Node::load("nomq.json")
//   (*node)->start();                                   // background thread (or run_once())
//   (*node)->subscribe("plant/line1/temp");
//   auto listener = (*node)->listen();
//   auto sent = (*node)->publish("plant/line1/temp", "21.5", {.qos = nomq::Qos::exactly_once});
//   if (auto msg = listener.next(2s)) std::cout << msg->channel << " " << msg->message << "\n";
//   nomq::Delivery report = sent->wait();               // who acknowledged, who did not
//
// Threading: every member function may be called from any thread, except run_once(), which
// must not run concurrently with itself or with start(). Callbacks run on the thread that drives
// the loop (the background thread, or the caller of run_once / Listener::next /
// PublishHandle::wait) without the node's lock held, so they may call publish().
#pragma once

#include "nomq/export.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nomq/bytes.hpp"
#include "nomq/config.hpp"
#include "nomq/crypto.hpp"
#include "nomq/endpoint.hpp"
#include "nomq/endpoint_io.hpp"  // to_string(Endpoint): printing Message::from, Recipient::endpoint
#include "nomq/engine.hpp"
#include "nomq/error.hpp"
#include "nomq/time.hpp"

namespace nomq {

// Where and how the node talks. The group is where discovery and group publishes go: an IPv4
// broadcast address (255.255.255.255, a subnet broadcast, 127.255.255.255 on loopback) or an
// IPv4/IPv6 multicast group; its port is the well-known group port every node binds.
struct NetworkOptions {
  Endpoint group = Endpoint::v4(255, 255, 255, 255, 8888);
  // Multicast: the interface to join on and send from ("lo", "eth0"); empty: the kernel's
  // choice (IPv4) / the default multicast route (IPv6). Broadcast ignores it.
  std::string interface_name;
  // The node's own (unicast) socket: address and port. Unset: the wildcard address of the
  // group's family and an ephemeral port. Replies (acks, QoS 2 handshake) come back here.
  std::optional<Endpoint> unicast_bind;
  // Bind the group port and hear group traffic (discovery, group publishes). A node that only
  // publishes to explicit destinations may turn it off.
  bool listen_group = true;
  // Socket re-initialisation after a failure (interface gone): first delay, doubling, capped.
  Duration reinit_initial = std::chrono::milliseconds{100};
  Duration reinit_max = std::chrono::seconds{30};
  // Messages buffered per listener before the oldest is dropped (counted in NodeStats).
  std::size_t listener_capacity = 4096;
};

struct NOMQ_EXPORT NodeOptions {
  // Keys, in one of two forms (docs/config.md). With master_secret set, every key is derived
  // from it, bound to group_id, key_epoch and the wire version (nomq/key_schedule.hpp), and
  // the raw keys are ignored; else encryption_key and hmac_key are the wire keys as given.
  Key encryption_key{};
  Key hmac_key{};
  std::optional<Key> master_secret;
  std::string group_id;
  std::uint32_t key_epoch = 0;
  // Per-channel keys (v2; Node::add_channel_key, docs/engine.md §20).
  std::vector<ChannelKeySpec> channel_keys;
  EngineConfig engine;
  NetworkOptions network;

  // Every key copy is wiped (wipe_secret) when NodeOptions go away.
  NodeOptions() = default;
  ~NodeOptions();
  NodeOptions(const NodeOptions&) = default;
  NodeOptions(NodeOptions&&) = default;
  NodeOptions& operator=(const NodeOptions&) = default;
  NodeOptions& operator=(NodeOptions&&) = default;
};

// A received message, owned (copied out of the engine's views).
struct Message {
  std::string channel;
  std::string message;  // the bytes as sent; UTF-8 text in practice, binary allowed
  Qos qos = Qos::at_most_once;
  bool retain = false;
  std::uint8_t priority = 0;
  Endpoint from;
  std::uint32_t sender_session = 0;
  MessageId message_id = 0;
  std::uint32_t ttl_s = 0;  // v2: seconds of lifetime left on arrival (MessageEvent::ttl_s)
  // With engine.deferred_ack, a QoS 1/2 message: not acknowledged until Node::accept(ack_token)
  // (MessageEvent::ack_token). 0 otherwise.
  AckToken ack_token = 0;
};

// The end of a publish, owned. QoS 0 publishes end at once with reason ok and no recipients
// (nothing is acknowledged at QoS 0). For QoS 1/2 see DeliveryReport in engine.hpp.
struct Delivery {
  MessageId message_id = 0;
  std::string channel;
  Qos qos = Qos::at_most_once;
  Errc reason = Errc::ok;
  std::vector<Recipient> recipients;
  bool all_acknowledged() const noexcept { return reason == Errc::ok; }
};

// Sets the level of the "nomq" logger (spdlog, to stderr). Off by default: a library stays
// quiet inside applications until asked.
NOMQ_EXPORT void set_log_level(LogLevel level);
// Parses "debug", "info", "warning", "error", "off".
NOMQ_EXPORT std::optional<LogLevel> parse_log_level(std::string_view text);

// The node's settings from a config file's contents (nomq/config.hpp): the group from `group`
// and `port` (port 0: an ephemeral group port, for tests), the unicast socket from `ip` and
// `unicast_port`, the multicast interface from `group_interface`, the engine's from
// to_engine_config(). Errors: config_bad_field, the message naming the key ("group: ...").
NOMQ_EXPORT Result<NodeOptions> to_node_options(const NodeConfig& config);

struct NodeStats {
  EngineStats engine;
  std::uint64_t send_errors = 0;         // datagrams the kernel refused (counted, not retried here;
                                         // the engine retransmits QoS 1/2)
  std::uint64_t receive_errors = 0;
  std::uint64_t socket_reinits = 0;      // successful socket re-initialisations
  std::uint64_t listener_overflows = 0;  // messages dropped because a listener was full
  std::uint64_t unicast_received = 0;    // datagrams that arrived on the node's own socket
                                         // (replies, handshakes), as opposed to group traffic
  std::uint64_t batches_received = 0;    // recvmmsg calls that returned datagrams
  std::uint64_t batches_sent = 0;        // sendmmsg calls
  std::size_t inbound_qos2_open = 0;     // QoS 2 messages delivered here whose handshake still
                                         // awaits the publisher's PUBREL (Engine::inbound_qos2_open)
  // Hosts whose datagrams failed authentication (Engine::auth_failures; in no particular order):
  // a node with other keys or another key epoch, or forged traffic.
  std::vector<AuthFailureSource> auth_failures;
};

// "heard 3 datagrams from 192.0.2.7 that failed authentication: different keys or key epoch?"
NOMQ_EXPORT std::string auth_failure_text(const Endpoint& host, std::uint64_t datagrams);

class Node;
namespace detail {
struct NodeCore;
struct ListenerQueue;
struct DeliveryState;
}  // namespace detail

// The delivery report of one publish, ready when the engine ends it. Valid after the node is
// closed (close() ends every pending publish).
class NOMQ_EXPORT PublishHandle {
 public:
  PublishHandle() = default;  // empty: ready() is false, wait_for() returns nullopt
  // False for an empty handle (default-constructed, or moved from).
  bool valid() const noexcept { return core_ != nullptr; }
  MessageId message_id() const noexcept { return id_; }
  // True once the report is ready.
  bool ready() const;
  // Waits up to `timeout` for the report; nullopt if it is not ready by then. If no thread runs
  // the node's loop (start() was not called), this drives it.
  std::optional<Delivery> wait_for(Duration timeout) const;
  // Waits until the report is ready (at the latest at TTL expiry or close()). Precondition: not
  // an empty handle.
  Delivery wait() const;

 private:
  friend class Node;
  PublishHandle(std::shared_ptr<detail::NodeCore> core, std::shared_ptr<detail::DeliveryState> s,
                MessageId id)
      : core_(std::move(core)), state_(std::move(s)), id_(id) {}
  std::shared_ptr<detail::NodeCore> core_;
  std::shared_ptr<detail::DeliveryState> state_;
  MessageId id_ = 0;
};

// The original's listen(): a queue of received messages. Every live listener gets every
// message received after it was created.
class NOMQ_EXPORT Listener {
 public:
  ~Listener();
  Listener(Listener&&) noexcept;
  Listener& operator=(Listener&&) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  // The next message, waiting up to `timeout` (zero: don't wait; the original's mssg()).
  // nullopt on timeout or once the node is closed and the queue is empty. If no thread runs
  // the node's loop, this drives it.
  std::optional<Message> next(Duration timeout = Duration::zero());
  std::size_t size() const;

 private:
  friend class Node;
  Listener(std::shared_ptr<detail::NodeCore> core, std::shared_ptr<detail::ListenerQueue> q);
  std::shared_ptr<detail::NodeCore> core_;
  std::shared_ptr<detail::ListenerQueue> queue_;
};

class NOMQ_EXPORT Node {
 public:
  // Opens the sockets and creates the engine. Errors, each with a message saying which call
  // failed on which address and why: crypto_failure (OpenSSL), io_error (socket/bind/multicast
  // join failed, e.g. "bind 0.0.0.0:8888: Address already in use"; a port in use by a non-NoMQ
  // program or a missing interface are the usual causes), invalid_argument (group address of
  // no family).
  static Result<std::unique_ptr<Node>> create(const NodeOptions& options);
  // Loads a config file (plain JSON or the original's obfuscated format; nomq/config.hpp) and
  // creates the node. Errors: those of load_config() (config_unreadable, config_bad_format,
  // config_bad_field; the message names the file and the key, or gives the OS's reason:
  // "/etc/nomq.json: No such file or directory"), of to_node_options() (prefixed with the file)
  // and of create(). The loader's warnings go to the log. Also applies the file's log_level.
  static Result<std::unique_ptr<Node>> load(const std::string& config_file);

  ~Node();  // close() if not closed yet
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Subscribes and announces it. Errors: see Engine::subscribe; closed.
  Result<void> subscribe(std::string_view channel, std::uint8_t priority = 0);
  // Errors: not_subscribed, closed.
  Result<void> unsubscribe(std::string_view channel);
  // Tells the group that this node does not subscribe to `channel` (one it does not follow):
  // peers drop a subscription inherited from this address's previous session at once instead
  // of waiting for it (`nomq sub -U`). Errors: see Engine::withdraw; closed.
  Result<void> withdraw(std::string_view channel);
  // Queues a publish; the returned handle gives its delivery report. Thread-safe.
  // Errors: see Engine::publish (invalid_argument, channel_name_too_long, message_too_large,
  // too_many_pending: wait for a report and retry, too_many_retained, queue_full,
  // no_subscribers), closed.
  Result<PublishHandle> publish(std::string_view channel, std::string_view message,
                                const PublishOptions& options = {});

  // Holds this node's sends while it lives, like MSG_MORE: the datagrams of publishes made
  // meanwhile (from any thread) leave in sendmmsg() batches of up to 32, one system call per
  // batch instead of one per publish. What is queued goes out when 32 publishes are waiting,
  // when the last live Batch ends, and whenever the loop turns (run_once, the background
  // thread, PublishHandle::wait_for). Hold one around a burst of publishes, not across a wait
  // for their reports. Batches nest and may be moved; a Batch may outlive close() (it then
  // does nothing).
  class Batch {
   public:
    Batch() = default;
    ~Batch();
    Batch(Batch&& other) noexcept;
    Batch& operator=(Batch&& other) noexcept;
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    friend class Node;
    explicit Batch(std::shared_ptr<detail::NodeCore> core);
    void end() noexcept;
    std::shared_ptr<detail::NodeCore> core_;
  };
  [[nodiscard]] Batch batch();

  Listener listen();
  // Called for every received message (on the loop's thread, lock not held). One callback; a
  // new one replaces the old; an empty function removes it.
  void on_message(std::function<void(const Message&)> callback);
  // Called for every received message on the loop's thread WITH the node's lock held, before
  // the node sends the message's acknowledgement (ACK, PUBREC): what the callback has made
  // durable when it returns is durable before the publisher learns of the delivery (the
  // bridge's store, docs/bridge.md). It must not call the node (it would deadlock) and should
  // be quick: the loop waits for it. One callback; an empty function removes it.
  void on_message_before_ack(std::function<void(const Message&)> callback);
  // Deferred acknowledgement (NodeOptions::engine.deferred_ack, docs/api.md): answers a message
  // received with Message::ack_token. accept sends its ACK/PUBREC now; refuse sends nothing, so
  // its publisher retransmits and, if no retransmission is ever accepted, reports this node as
  // failed. Call them after the message is safe (e.g. stored), from any thread, callbacks
  // included (not from on_message_before_ack, which holds the node's lock).
  // Errors: see Engine::accept (invalid_argument, expired), closed.
  Result<void> accept(AckToken token);
  Result<void> refuse(AckToken token);

  // Called for peers joining, leaving, restarting (v2 discovery), a clock that disagrees
  // (clock_skew) and datagrams that fail authentication (auth_failed, rate-limited per host).
  void on_peer(std::function<void(const PeerEvent&)> callback);

  // The original's gen_signature/authenticate: a MAC of `message` for other group members.
  // v2: HMAC-SHA256 under the application-signature key of the key schedule, which never MACs
  // a datagram (so no signature can be turned into a packet, docs/security.md H1).
  // v1: the original's keyed hash SHA-256(message || hmac_key) under the wire MAC key, kept for
  // the original's devices; it IS the v1 packet MAC: never sign strings an outsider chooses.
  Digest gen_signature(std::string_view message) const;
  // Constant-time check of a signature from gen_signature. False for a wrong length.
  bool authenticate(Bytes signature, std::string_view message) const;

  // Key rotation without a flag day (wire v2, master-secret keys; docs/security.md §4): the
  // node derives the keys of `key_epoch` from `master_secret` and its group id, accepts that
  // epoch at once, sends under it after overlap / 2 (a new session) and refuses its current
  // epoch once `overlap` has passed (old_key_epoch). gen_signature/authenticate move to the
  // new epoch's application-signature key at once. Tell every node of the group within
  // overlap / 2 of each other (receivers or senders first, either works).
  // Errors: invalid_argument (wire v1, which has no key epochs; a node created with raw keys,
  // which has no master secret; key_epoch other than the current + 1; a rotation still waiting
  // to switch; overlap not positive), crypto_failure (derivation), closed.
  Result<void> rotate_keys(const Key& master_secret, std::uint32_t key_epoch,
                           Duration overlap = std::chrono::seconds{300});
  // The key epoch the node sends under.
  std::uint32_t key_epoch() const;

  // Per-channel keys (v2; docs/engine.md §20, docs/security.md §5): from now on, channels
  // matching key.pattern are sealed with the keys derived from key.secret (this node's group
  // id, key.key_epoch) and carry keyed channel ids; only nodes holding the same key read, send
  // or name them. No restart: own subscriptions it covers are re-announced under it. The same
  // pattern again replaces its key. Errors: invalid_argument (wire v1, a bad pattern),
  // too_many_channels (kMaxChannelKeys held), crypto_failure, closed.
  Result<void> add_channel_key(const ChannelKeySpec& key);
  // Errors: not_subscribed (no key has that pattern), closed.
  Result<void> remove_channel_key(std::string_view pattern);
  // The patterns of the channel keys held.
  std::vector<std::string> channel_key_patterns() const;

  // Runs the loop on a background thread. Errors: invalid_argument (already started), closed.
  Result<void> start();
  // Runs the loop once from the caller's thread: waits up to `timeout` for a datagram or the
  // engine's next deadline, then handles what arrived, runs timers, sends, dispatches events.
  // Errors: invalid_argument (a background thread runs the loop), closed.
  Result<void> run_once(Duration timeout);
  // For the caller's own poll/epoll/Asio loop: a file descriptor that becomes readable when
  // run_once has work (it is an epoll fd over the sockets and the wakeup eventfd), and how long
  // until the node's next timer (nullopt: none; zero: due now), exact to the microsecond. After
  // each run_once, wait for fd() or next_timeout(), whichever comes first, then run_once(0).
  // poll(2) and epoll_wait(2) take milliseconds: round up (ceil), since a turn made before the
  // deadline finds nothing due and the loop would spin until it passes. A call from another
  // thread that moves the next timer earlier (a QoS 1/2 publish, a subscription) makes fd()
  // readable, so a loop waiting on the old timeout is woken and reads next_timeout() again.
  int fd() const noexcept;
  std::optional<Duration> next_timeout() const;

  // Stops the loop, announces unsubscription, ends every pending publish (reason closed, unless
  // it completes within `linger`) and returns the reports of those not fully acknowledged.
  // `linger` also lets publishes already reported go on serving subscribers that answered late
  // (a fresh node's first publishes, docs/engine.md §3): close returns once none is left or
  // `linger` has passed; a late recipient that had not acknowledged by then is counted in
  // stats().engine.late_recipients_failed.
  // Idempotent; later calls return an empty list.
  std::vector<Delivery> close(Duration linger = Duration::zero());

  NodeStats stats() const;
  std::uint32_t session_id() const;
  // v2: the session to continue after a restart (Engine::session_state, NodeOptions::engine.
  // resume): keep it durable with next_sequence reserved ahead of what the node may still send.
  SessionResume session_state() const;
  std::size_t pending_count() const;
  // The unicast socket's bound address (port resolved), and the group destination.
  Endpoint local_endpoint() const;
  Endpoint group() const;
  WireVersion wire() const;

 private:
  explicit Node(std::shared_ptr<detail::NodeCore> core);
  std::shared_ptr<detail::NodeCore> core_;
};

}  // namespace nomq
