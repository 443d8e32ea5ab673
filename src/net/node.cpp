// The Node: sockets, an epoll loop and the engine behind one mutex. docs/api.md explains why
// the loop is hand-written (recvmmsg/sendmmsg batching, which standalone Asio does not offer).
#include "nomq/node.hpp"

#include <net/if.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "net/log.hpp"
#include "net/udp.hpp"
#include "nomq/endpoint_io.hpp"
#include "nomq/openssl_crypto.hpp"
#include "nomq/wire.hpp"

namespace nomq {
namespace detail {

namespace {

constexpr std::size_t kBatch = 32;           // datagrams per recvmmsg/sendmmsg
constexpr int kMaxBatchesPerWakeup = 16;     // bounds one socket's share of a loop turn

Time realtime_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return Time{static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000};
}

Delivery to_delivery(const DeliveryReport& r) {
  Delivery d;
  d.message_id = r.message_id;
  d.channel = std::string{r.channel};
  d.qos = r.qos;
  d.reason = r.reason;
  d.recipients.assign(r.recipients.begin(), r.recipients.end());
  return d;
}

Message to_message(const MessageEvent& e) {
  Message m;
  m.channel = std::string{e.channel};
  m.message = std::string{as_string_view(e.message)};
  m.qos = e.qos;
  m.retain = e.retain;
  m.priority = e.priority;
  m.from = e.from;
  m.sender_session = e.sender_session;
  m.message_id = e.message_id;
  return m;
}

std::string_view peer_kind(PeerEvent::Kind k) {
  switch (k) {
    case PeerEvent::Kind::joined: return "joined";
    case PeerEvent::Kind::left: return "left";
    case PeerEvent::Kind::restarted: return "restarted";
  }
  return "?";
}

Error closed_error() { return Error{Errc::closed, "the node is closed (close() was called)"}; }

}  // namespace

struct DeliveryState {
  std::optional<Delivery> delivery;  // guarded by NodeCore::m
};

struct ListenerQueue {
  std::deque<Message> queue;  // guarded by NodeCore::m
  std::size_t capacity = 0;
};

struct NodeCore {
  NodeOptions options;
  std::unique_ptr<OpenSslCrypto> crypto;
  std::unique_ptr<Engine> engine;
  GroupSetup group_setup;
  Endpoint unicast_bind;   // what the unicast socket binds (port fixed after the first bind)
  Endpoint unicast_local;  // what it got

  Fd epoll;
  Fd wake;  // eventfd: publish()/close() from other threads interrupt epoll_wait
  Fd group_sock;
  Fd unicast_sock;

  mutable std::mutex m;
  std::condition_variable cv;  // deliveries ready, messages queued, closed
  std::unordered_map<MessageId, std::shared_ptr<DeliveryState>> in_flight;
  std::vector<std::weak_ptr<ListenerQueue>> listeners;
  std::function<void(const Message&)> on_message;
  std::function<void(const PeerEvent&)> on_peer;
  NodeStats counters;
  bool closed = false;

  // Socket health: broken sockets are re-created at reinit_at, the delay doubling per failure.
  bool sockets_broken = false;
  Time reinit_at{0};
  Duration reinit_delay{0};

  // Node::Batch: live batches, and the publishes made since the last flush while one lived.
  int batches_open = 0;
  std::size_t batched_publishes = 0;

  std::mutex loop_mutex;  // one thread runs the loop at a time
  std::thread thread;
  std::atomic<bool> started{false};
  // True while a loop turn is blocked in (or about to enter) epoll_wait with a timeout computed
  // under m. Set and cleared with m held, and kick() reads it with m held, so a change made
  // after the timeout was computed always sees it set and wakes the loop (no lost wakeup).
  std::atomic<bool> loop_waiting{false};
  std::atomic<bool> stopping{false};

  // Buffers, allocated once.
  std::vector<std::array<std::uint8_t, wire::kMaxDatagram>> rx_buf{kBatch};
  std::array<mmsghdr, kBatch> rx_msgs{};
  std::array<iovec, kBatch> rx_iov{};
  std::array<SockAddr, kBatch> rx_addr{};
  bool rx_ready = false;  // rx_msgs point at rx_iov/rx_addr (set on first use)
  std::vector<std::array<std::uint8_t, wire::kMaxDatagram>> tx_buf{kBatch};
  std::array<mmsghdr, kBatch> tx_msgs{};
  std::array<iovec, kBatch> tx_iov{};
  std::array<SockAddr, kBatch> tx_addr{};

