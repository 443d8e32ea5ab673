// The public Node API (include/nomq/node.hpp): each call takes the node's mutex, calls the
// engine and hands over to the runtime units (node_core.hpp).
#include "nomq/node.hpp"

#include <algorithm>
#include <mutex>

#include "net/clock.hpp"
#include "net/log.hpp"
#include "net/node_core.hpp"
#include "wire/app_signature.hpp"

namespace nomq {

using detail::NodeCore;

// ---------------------------------------------------------------------------------------------
// PublishHandle

bool PublishHandle::ready() const {
  if (!core_) return false;
  std::lock_guard lk(core_->m);
  return state_->delivery.has_value();
}

std::optional<Delivery> PublishHandle::wait_for(Duration timeout) const {
  if (!core_) return std::nullopt;
  std::unique_lock lk(core_->m);
  core_->wait_until(lk, [&] { return state_->delivery.has_value(); },
                    std::chrono::steady_clock::now() + timeout);
  std::optional<Delivery> d = state_->delivery;
  if (d) d->message_id = id_;  // a QoS 0 state is shared by publishes on one channel
  return d;
}

Delivery PublishHandle::wait() const {
  for (;;) {
    if (auto d = wait_for(std::chrono::hours{1})) return *d;
  }
}

// ---------------------------------------------------------------------------------------------
// Listener

Listener::Listener(std::shared_ptr<detail::NodeCore> core, std::shared_ptr<detail::ListenerQueue> q)
    : core_(std::move(core)), queue_(std::move(q)) {}
Listener::~Listener() = default;
Listener::Listener(Listener&&) noexcept = default;
Listener& Listener::operator=(Listener&&) noexcept = default;

std::optional<Message> Listener::next(Duration timeout) {
  if (!core_) return std::nullopt;
  detail::ListenerQueue& q = *queue_;
  if (auto m = q.pop(); m || timeout <= Duration::zero()) return m;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (core_->loop.started()) {
    // The loop's thread fills the queue: wait on the queue alone, not on the node's mutex.
    std::unique_lock lk(q.mutex);
    q.ready.wait_until(lk, deadline, [&] { return !q.queue.empty() || q.closed; });
  } else {
    // Nobody else may turn the loop: drive it while waiting.
    std::unique_lock lk(core_->m);
    core_->wait_until(lk, [&] {
      std::lock_guard ql(q.mutex);
      return !q.queue.empty();
    }, deadline);
  }
  return q.pop();
}

std::size_t Listener::size() const {
  if (!core_) return 0;
  std::lock_guard lk(queue_->mutex);
  return queue_->queue.size();
}

// ---------------------------------------------------------------------------------------------
// Node

Node::Node(std::shared_ptr<NodeCore> core) : core_(std::move(core)) {}

Node::~Node() {
  if (core_) close();
}

Result<std::unique_ptr<Node>> Node::create(const NodeOptions& options) {
  if (!options.network.group.valid()) {
    return Error{Errc::invalid_argument, "NetworkOptions::group has no address family"};
  }
  auto core = NodeCore::create(options);
  if (!core) return core.error();
  return std::unique_ptr<Node>{new Node(std::move(*core))};
}

Result<void> Node::subscribe(std::string_view channel, std::uint8_t priority) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const Instant now = detail::monotonic_now();
  auto r = core_->engine->subscribe(channel, priority, now);
  if (r) detail::log().debug("subscribed to '{}' (priority {})", channel, priority);
  core_->kick(now);
  return r;
}

Result<void> Node::unsubscribe(std::string_view channel) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const Instant now = detail::monotonic_now();
  auto r = core_->engine->unsubscribe(channel, now);
  core_->kick(now);
  return r;
}

Result<void> Node::withdraw(std::string_view channel) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const Instant now = detail::monotonic_now();
  auto r = core_->engine->withdraw(channel, now);
  if (r) detail::log().debug("withdrew '{}' (UNSUBSCRIBE to the group)", channel);
  core_->kick(now);
  return r;
}

Result<PublishHandle> Node::publish(std::string_view channel, std::string_view message,
                                    const PublishOptions& options) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const Instant now = detail::monotonic_now();
  auto id = core_->engine->publish(channel, as_bytes(message), options, now);
  if (!id) {
    detail::log().debug("publish on '{}' refused: {}: {}", channel, id.error().name(),
                        id.error().message());
    return id.error();
  }
  auto state = options.qos == Qos::at_most_once ? core_->dispatcher.qos0_state(channel)
                                                : core_->dispatcher.track(*id);
  detail::log().debug("published message {} on '{}' (qos {}, {} bytes)", *id, channel,
                      static_cast<int>(options.qos), message.size());
  core_->kick(now);
  return PublishHandle{core_, std::move(state), *id};
}

