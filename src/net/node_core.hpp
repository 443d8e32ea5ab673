// What a Node shares with its PublishHandles and Listeners: the engine behind one mutex, and
// the runtime units around it (sockets, batched I/O, dispatch, the loop). This file composes
// them: a loop turn, the hand-off after an API call, waiting for a result, closing.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "net/batch_io.hpp"
#include "net/dispatch.hpp"
#include "net/event_loop.hpp"
#include "net/secret_page.hpp"
#include "net/socket_set.hpp"
#include "nomq/engine.hpp"
#include "nomq/node.hpp"
#include "nomq/crypto_backend.hpp"

namespace nomq::detail {

// What every call on a closed node returns.
inline Error closed_error() { return Error{Errc::closed, "the node is closed (close() was called)"}; }

struct NodeCore {
  // `options` keeps no key: they go into the crypto backend and signature_key at create().
  NodeCore(const NodeOptions& opts, GroupSetup setup, Endpoint unicast_bind)
      : options(without_keys(opts)), sockets(opts.network, setup, unicast_bind) {}
  static NodeOptions without_keys(NodeOptions o) {
    o.encryption_key = Key{};
    o.hmac_key = Key{};
    o.master_secret.reset();
    o.channel_keys.clear();
    return o;
  }

  // Opens the loop, the sockets and the engine; the first announcements leave.
  static Result<std::shared_ptr<NodeCore>> create(const NodeOptions& options);

  const NodeOptions options;
  std::unique_ptr<CryptoRng> crypto;  // the node's Crypto and Rng (the first epoch's keys)
  // The key sets of later epochs given to the engine (Node::rotate_keys); freed once the
  // engine no longer holds them.
  std::vector<std::unique_ptr<CryptoRng>> rotated_keys;
  // The channel key sets given to the engine (pattern, set); a replaced set is freed once the
  // engine no longer holds it. Declared before the engine, which is destroyed first.
  std::vector<std::pair<std::string, std::unique_ptr<CryptoRng>>> channel_keys;
  // Node::add_channel_key with m held (also create()).
  Result<void> add_channel_key(const ChannelKeySpec& key, Instant now);
  bool derived_keys = false;  // created from a master secret (rotation possible)
  // The application-signature key (v2 gen_signature/authenticate), in a page of its own.
  SecretPage signature_key;
  std::unique_ptr<Engine> engine;

  mutable std::mutex m;        // guards everything below but the loop's own fields
  std::condition_variable cv;  // deliveries ready, messages queued, closed
  SocketSet sockets;
  BatchIo io;
  Dispatcher dispatcher;
  EventLoop loop;
  NodeStats counters;
  bool closed = false;

  // Node::Batch: live batches, and the publishes made since the last flush while one lived.
  int batches_open = 0;
  std::size_t batched_publishes = 0;

  // --- with m held
  void flush(Instant now) { io.flush(*engine, sockets, now, counters); }
  // The earliest instant a loop turn has work without a datagram: an engine timer, or the
  // sockets' re-initialisation.
  std::optional<Instant> next_wake() const;
  // After an engine call from an API function: sends what it queued, completes the handles
  // its reports answer, and wakes the loop only if it now has an earlier deadline.
  void kick(Instant now);
  void end_batch();

  // --- the loop (one thread at a time: loop.turn_mutex())
  // Waits up to `limit` for datagrams or the next deadline, then handles them.
  Result<void> turn(Duration limit);

  // With `lk` holding m: waits until `ready()` (called with m held), close or the deadline;
  // drives the loop itself when no thread does.
  template <class Pred>
  void wait_until(std::unique_lock<std::mutex>& lk, Pred ready,
                  std::chrono::steady_clock::time_point deadline);

  // Node::close: waits up to `linger` for pending publishes, stops the thread, reports.
  std::vector<Delivery> close(Duration linger);

 private:
  void send_and_wake(Instant now);
  int timeout_ms(Duration limit, Instant now);
  void handle_ready(EventLoop::Ready ready, Dispatch& dispatch);

  Dispatch turn_dispatch_;  // turn()'s; its vectors keep their capacity across turns
  // Callbacks owed by events an API call produced (m held); turn() runs them.
  Dispatch api_dispatch_;
};

template <class Pred>
void NodeCore::wait_until(std::unique_lock<std::mutex>& lk, Pred ready,
                          std::chrono::steady_clock::time_point deadline) {
  while (!ready() && !closed) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return;
    if (loop.started()) {
      cv.wait_until(lk, deadline);
      continue;
    }
    std::unique_lock turn_lock(loop.turn_mutex(), std::try_to_lock);
    if (!turn_lock.owns_lock()) {
      // Another caller drives the loop; it notifies when something happens.
      cv.wait_until(lk, std::min(deadline, now + std::chrono::milliseconds{20}));
      continue;
    }
    lk.unlock();
    const auto left = std::chrono::duration_cast<Duration>(deadline - now);
    [[maybe_unused]] auto r = turn(std::max(left, Duration{1000}));
    turn_lock.unlock();
    lk.lock();
  }
}

}  // namespace nomq::detail