  // --- sockets (m held)
  Result<void> open_sockets() {
    Error err{Errc::io_error};
    Fd g;
    if (options.network.listen_group) {
      g = open_group_socket(group_setup, err);
      if (!g.valid()) {
        log().error("{}", err.message());
        return err;
      }
      if (group_setup.group.port == 0) {
        // Group port 0: the kernel picked one (tests, the demo); later nodes are given it.
        group_setup.group.port = local_address(g.get()).port;
        options.network.group.port = group_setup.group.port;
      }
    }
    Fd u = open_unicast_socket(group_setup, unicast_bind, err);
    if (!u.valid()) {
      log().error("{}", err.message());
      return err;
    }
    unicast_local = local_address(u.get());
    unicast_bind.port = unicast_local.port;  // keep this port across re-initialisations
    for (int fd : {u.get(), g.get()}) {
      if (fd < 0) continue;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        Error e{Errc::io_error, "epoll_ctl: ", std::strerror(errno)};
        log().error("{}", e.message());
        return e;
      }
    }
    unicast_sock = std::move(u);
    group_sock = std::move(g);
    return {};
  }

  void close_sockets() {
    // Closing a descriptor removes it from the epoll set.
    unicast_sock.reset();
    group_sock.reset();
  }

  void mark_broken(Time now, int err) {
    if (sockets_broken) return;
    sockets_broken = true;
    reinit_delay = options.network.reinit_initial;
    reinit_at = now;  // first attempt at once; the delay applies if it fails or fails again
    log().warn("socket failed ({}): re-initialising; pending QoS messages are kept",
                  std::strerror(err));
  }

  void maybe_reinit(Time now) {
    if (!sockets_broken || now < reinit_at) return;
    close_sockets();
    if (open_sockets().ok()) {
      sockets_broken = false;
      ++counters.socket_reinits;
      log().info("sockets re-initialised on {}", to_string(unicast_local));
      // If the interface is still unusable the next send fails and we come back here later.
      reinit_at = now + reinit_delay;
      return;
    }
    close_sockets();
    reinit_at = now + reinit_delay;
    log().warn("socket re-initialisation failed; next attempt in {} ms",
                  std::chrono::duration_cast<std::chrono::milliseconds>(reinit_delay).count());
    reinit_delay = std::min(reinit_delay * 2, options.network.reinit_max);
  }

  struct Dispatch {
    std::vector<Message> messages;
    std::vector<PeerEvent> peers;
  };

  Dispatch turn_dispatch;  // turn()'s, guarded by loop_mutex

  // --- receive (m held)
  void log_drop(const EngineStats& before, const Endpoint& from) {
    const EngineStats& after = engine->stats();
    for (std::size_t i = 0; i < kErrcCount; ++i) {
      if (after.dropped[i] != before.dropped[i])
        log().debug("dropped datagram from {}: {}", to_string(from),
                    to_string(static_cast<Errc>(i)));
    }
  }

