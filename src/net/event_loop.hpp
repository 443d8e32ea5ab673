// The node's loop machinery: the epoll set (the node's sockets and a wake-up eventfd; its fd is
// Node::fd()), the wake-up protocol between API calls and a loop blocked in epoll_wait, and the
// optional background thread (Node::start()). What a loop turn does is the node's
// (node_core.cpp); this unit only waits and wakes.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "net/udp.hpp"
#include "nomq/error.hpp"
#include "nomq/time.hpp"

namespace nomq::detail {

class EventLoop {
 public:
  EventLoop() = default;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();

  // Creates the epoll set and the eventfd. io_error when either cannot be created.
  Result<void> open();
  int fd() const noexcept { return epoll_.get(); }

  struct Ready {
    bool unicast = false;
    bool group = false;
  };
  // Waits up to `timeout_ms` for one of the sockets or a wake-up (which it consumes). io_error
  // when epoll_wait fails for another reason than a signal.
  Result<Ready> wait(int timeout_ms, int unicast_fd, int group_fd);

  // The wake-up protocol; both calls with the node's mutex held. Before a turn releases the
  // mutex to wait: it waits until `wake_at` at the latest (its earliest deadline). After an API
  // call changed the engine: `next` is the node's earliest deadline now; the waiting loop is
  // woken only when that is before `wake_at` (a publish that leaves at once and sets no earlier
  // timer costs no eventfd write, and no wake-up of the loop's thread).
  void will_wait(Instant wake_at) noexcept {
    wake_at_ = wake_at;
    waiting_.store(true, std::memory_order_relaxed);
  }
  void woke() noexcept { waiting_.store(false, std::memory_order_relaxed); }
  // Whether a turn waits: without one (run_once() mode between turns) wake_if_earlier() has
  // nothing to do, and the caller need not compute its deadline.
  bool waiting() const noexcept { return waiting_.load(std::memory_order_relaxed); }
  void wake_if_earlier(std::optional<Instant> next) noexcept {
    if (!waiting() || !next || *next >= wake_at_) return;
    waiting_.store(false, std::memory_order_relaxed);  // one write per wait is enough
    wake();
  }
  // Interrupts epoll_wait whatever the loop waits for (close(), the thread's stop).
  void wake() noexcept;

  // The background thread: runs `turn` until it fails or stop(). False when already started.
  bool start(std::function<bool()> turn);
  bool started() const noexcept { return started_.load(); }
  // Stops and joins the background thread, if any. Without the node's mutex.
  void stop();

  // One thread runs the loop at a time: the background thread, or a run_once() caller, or a
  // waiter that drives the loop itself (Node's wait_until).
  std::mutex& turn_mutex() noexcept { return turn_mutex_; }

 private:
  Fd epoll_;
  Fd wake_;
  std::mutex turn_mutex_;
  std::thread thread_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
  // True while a turn is blocked in (or about to enter) epoll_wait with a timeout computed
  // under the node's mutex. Set and cleared with that mutex held, and read with it held by
  // wake_if_earlier(), so a change made after the timeout was computed always sees it (no lost
  // wake-up). wake_at_: the instant that timeout ends (guarded by the node's mutex).
  std::atomic<bool> waiting_{false};
  Instant wake_at_{};
};

}  // namespace nomq::detail