Result<void> Node::accept(AckToken token) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const Instant now = detail::monotonic_now();
  auto r = core_->engine->accept(token, now);
  core_->kick(now);
  return r;
}

Result<void> Node::refuse(AckToken token) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const Instant now = detail::monotonic_now();
  auto r = core_->engine->refuse(token, now);
  if (r) detail::log().info("refused message (ack token {:08x}): not acknowledged", token);
  return r;
}

Node::Batch Node::batch() {
  std::lock_guard lk(core_->m);
  ++core_->batches_open;
  return Batch{core_};
}

Node::Batch::Batch(std::shared_ptr<detail::NodeCore> core) : core_(std::move(core)) {}
Node::Batch::~Batch() { end(); }
Node::Batch::Batch(Batch&& other) noexcept : core_(std::move(other.core_)) {}
Node::Batch& Node::Batch::operator=(Batch&& other) noexcept {
  if (this != &other) {
    end();
    core_ = std::move(other.core_);
  }
  return *this;
}

void Node::Batch::end() noexcept {
  if (!core_) return;
  std::lock_guard lk(core_->m);
  core_->end_batch();
  core_.reset();
}

Listener Node::listen() {
  auto q = std::make_shared<detail::ListenerQueue>();
  q->capacity = std::max<std::size_t>(1, core_->options.network.listener_capacity);
  std::lock_guard lk(core_->m);
  q->closed = core_->closed;  // no reader waits yet: q's own mutex is not needed
  core_->dispatcher.add_listener(q);
  return Listener{core_, std::move(q)};
}

void Node::on_message(std::function<void(const Message&)> callback) {
  std::lock_guard lk(core_->m);
  core_->dispatcher.set_on_message(std::move(callback));
}

void Node::on_message_before_ack(std::function<void(const Message&)> callback) {
  std::lock_guard lk(core_->m);
  core_->dispatcher.set_before_ack(std::move(callback));
}

void Node::on_peer(std::function<void(const PeerEvent&)> callback) {
  std::lock_guard lk(core_->m);
  core_->dispatcher.set_on_peer(std::move(callback));
}

Result<void> Node::rotate_keys(const Key& master_secret, std::uint32_t key_epoch, Duration overlap) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const WireVersion wire = core_->options.engine.wire;
  if (wire != WireVersion::v2) {
    return Error{Errc::invalid_argument,
                 "key rotation needs wire v2 (v1 has no key epochs: change v1 keys on every node "
                 "together)"};
  }
  if (!core_->derived_keys) {
    return Error{Errc::invalid_argument,
                 "key rotation needs a master secret: this node was created with raw "
                 "encryption_key/hmac_key (write a master-secret config with nomq keygen)"};
  }
  if (overlap <= Duration::zero()) {
    return Error{Errc::invalid_argument, "key overlap must be positive"};
  }
  if (key_epoch != core_->engine->key_epoch() + std::uint64_t{1}) {
    return Error{Errc::invalid_argument, "key epoch ", key_epoch, ": the node is at epoch ",
                 core_->engine->key_epoch(), ", the next must be ",
                 core_->engine->key_epoch() + std::uint64_t{1}};
  }
  WireKeys keys;
  const bool derived = derive_wire_keys(
      backend_hkdf(), master_secret,
      KeyContext{.group_id = core_->options.group_id, .key_epoch = key_epoch, .wire = wire}, keys);
  if (!derived) {
    wipe_secret(keys.bytes());
    return Error{Errc::crypto_failure, "cannot derive the keys of epoch ", key_epoch};
  }
  auto crypto = make_crypto(keys.encryption, keys.mac);
  if (!crypto) {
    wipe_secret(keys.bytes());
    return crypto.error();
  }
  const Instant now = detail::monotonic_now();
  const KeyRotation when{.switch_after = overlap / 2, .overlap = overlap};
  if (auto r = core_->engine->rotate_keys(**crypto, key_epoch, when, now); !r) {
    wipe_secret(keys.bytes());
    return r.error();
  }
  const bool stored = core_->signature_key.store(keys.app_signature);
  wipe_secret(keys.bytes());
  // The sets the engine let go of (an epoch retired) are freed with their keys.
  std::erase_if(core_->rotated_keys,
                [&](const std::unique_ptr<CryptoRng>& k) { return !core_->engine->holds_keys(*k); });
  core_->rotated_keys.push_back(std::move(*crypto));
  detail::log().info("node {:08x}: key epoch {} accepted; sending switches to it in {} s, epoch {} "
                     "refused after {} s",
                     core_->engine->session_id(), key_epoch,
                     std::chrono::duration_cast<std::chrono::seconds>(when.switch_after).count(),
                     key_epoch - 1,
                     std::chrono::duration_cast<std::chrono::seconds>(when.overlap).count());
  core_->kick(now);
  if (!stored) return Error{Errc::crypto_failure, "cannot store the signature key"};
  return {};
}