  // Events are drained into `out` after every batch: the engine's inbox holds max_inbox
  // messages, and reading up to kMaxBatchesPerWakeup batches before draining overflowed it
  // under bursts (counted inbox_full, the messages lost).
  void receive(int fd, Time now, Dispatch& out) {
    for (int batch = 0; batch < kMaxBatchesPerWakeup; ++batch) {
      if (!rx_ready) {
        for (std::size_t i = 0; i < kBatch; ++i) {
          rx_iov[i] = {rx_buf[i].data(), rx_buf[i].size()};
          rx_addr[i].length = sizeof rx_addr[i].storage;
          rx_msgs[i].msg_hdr = {};
          rx_msgs[i].msg_hdr.msg_name = rx_addr[i].get();
          rx_msgs[i].msg_hdr.msg_iov = &rx_iov[i];
          rx_msgs[i].msg_hdr.msg_iovlen = 1;
        }
        rx_ready = true;
      }
      // recvmmsg writes back msg_namelen (and msg_len, msg_flags); the rest stays as set.
      for (std::size_t i = 0; i < kBatch; ++i)
        rx_msgs[i].msg_hdr.msg_namelen = static_cast<socklen_t>(sizeof rx_addr[i].storage);
      const int n = ::recvmmsg(fd, rx_msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        const int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return;
        // ICMP errors (a peer that died: ECONNREFUSED) surface here; they are not ours.
        ++counters.receive_errors;
        log().debug("receive: {}", std::strerror(err));
        if (err == EBADF || err == ENOTSOCK) mark_broken(now, err);
        return;
      }
      if (n == 0) return;
      ++counters.batches_received;
      if (fd == unicast_sock.get()) counters.unicast_received += static_cast<std::uint64_t>(n);
      const bool debug = log_enabled(spdlog::level::debug);
      for (int i = 0; i < n; ++i) {
        const auto& msg = rx_msgs[static_cast<std::size_t>(i)];
        const Endpoint from = from_sockaddr(rx_addr[static_cast<std::size_t>(i)].get(),
                                            msg.msg_hdr.msg_namelen);
        // A datagram longer than the buffer arrives truncated; hand over what we have and the
        // codec rejects it (as the original does with its 2048-byte buffer).
        const Bytes data{rx_buf[static_cast<std::size_t>(i)].data(), msg.msg_len};
        if (debug) {
          const EngineStats before = engine->stats();
          engine->handle_datagram(from, data, now);
          if (engine->stats().dropped_total != before.dropped_total) log_drop(before, from);
        } else {
          engine->handle_datagram(from, data, now);
        }
      }
      drain_events(out);
      if (static_cast<std::size_t>(n) < kBatch) return;
    }
  }

  // --- send (m held)
  void flush(Time now) {
    for (;;) {
      std::size_t count = 0;
      while (count < kBatch) {
        auto tx = engine->poll_transmit(now, tx_buf[count]);
        if (!tx) break;
        const Endpoint& to = tx->to_group ? options.network.group : tx->to;
        const int family = options.network.group.family == Endpoint::Family::ipv6 ? AF_INET6 : AF_INET;
        if (family == AF_INET && to.family == Endpoint::Family::ipv6) {
          ++counters.send_errors;
          log().warn("cannot send to {} from an IPv4 node; dropped", to_string(to));
          continue;
        }
        tx_addr[count] = to_sockaddr(to, family);
        tx_iov[count] = {tx_buf[count].data(), tx->size};
        tx_msgs[count].msg_hdr = {};
        tx_msgs[count].msg_hdr.msg_name = tx_addr[count].get();
        tx_msgs[count].msg_hdr.msg_namelen = tx_addr[count].length;
        tx_msgs[count].msg_hdr.msg_iov = &tx_iov[count];
        tx_msgs[count].msg_hdr.msg_iovlen = 1;
        ++count;
      }
      if (count == 0) return;
      send_batch(count, now);
      if (count < kBatch) return;
    }
  }

  // 1 if the datagram was sent, -1 with errno set otherwise (as sendmmsg would return).
  int send_one(const msghdr& h) {
    const ssize_t r = ::sendto(unicast_sock.get(), h.msg_iov[0].iov_base, h.msg_iov[0].iov_len, 0,
                               static_cast<const sockaddr*>(h.msg_name), h.msg_namelen);
    return r < 0 ? -1 : 1;
  }

