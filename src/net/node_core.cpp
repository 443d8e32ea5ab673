// Node runtime composition. docs/api.md explains why the loop is hand-written
// (recvmmsg/sendmmsg batching, which standalone Asio does not offer).
#include "net/node_core.hpp"

#include <net/if.h>

#include <cerrno>
#include <cstring>

#include "net/clock.hpp"
#include "net/log.hpp"
#include "nomq/endpoint_io.hpp"

namespace nomq::detail {
namespace {

// Bounds one socket's share of a loop turn.
constexpr int kMaxBatchesPerWakeup = 16;

// Where the group socket joins and the unicast socket binds, from the options.
Result<GroupSetup> group_setup_of(const NetworkOptions& network) {
  GroupSetup setup;
  setup.group = network.group;
  if (!network.interface_name.empty()) {
    setup.interface_index = ::if_nametoindex(network.interface_name.c_str());
    if (setup.interface_index == 0) {
      Error e{Errc::io_error, "interface '", network.interface_name, "': ", std::strerror(errno)};
      log().error("{}", e.message());
      return e;
    }
  } else if (network.group.family == Endpoint::Family::ipv6) {
    setup.interface_index = network.group.scope_id;
  }
  return setup;
}

std::optional<Instant> earliest(std::optional<Instant> a, std::optional<Instant> b) noexcept {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

}  // namespace

Result<std::shared_ptr<NodeCore>> NodeCore::create(const NodeOptions& options) {
  auto setup = group_setup_of(options.network);
  if (!setup) return setup.error();
  Endpoint unicast_bind;
  if (options.network.unicast_bind) unicast_bind = *options.network.unicast_bind;
  if (!unicast_bind.valid()) unicast_bind.family = options.network.group.family;
  auto core = std::make_shared<NodeCore>(options, *setup, unicast_bind);
  WireKeys keys;
  const WireVersion wire = options.engine.wire;
  const bool derived =
      options.master_secret
          ? derive_wire_keys(backend_hkdf(), *options.master_secret,
                             KeyContext{.group_id = options.group_id,
                                        .key_epoch = options.key_epoch, .wire = wire},
                             keys)
          : raw_wire_keys(backend_hkdf(), options.encryption_key, options.hmac_key, wire, keys);
  if (!derived) {
    wipe_secret(keys.bytes());
    return Error{Errc::crypto_failure, "cannot derive the keys (HKDF-SHA256 failed",
                 options.group_id.size() > kMaxGroupId ? ", group_id longer than 64 bytes" : "",
                 ")"};
  }
  core->derived_keys = options.master_secret.has_value();
  auto crypto = make_crypto(keys.encryption, keys.mac);
  const bool stored = core->signature_key.store(keys.app_signature);
  wipe_secret(keys.bytes());
  if (!crypto) return crypto.error();
  if (!stored) return Error{Errc::crypto_failure, "cannot map a page for the signature key"};
  core->crypto = std::move(*crypto);
  if (auto r = core->loop.open(); !r) return r.error();

  std::lock_guard lk(core->m);
  if (auto r = core->sockets.open(core->loop.fd()); !r) return r.error();
  const Instant now = monotonic_now();
  EngineConfig engine_config = options.engine;
  engine_config.key_epoch = options.key_epoch;
  auto engine = Engine::create(engine_config, *core->crypto, *core->crypto, now);
  if (!engine) return engine.error();
  core->engine = std::make_unique<Engine>(std::move(engine).value());
  for (const ChannelKeySpec& k : options.channel_keys) {
    if (auto r = core->add_channel_key(k, now); !r) {
      return Error{r.error().code(), "channel key '", k.pattern, "': ", r.error().message()};
    }
  }
  log().info("node {:08x} on {} (group {}, wire {}, {} keys)", core->engine->session_id(),
             to_string(core->sockets.local()), to_string(core->sockets.group()),
             to_string(options.engine.wire), options.master_secret ? "derived" : "raw");
  if (options.engine.wire == WireVersion::v1) {
    // Said on every start (docs/security.md): v1 is the original's weaker construction.
    log().warn("node {:08x} speaks wire v1, the original's format: a keyed SHA-256 instead of "
               "HMAC, replay protection for PUBLISH only, and gen_signature is the packet MAC "
               "(docs/security.md); use wire v2 unless original devices must be reached",
               core->engine->session_id());
  }
  core->flush(now);
  return core;
}

Result<void> NodeCore::add_channel_key(const ChannelKeySpec& key, Instant now) {
  if (options.engine.wire != WireVersion::v2) {
    return Error{Errc::invalid_argument, "channel keys need wire v2 (v1 channel ids are unkeyed)"};
  }
  auto set = make_channel_crypto(
      key.secret,
      KeyContext{.group_id = options.group_id, .key_epoch = key.key_epoch, .wire = WireVersion::v2});
  if (!set) return set.error();
  if (auto r = engine->add_channel_key(key.pattern, **set, now); !r) return r.error();
  std::erase_if(channel_keys, [&](const auto& k) { return !engine->holds_channel_key(*k.second); });
  channel_keys.emplace_back(key.pattern, std::move(*set));
  return {};
}

std::optional<Instant> NodeCore::next_wake() const {
  return earliest(engine->next_deadline(), sockets.deadline());
}

void NodeCore::kick(Instant now) {
  // Within a Node::Batch the datagrams wait for a full sendmmsg() batch. A publish queues at
  // least one datagram, so kBatch publishes fill one (the outbox holds max_queued_messages
  // QoS 0 copies, 64 by default, and flush() sends any number in batches of kBatch).
  // The loop is not woken meanwhile: its timeout may be stale only until the batch ends.
  if (batches_open > 0 && ++batched_publishes < BatchIo::kBatch) return;
  send_and_wake(now);
}

void NodeCore::end_batch() {
  if (--batches_open > 0 || closed) return;
  send_and_wake(monotonic_now());
}

void NodeCore::send_and_wake(Instant now) {
  batched_publishes = 0;
  flush(now);
  // A publish can end at once (no subscriber to wait for): its handle must not wait for the
  // loop's next turn. Messages and peer events come only from datagrams and timers, so
  // api_dispatch_ stays empty in practice; should it not, the loop runs its callbacks.
  if (dispatcher.drain(*engine, api_dispatch_, counters)) cv.notify_all();
  if (!api_dispatch_.messages.empty() || !api_dispatch_.peers.empty()) {
    loop.wake();
    return;
  }
  if (loop.waiting()) loop.wake_if_earlier(next_wake());
}

int NodeCore::timeout_ms(Duration limit, Instant now) {
  Instant wake_at = now + limit;
  if (auto d = next_wake()) wake_at = std::min(wake_at, *d);
  const Duration wait = wake_at - now;
  if (wait <= Duration::zero()) return 0;
  loop.will_wait(wake_at);
  // Round up: waking a little late is harmless, waking early spins.
  const auto ms = (wait.count() + 999) / 1000;
  return static_cast<int>(std::min<std::int64_t>(ms, 60'000));
}

void NodeCore::handle_ready(EventLoop::Ready ready, Dispatch& dispatch) {
  const Instant now = monotonic_now();
  // Replies first: a subscriber's ACK (to our socket) was sent before its UNSUBSCRIBE (to
  // the group); handled the other way round, the ACK would find its recipient gone.
  for (const int fd : {ready.unicast ? sockets.unicast_fd() : -1, ready.group ? sockets.group_fd() : -1}) {
    if (fd < 0) continue;
    // Events are drained after every batch: the engine's inbox holds max_inbox messages, and
    // reading up to kMaxBatchesPerWakeup batches before draining overflowed it under bursts.
    for (int batch = 0; batch < kMaxBatchesPerWakeup; ++batch) {
      const std::size_t n = io.receive_batch(fd, *engine, sockets, now, counters);
      if (n > 0 && dispatcher.drain(*engine, dispatch, counters)) cv.notify_all();
      if (n < BatchIo::kBatch) break;
    }
  }
  if (sockets.maybe_reinit(now, loop.fd())) ++counters.socket_reinits;
  if (auto d = engine->next_deadline(); d && *d <= now) engine->handle_timeout(now);
  flush(now);
  if (dispatcher.drain(*engine, dispatch, counters)) cv.notify_all();
}

Result<void> NodeCore::turn(Duration limit) {
  int wait_ms = 0;
  {
    std::lock_guard lk(m);
    if (closed) return closed_error();
    wait_ms = timeout_ms(limit, monotonic_now());
  }
  const auto ready = loop.wait(wait_ms, sockets.unicast_fd(), sockets.group_fd());
  if (!ready) return ready.error();
  Dispatch& dispatch = turn_dispatch_;
  dispatch.clear();
  {
    std::lock_guard lk(m);
    loop.woke();
    if (closed) return closed_error();
    std::swap(dispatch, api_dispatch_);  // normally both empty: nothing allocated
    handle_ready(*ready, dispatch);
    // Until the next turn, the caller waits on fd() and next_timeout() as they are now (a
    // run_once() caller's loop, Asio), or this thread turns again at once: an API call that
    // moves the next deadline earlier must make fd() readable (wake_if_earlier).
    loop.will_wait(next_wake().value_or(Instant::max()));
  }
  dispatcher.run_callbacks(dispatch, m);
  dispatch.clear();  // no copies held until the next turn
  return {};
}

std::vector<Delivery> NodeCore::close(Duration linger) {
  if (linger > Duration::zero()) {
    std::unique_lock lk(m);
    wait_until(lk, [&] { return closed || (engine->pending_count() == 0 && engine->tail_count() == 0); },
               std::chrono::steady_clock::now() + linger);
  }
  // Stop the background thread first, so that nobody else touches the engine.
  loop.stop();
  std::lock_guard turn_lock(loop.turn_mutex());
  std::lock_guard lk(m);
  if (closed) return {};
  const Instant now = monotonic_now();
  engine->close(now);
  flush(now);  // the unsubscribe announcements
  std::vector<Delivery> undelivered = dispatcher.close(*engine, counters);
  sockets.close();
  closed = true;
  cv.notify_all();
  if (!undelivered.empty()) log().warn("closed with {} message(s) not fully delivered", undelivered.size());
  return undelivered;
}

}  // namespace nomq::detail