Result<void> Node::add_channel_key(const ChannelKeySpec& key) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const Instant now = detail::monotonic_now();
  if (auto r = core_->add_channel_key(key, now); !r) return r.error();
  detail::log().info("node {:08x}: channel key for '{}' (key epoch {}) in use",
                     core_->engine->session_id(), key.pattern, key.key_epoch);
  core_->kick(now);
  return {};
}

Result<void> Node::remove_channel_key(std::string_view pattern) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const Instant now = detail::monotonic_now();
  if (auto r = core_->engine->remove_channel_key(pattern, now); !r) return r.error();
  std::erase_if(core_->channel_keys,
                [&](const auto& k) { return !core_->engine->holds_channel_key(*k.second); });
  core_->kick(now);
  return {};
}

std::vector<std::string> Node::channel_key_patterns() const {
  std::lock_guard lk(core_->m);
  std::vector<std::string> out;
  for (const auto& k : core_->channel_keys) out.push_back(k.first);
  return out;
}

std::uint32_t Node::key_epoch() const {
  std::lock_guard lk(core_->m);
  return core_->engine->key_epoch();
}

Digest Node::gen_signature(std::string_view message) const {
  std::lock_guard lk(core_->m);  // the crypto object keeps contexts: one user at a time
  return detail::wire::app_signature(core_->options.engine.wire, *core_->crypto,
                                     &backend_hmac_sha256, core_->signature_key.key(),
                                     as_bytes(message));
}

bool Node::authenticate(Bytes signature, std::string_view message) const {
  std::lock_guard lk(core_->m);
  return detail::wire::check_app_signature(core_->options.engine.wire, *core_->crypto,
                                           &backend_hmac_sha256, core_->signature_key.key(),
                                           signature,
                                           as_bytes(message));
}

Result<void> Node::start() {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  NodeCore* core = core_.get();
  if (!core->loop.start([core] { return core->turn(std::chrono::seconds{60}).ok(); })) {
    return Error{Errc::invalid_argument, "start(): the node's loop already runs on its thread"};
  }
  return {};
}

Result<void> Node::run_once(Duration timeout) {
  if (core_->loop.started()) {
    return Error{Errc::invalid_argument,
                 "run_once(): start() runs the loop on the node's thread; do not call both"};
  }
  std::lock_guard loop(core_->loop.turn_mutex());
  return core_->turn(timeout);
}

int Node::fd() const noexcept { return core_->loop.fd(); }

std::optional<Duration> Node::next_timeout() const {
  std::lock_guard lk(core_->m);
  if (core_->closed) return std::nullopt;
  const auto next = core_->next_wake();
  if (!next) return std::nullopt;
  return std::max(Duration::zero(), *next - detail::monotonic_now());
}

std::vector<Delivery> Node::close(Duration linger) { return core_->close(linger); }

NodeStats Node::stats() const {
  std::lock_guard lk(core_->m);
  NodeStats s = core_->counters;
  s.engine = core_->engine->stats();
  s.inbound_qos2_open = core_->engine->inbound_qos2_open();
  const auto auth = core_->engine->auth_failures();
  s.auth_failures.assign(auth.begin(), auth.end());
  return s;
}

std::uint32_t Node::session_id() const {
  std::lock_guard lk(core_->m);
  return core_->engine->session_id();
}

SessionResume Node::session_state() const {
  std::lock_guard lk(core_->m);
  return core_->engine->session_state();
}

std::size_t Node::pending_count() const {
  std::lock_guard lk(core_->m);
  return core_->engine->pending_count();
}

Endpoint Node::local_endpoint() const {
  std::lock_guard lk(core_->m);
  return core_->sockets.local();
}

Endpoint Node::group() const {
  std::lock_guard lk(core_->m);
  return core_->sockets.group();
}

WireVersion Node::wire() const { return core_->options.engine.wire; }

}  // namespace nomq