  void send_batch(std::size_t count, Time now) {
    if (sockets_broken || !unicast_sock.valid()) {
      // The engine retransmits QoS 1/2 once the sockets are back; QoS 0 is lost, and counted.
      counters.send_errors += count;
      return;
    }
    std::size_t done = 0;
    while (done < count) {
      // One datagram (a publish, an ACK): sendto, about 0.2 us cheaper than sendmmsg of one
      // here (docs/performance.md, "Optimisations"); same errors, same result.
      const int n = count - done == 1 ? send_one(tx_msgs[done].msg_hdr)
                                      : ::sendmmsg(unicast_sock.get(), tx_msgs.data() + done,
                                                   static_cast<unsigned>(count - done), 0);
      ++counters.batches_sent;
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        if (reinit_delay != Duration::zero() && !sockets_broken)
          reinit_delay = Duration::zero();  // healthy again: next failure starts from scratch
        continue;
      }
      const int err = errno;
      if (err == EINTR) continue;
      ++counters.send_errors;
      const Endpoint to = from_sockaddr(tx_addr[done].get(), tx_addr[done].length);
      if (is_interface_error(err)) {
        log().warn("send to {}: {}", to_string(to), std::strerror(err));
        if (reinit_delay == Duration::zero()) {
          mark_broken(now, err);
        } else {
          // Failed again right after a re-initialisation: wait longer before the next one.
          sockets_broken = true;
          reinit_at = now + reinit_delay;
          reinit_delay = std::min(reinit_delay * 2, options.network.reinit_max);
        }
        counters.send_errors += count - done - 1;
        return;
      }
      // EPERM (a firewall rule), ENOBUFS, ECONNREFUSED from an earlier ICMP: this datagram
      // only; the engine retransmits what needs it.
      log().debug("send to {}: {}", to_string(to), std::strerror(err));
      ++done;
    }
  }

  // --- events (m held). Callbacks are collected and run after the lock is released.
  void drain_events(Dispatch& out) {
    bool notify = false;
    // Formatting arguments (to_string of an endpoint: inet_ntop + sprintf, about 2000
    // instructions) are evaluated before spdlog checks the level: check it once here.
    const bool debug = log_enabled(spdlog::level::debug);
    while (auto ev = engine->poll_event()) {
      if (auto* msg = std::get_if<MessageEvent>(&*ev)) {
        notify = true;
        if (debug) {
          log().debug("message on '{}' from {} (qos {}, retain {}, priority {}, {} bytes)",
                      msg->channel, to_string(msg->from), static_cast<int>(msg->qos), msg->retain,
                      msg->priority, msg->message.size());
        }
        // Built only when someone receives it (two string copies and their allocations).
        if (listeners.empty() && !on_message) continue;
        Message m2 = to_message(*msg);
        for (auto it = listeners.begin(); it != listeners.end();) {
          auto q = it->lock();
          if (!q) {
            it = listeners.erase(it);
            continue;
          }
          if (q->queue.size() >= q->capacity) {
            q->queue.pop_front();
            ++counters.listener_overflows;
            log().warn("listener full: oldest message dropped (capacity {})", q->capacity);
          }
          q->queue.push_back(m2);
          ++it;
        }
        if (on_message) out.messages.push_back(std::move(m2));
      } else if (auto* rep = std::get_if<DeliveryReport>(&*ev)) {
        notify = true;
        if (rep->reason == Errc::ok) {  // Delivery::all_acknowledged()
          if (debug)
            log().debug("message {} on '{}' acknowledged by {} recipient(s)", rep->message_id,
                        rep->channel, rep->recipients.size());
        } else {
          log().info("message {} on '{}' not fully delivered: {}", rep->message_id, rep->channel,
                     to_string(rep->reason));
        }
        // The owned copy is made only for a handle that waits for it.
        auto it = in_flight.find(rep->message_id);
        if (it != in_flight.end()) {
          it->second->delivery = to_delivery(*rep);
          in_flight.erase(it);
        }
      } else if (auto* peer = std::get_if<PeerEvent>(&*ev)) {
        if (debug)
          log().debug("peer {} {} (session {:08x})", to_string(peer->endpoint),
                      peer_kind(peer->kind), peer->session_id);
        if (on_peer) out.peers.push_back(*peer);
      }
    }
    if (notify) cv.notify_all();
  }

  void run_callbacks(const Dispatch& d) {
    // Copying the std::functions may allocate: only when there is something to call.
    if (d.messages.empty() && d.peers.empty()) return;
    std::function<void(const Message&)> mcb;
    std::function<void(const PeerEvent&)> pcb;
    {
      std::lock_guard lk(m);
      mcb = on_message;
      pcb = on_peer;
    }
    if (mcb)
      for (const auto& msg : d.messages) mcb(msg);
    if (pcb)
      for (const auto& p : d.peers) pcb(p);
  }

  // After any engine call from an API function: send what it queued, and make the loop
  // recompute its timeout.
  void kick(Time now) {
    // Within a Node::Batch the datagrams wait for a full sendmmsg() batch. A publish queues at
    // least one datagram, so kBatch publishes fill one (the outbox holds max_queued_messages
    // QoS 0 copies, 64 by default, and flush() sends any number in batches of kBatch).
    // The loop is not woken meanwhile: its timeout may be stale only until the batch ends.
    if (batches_open > 0 && ++batched_publishes < kBatch) return;
    batched_publishes = 0;
    flush(now);
    wake_loop();
  }

  void end_batch() {
    if (--batches_open > 0 || closed) return;
    batched_publishes = 0;
    const Time now = realtime_now();
    flush(now);
    wake_loop();
  }

  void wake_loop() {
    // No thread waits in epoll_wait (the caller drives the loop itself, or the loop is busy and
    // recomputes its timeout under m before it waits again): the eventfd write would be a
    // wasted system call, and an extra epoll_wait + read for the loop.
    if (!loop_waiting.load(std::memory_order_relaxed)) return;
    const std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wake.get(), &one, sizeof one);
  }

  // --- the loop
  int timeout_ms(Duration limit, Time now) const {
    Duration wait = limit;
    if (auto d = engine->next_deadline()) wait = std::min(wait, *d - now);
    if (sockets_broken) wait = std::min(wait, reinit_at - now);
    if (wait <= Duration::zero()) return 0;
    // Round up: waking a little late is harmless, waking early spins.
    const auto ms = (wait.count() + 999) / 1000;
    return static_cast<int>(std::min<std::int64_t>(ms, 60'000));
  }

  Result<void> turn(Duration limit) {
    int wait_ms = 0;
    {
      std::lock_guard lk(m);
      if (closed) return closed_error();
      wait_ms = timeout_ms(limit, realtime_now());
      loop_waiting.store(true, std::memory_order_relaxed);
    }
    std::array<epoll_event, 4> events{};
    const int n = ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), wait_ms);
    if (n < 0 && errno != EINTR) {
      Error e{Errc::io_error, "epoll_wait: ", std::strerror(errno)};
      log().error("{}", e.message());
      return e;
    }
    // Reused across turns (one thread runs turn() at a time, under loop_mutex): its vectors
    // keep their capacity instead of allocating per turn.
    Dispatch& dispatch = turn_dispatch;
    dispatch.messages.clear();
    dispatch.peers.clear();
    {
      std::lock_guard lk(m);
      loop_waiting.store(false, std::memory_order_relaxed);
      if (closed) return closed_error();
      const Time now = realtime_now();
      bool unicast_ready = false, group_ready = false;
      for (int i = 0; i < n; ++i) {
        const int fd = events[static_cast<std::size_t>(i)].data.fd;
        if (fd == wake.get()) {
          std::uint64_t v = 0;
          [[maybe_unused]] auto r = ::read(fd, &v, sizeof v);
        } else if (fd == unicast_sock.get()) {
          unicast_ready = true;
        } else if (fd == group_sock.get()) {
          group_ready = true;
        }
      }
      // Replies first: a subscriber's ACK (to our socket) was sent before its UNSUBSCRIBE (to
      // the group); handled the other way round, the ACK would find its recipient gone.
      if (unicast_ready) receive(unicast_sock.get(), now, dispatch);
      if (group_ready) receive(group_sock.get(), now, dispatch);
      maybe_reinit(now);
      if (auto d = engine->next_deadline(); d && *d <= now) engine->handle_timeout(now);
      flush(now);
      drain_events(dispatch);
    }
    run_callbacks(dispatch);
    dispatch.messages.clear();  // no copies held until the next turn
    return {};
  }

  void thread_main() {
    while (!stopping.load()) {
      if (!turn(std::chrono::seconds{60}).ok()) break;
    }
  }

  // Waits on the condition until `ready()` (called with m held) or the deadline; drives the
  // loop itself when no thread does.
  template <class Pred>
  void wait_until(std::unique_lock<std::mutex>& lk, Pred ready, std::chrono::steady_clock::time_point deadline) {
    while (!ready() && !closed) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return;
      if (started.load()) {
        cv.wait_until(lk, deadline);
        continue;
      }
      std::unique_lock loop(loop_mutex, std::try_to_lock);
      if (!loop.owns_lock()) {
        // Another caller drives the loop; it notifies when something happens.
        cv.wait_until(lk, std::min(deadline, now + std::chrono::milliseconds{20}));
        continue;
      }
      lk.unlock();
      const auto left = std::chrono::duration_cast<Duration>(deadline - now);
      [[maybe_unused]] auto r = turn(std::max(left, Duration{1000}));
      loop.unlock();
      lk.lock();
    }
  }
};

}  // namespace detail

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
  return state_->delivery;
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
  std::unique_lock lk(core_->m);
  if (queue_->queue.empty() && timeout > Duration::zero())
    core_->wait_until(lk, [&] { return !queue_->queue.empty(); },
                      std::chrono::steady_clock::now() + timeout);
  if (queue_->queue.empty()) return std::nullopt;
  Message m = std::move(queue_->queue.front());
  queue_->queue.pop_front();
  return m;
}

std::size_t Listener::size() const {
  if (!core_) return 0;
  std::lock_guard lk(core_->m);
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
  auto core = std::make_shared<NodeCore>();
  core->options = options;
  auto crypto = OpenSslCrypto::create(options.encryption_key, options.hmac_key);
  if (!crypto) return crypto.error();
  core->crypto = std::move(*crypto);

  core->group_setup.group = options.network.group;
  if (!options.network.interface_name.empty()) {
    core->group_setup.interface_index = ::if_nametoindex(options.network.interface_name.c_str());
    if (core->group_setup.interface_index == 0) {
      Error e{Errc::io_error, "interface '", options.network.interface_name, "': ",
              std::strerror(errno)};
      detail::log().error("{}", e.message());
      return e;
    }
  } else if (options.network.group.family == Endpoint::Family::ipv6) {
    core->group_setup.interface_index = options.network.group.scope_id;
  }
  if (options.network.unicast_bind) core->unicast_bind = *options.network.unicast_bind;
  if (!core->unicast_bind.valid()) core->unicast_bind.family = options.network.group.family;

  core->epoll = detail::Fd{::epoll_create1(EPOLL_CLOEXEC)};
  core->wake = detail::Fd{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  if (!core->epoll.valid() || !core->wake.valid()) {
    return Error{Errc::io_error, core->epoll.valid() ? "eventfd: " : "epoll_create1: ",
                 std::strerror(errno)};
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = core->wake.get();
  if (::epoll_ctl(core->epoll.get(), EPOLL_CTL_ADD, core->wake.get(), &ev) != 0) {
    return Error{Errc::io_error, "epoll_ctl: ", std::strerror(errno)};
  }

  {
    std::lock_guard lk(core->m);
    if (auto r = core->open_sockets(); !r) return r.error();
    const Time now = detail::realtime_now();
    core->engine = std::make_unique<Engine>(options.engine, *core->crypto, now);
    detail::log().info("node {:08x} on {} (group {}, wire {})", core->engine->session_id(),
                       to_string(core->unicast_local), to_string(core->options.network.group),
                       to_string(options.engine.wire));
    core->flush(now);
  }
  return std::unique_ptr<Node>{new Node(std::move(core))};
}

Result<void> Node::subscribe(std::string_view channel, std::uint8_t priority) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const Time now = detail::realtime_now();
  auto r = core_->engine->subscribe(channel, priority, now);
  if (r) detail::log().debug("subscribed to '{}' (priority {})", channel, priority);
  core_->kick(now);
  return r;
}

Result<void> Node::unsubscribe(std::string_view channel) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const Time now = detail::realtime_now();
  auto r = core_->engine->unsubscribe(channel, now);
  core_->kick(now);
  return r;
}

Result<PublishHandle> Node::publish(std::string_view channel, std::string_view message,
                                    const PublishOptions& options) {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  const Time now = detail::realtime_now();
  auto id = core_->engine->publish(channel, as_bytes(message), options, now);
  if (!id) {
    detail::log().debug("publish on '{}' refused: {}: {}", channel, id.error().name(),
                        id.error().message());
    return id.error();
  }
  auto state = std::make_shared<detail::DeliveryState>();
  if (options.qos == Qos::at_most_once) {
    Delivery d;
    d.message_id = *id;
    d.channel = std::string{channel};
    d.qos = Qos::at_most_once;
    state->delivery = std::move(d);
  } else {
    core_->in_flight[*id] = state;
  }
  detail::log().debug("published message {} on '{}' (qos {}, {} bytes)", *id, channel,
                      static_cast<int>(options.qos), message.size());
  core_->kick(now);
  return PublishHandle{core_, std::move(state), *id};
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
  core_->listeners.push_back(q);
  return Listener{core_, std::move(q)};
}

void Node::on_message(std::function<void(const Message&)> callback) {
  std::lock_guard lk(core_->m);
  core_->on_message = std::move(callback);
}

void Node::on_peer(std::function<void(const PeerEvent&)> callback) {
  std::lock_guard lk(core_->m);
  core_->on_peer = std::move(callback);
}

Digest Node::gen_signature(std::string_view message) const {
  std::lock_guard lk(core_->m);  // the crypto object keeps contexts: one user at a time
  return core_->options.engine.wire == WireVersion::v1 ? core_->crypto->keyed_sha256(as_bytes(message))
                                                       : core_->crypto->hmac_sha256(as_bytes(message));
}

bool Node::authenticate(Bytes signature, std::string_view message) const {
  if (signature.size() != kDigestSize) return false;
  const Digest expected = gen_signature(message);
  std::lock_guard lk(core_->m);
  return core_->crypto->mac_equal(signature, expected);
}

Result<void> Node::start() {
  std::lock_guard lk(core_->m);
  if (core_->closed) return detail::closed_error();
  if (core_->started.exchange(true)) {
    return Error{Errc::invalid_argument, "start(): the node's loop already runs on its thread"};
  }
  core_->thread = std::thread([core = core_.get()] {
    std::lock_guard loop(core->loop_mutex);
    core->thread_main();
  });
  return {};
}

Result<void> Node::run_once(Duration timeout) {
  if (core_->started.load()) {
    return Error{Errc::invalid_argument,
                 "run_once(): start() runs the loop on the node's thread; do not call both"};
  }
  std::lock_guard loop(core_->loop_mutex);
  return core_->turn(timeout);
}

int Node::fd() const noexcept { return core_->epoll.get(); }

std::optional<Duration> Node::next_timeout() const {
  std::lock_guard lk(core_->m);
  if (core_->closed) return std::nullopt;
  const Time now = detail::realtime_now();
  std::optional<Duration> t;
  if (auto d = core_->engine->next_deadline()) t = std::max(Duration::zero(), *d - now);
  if (core_->sockets_broken) {
    const Duration r = std::max(Duration::zero(), core_->reinit_at - now);
    t = t ? std::min(*t, r) : r;
  }
  return t;
}

std::vector<Delivery> Node::close(Duration linger) {
  auto& c = *core_;
  if (linger > Duration::zero()) {
    std::unique_lock lk(c.m);
    c.wait_until(lk, [&] { return c.closed || c.engine->pending_count() == 0; },
                 std::chrono::steady_clock::now() + linger);
  }
  // Stop the background thread first, so that nobody else touches the engine.
  if (c.started.load() && !c.stopping.exchange(true)) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(c.wake.get(), &one, sizeof one);
    if (c.thread.joinable()) c.thread.join();
  }
  std::lock_guard loop(c.loop_mutex);
  std::vector<Delivery> undelivered;
  std::vector<std::shared_ptr<detail::DeliveryState>> ended;
  {
    std::lock_guard lk(c.m);
    if (c.closed) return undelivered;
    const Time now = detail::realtime_now();
    c.engine->close(now);
    c.flush(now);  // the unsubscribe announcements
    // Every pending publish ends here with a report; keep the ones not fully acknowledged.
    for (auto& [id, state] : c.in_flight) ended.push_back(state);
    detail::NodeCore::Dispatch ignored;
    c.on_message = nullptr;
    c.on_peer = nullptr;
    c.drain_events(ignored);
    for (auto& s : ended)
      if (s->delivery && !s->delivery->all_acknowledged()) undelivered.push_back(*s->delivery);
    for (auto& [id, state] : c.in_flight) {
      // An engine that ended a publish without a report would leave a waiter hanging: end it.
      Delivery d;
      d.message_id = id;
      d.reason = Errc::closed;
      state->delivery = d;
      undelivered.push_back(std::move(d));
    }
    c.in_flight.clear();
    c.close_sockets();
    c.closed = true;
    c.cv.notify_all();
    if (!undelivered.empty())
      detail::log().warn("closed with {} message(s) not fully delivered", undelivered.size());
  }
  return undelivered;
}

NodeStats Node::stats() const {
  std::lock_guard lk(core_->m);
  NodeStats s = core_->counters;
  s.engine = core_->engine->stats();
  s.inbound_qos2_open = core_->engine->inbound_qos2_open();
  return s;
}

std::uint32_t Node::session_id() const {
  std::lock_guard lk(core_->m);
  return core_->engine->session_id();
}

std::size_t Node::pending_count() const {
  std::lock_guard lk(core_->m);
  return core_->engine->pending_count();
}

Endpoint Node::local_endpoint() const {
  std::lock_guard lk(core_->m);
  return core_->unicast_local;
}

Endpoint Node::group() const {
  std::lock_guard lk(core_->m);
  return core_->options.network.group;
}

WireVersion Node::wire() const { return core_->options.engine.wire; }

}  // namespace nomq
