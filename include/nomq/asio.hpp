// NoMQ on Asio: a nomq::Node driven by an Asio executor, with asynchronous operations that take
// any completion token (callbacks, asio::use_awaitable, asio::use_future, asio::deferred...).
// Header-only; CMake target nomq::asio (standalone Asio, Debian libasio-dev). docs/asio.md.
//
//   asio::io_context io;
//   auto node = nomq::asio::node::create(io.get_executor(), options);      // Result<node>
//   node->subscribe("plant/line1/temp");
//   asio::co_spawn(io, [&]() -> asio::awaitable<void> {
//     nomq::Message m = co_await node->async_receive(asio::use_awaitable);
//     nomq::Delivery d = co_await node->async_publish("plant/line1/ack", "ok",
//                                                    {.qos = nomq::Qos::at_least_once},
//                                                    asio::use_awaitable);
//   }, asio::detached);
//   io.run();
//
// How it drives the node: the node's fd() (an epoll descriptor) sits in the executor's reactor
// through a posix::stream_descriptor, and a steady_timer is set from next_timeout(); either
// runs Node::run_once(0). No thread is created. Completions go through the node's executor and
// then to the handler's associated executor, never from inside an initiating function.
//
// Threading, as for Asio's own I/O objects: one node object must not be used concurrently from
// several threads. Run the io_context on one thread, or give the node a strand as executor. The
// Node underneath (node()) stays thread-safe for publish() from other threads; its fd wakes the
// executor when such a call moves the node's next deadline earlier.
//
// Completion signatures:
//   async_receive       void(std::error_code, nomq::Message)
//   async_publish       void(std::error_code, nomq::Delivery)   the publish and its report
//   async_wait_report   void(std::error_code, nomq::Delivery)   the report of an earlier publish()
//   async_close         void(std::error_code, std::vector<nomq::Delivery>)
// The error_code is a nomq::Errc (category "nomq": closed, invalid_argument, too_many_pending,
// message_too_large...) or asio::error::operation_aborted after cancellation. A Delivery that
// arrives with no error may still say the message was not acknowledged: see Delivery::reason.
//
// Cancellation (per operation, through the handler's associated cancellation slot, or for all
// pending operations with cancel()):
//   async_receive, async_wait_report: terminal, partial and total. Nothing is lost: a message
//     not handed to a cancelled receive goes to the next one; the publish of a cancelled
//     async_wait_report goes on and its handle can be awaited again.
//   async_publish: terminal and partial only. The message has left: cancelling stops the wait
//     for its report, not the delivery (use publish() + async_wait_report to keep the handle).
//   async_close: not cancellable (it ends at the linger's end at the latest).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/posix/basic_stream_descriptor.hpp>
#include <asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "nomq/node.hpp"

namespace nomq::asio {

namespace detail {

// A pending operation whose completion carries a T; the handler's type is erased.
template <class T>
class pending {
 public:
  explicit pending(std::uint64_t id) : id_(id) {}
  virtual ~pending() = default;
  pending(const pending&) = delete;
  pending& operator=(const pending&) = delete;
  std::uint64_t id() const noexcept { return id_; }
  // Posts the handler with (ec, value) to its associated executor. `clear_slot` is false when
  // called from the cancellation handler itself (which must not destroy itself while it runs).
  virtual void complete(std::error_code ec, T value, bool clear_slot) = 0;

 private:
  std::uint64_t id_;
};

template <class T, class Handler, class IoExecutor>
class pending_op final : public pending<T> {
 public:
  pending_op(std::uint64_t id, Handler&& handler, const IoExecutor& io_ex)
      : pending<T>(id),
        handler_(std::move(handler)),
        io_ex_(io_ex),
        work_(::asio::get_associated_executor(handler_, io_ex)) {}

  ::asio::associated_cancellation_slot_t<Handler> slot() const noexcept {
    return ::asio::get_associated_cancellation_slot(handler_);
  }

  // As Asio's own operations complete: through the I/O executor (never inside the initiating
  // function, never on a thread of Asio's system pool, as posting straight to a use_future
  // handler's executor would), then dispatched to the handler's associated executor.
  void complete(std::error_code ec, T value, bool clear_slot) override {
    if (clear_slot) {
      auto slot = ::asio::get_associated_cancellation_slot(handler_);
      if (slot.is_connected()) slot.clear();
    }
    ::asio::post(io_ex_, [h = std::move(handler_), work = std::move(work_), ec,
                          v = std::move(value)]() mutable {
      auto ex = work.get_executor();
      ::asio::dispatch(ex, [h = std::move(h), ec, v = std::move(v)]() mutable {
        std::move(h)(ec, std::move(v));
      });
    });
  }

 private:
  Handler handler_;
  IoExecutor io_ex_;
  ::asio::executor_work_guard<::asio::associated_executor_t<Handler, IoExecutor>> work_;
};

inline std::error_code to_error_code(const Error& e) { return make_error_code(e.code()); }

// Whether an fd is readable now (level-triggered check; the reactor watches edges).
inline bool readable_now(int fd) noexcept {
  ::pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

}  // namespace detail

template <class Executor = ::asio::any_io_executor>
class basic_node {
 public:
  using executor_type = Executor;

  // Creates a node (Node::create / Node::load) driven by `ex`. Errors: those of Node::create or
  // Node::load; io_error when the node's fd cannot be watched.
  static Result<basic_node> create(const executor_type& ex, const NodeOptions& options) {
    auto n = Node::create(options);
    if (!n) return n.error();
    return adopt(ex, std::move(*n));
  }
  static Result<basic_node> load(const executor_type& ex, const std::string& config_file) {
    auto n = Node::load(config_file);
    if (!n) return n.error();
    return adopt(ex, std::move(*n));
  }
  // Takes a node created by the caller. Precondition: its loop was not start()ed (the first
  // turn would fail with invalid_argument, and every operation with it).
  static Result<basic_node> adopt(const executor_type& ex, std::unique_ptr<Node> node) {
    if (!node) return Error{Errc::invalid_argument, "nomq::asio: adopt() of a null node"};
    const int fd = ::fcntl(node->fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return Error{Errc::io_error, "nomq::asio: dup of the node's fd: ", std::strerror(errno)};
    auto s = std::make_shared<state>(ex, std::move(node));
    std::error_code ec;
    s->descriptor.assign(fd, ec);
    if (ec) {
      ::close(fd);
      return Error{Errc::io_error, "nomq::asio: watching the node's fd: ", ec.message()};
    }
    s->start();
    return basic_node{std::move(s)};
  }

  basic_node(basic_node&&) noexcept = default;
  basic_node& operator=(basic_node&& other) noexcept {
    if (this != &other) {
      if (s_) s_->close(Duration::zero());
      s_ = std::move(other.s_);
    }
    return *this;
  }
  basic_node(const basic_node&) = delete;
  basic_node& operator=(const basic_node&) = delete;
  // Closes the node (close(0)): pending operations complete as after close().
  ~basic_node() {
    if (s_) s_->close(Duration::zero());
  }

  executor_type get_executor() const noexcept { return s_->ex; }
  // The node underneath: stats(), session_id(), local_endpoint(), group(), gen_signature()...
  // Do not call run_once(), start() or the blocking waits on it from the executor's thread.
  Node& node() noexcept { return *s_->node; }
  const Node& node() const noexcept { return *s_->node; }

  // Synchronous, as in Node: a NoMQ subscription is an announcement, not a request answered by
  // a broker. They re-arm the node's timer here.
  Result<void> subscribe(std::string_view channel, std::uint8_t priority = 0) {
    if (s_->closed) return Error{Errc::closed, "the node is closed (close() was called)"};
    auto r = s_->node->subscribe(channel, priority);
    s_->schedule_timer();
    return r;
  }
  Result<void> unsubscribe(std::string_view channel) {
    if (s_->closed) return Error{Errc::closed, "the node is closed (close() was called)"};
    auto r = s_->node->unsubscribe(channel);
    s_->schedule_timer();
    return r;
  }
  // Node::publish: the handle for async_wait_report (or PublishHandle::ready()). The error has
  // the reason text that async_publish's std::error_code cannot carry.
  Result<PublishHandle> publish(std::string_view channel, std::string_view message,
                                const PublishOptions& options = {}) {
    if (s_->closed) return Error{Errc::closed, "the node is closed (close() was called)"};
    auto r = s_->node->publish(channel, message, options);
    s_->schedule_timer();
    return r;
  }

  // The next message received (each message goes to one async_receive, in arrival order;
  // messages wait in the node's listener, NetworkOptions::listener_capacity, until asked for).
  // Errors: closed.
  template <class CompletionToken>
  auto async_receive(CompletionToken&& token) {
    return ::asio::async_initiate<CompletionToken, void(std::error_code, Message)>(
        [s = s_](auto handler) { s->initiate_receive(std::move(handler)); }, token);
  }

  // Publishes and completes with the delivery report: at once for QoS 0, when every recipient
  // acknowledged or the publish ended (expired, timed_out, no_subscribers) for QoS 1/2, with
  // reason closed if the node is closed meanwhile. Errors: those of Node::publish, as codes
  // (publish() gives the reason text); closed.
  template <class CompletionToken>
  auto async_publish(std::string channel, std::string message, PublishOptions options,
                     CompletionToken&& token) {
    return ::asio::async_initiate<CompletionToken, void(std::error_code, Delivery)>(
        [s = s_](auto handler, std::string c, std::string m, PublishOptions o) {
          s->initiate_publish(std::move(handler), c, m, o);
        },
        token, std::move(channel), std::move(message), std::move(options));
  }
  // With default PublishOptions (QoS 0).
  template <class CompletionToken>
  auto async_publish(std::string channel, std::string message, CompletionToken&& token) {
    return async_publish(std::move(channel), std::move(message), PublishOptions{},
                         std::forward<CompletionToken>(token));
  }

  // The report of a publish() made earlier on this node; after close() too (a publish pending
  // at close() has a report with reason closed). Errors: invalid_argument (an empty handle),
  // closed (closed, and the handle has no report).
  template <class CompletionToken>
  auto async_wait_report(PublishHandle handle,
                         CompletionToken&& token) {
    return ::asio::async_initiate<CompletionToken, void(std::error_code, Delivery)>(
        [s = s_](auto handler, PublishHandle h) { s->initiate_report(std::move(handler), std::move(h)); },
        token, std::move(handle));
  }

  // Waits, without blocking the executor, up to `linger` for the pending QoS 1/2 publishes,
  // then closes: as close(linger), completing with the reports of what was not fully
  // acknowledged. Errors: closed (already closed).
  template <class CompletionToken>
  auto async_close(Duration linger,
                   CompletionToken&& token) {
    return ::asio::async_initiate<CompletionToken, void(std::error_code, std::vector<Delivery>)>(
        [s = s_](auto handler, Duration l) { s->initiate_close(std::move(handler), l); }, token,
        linger);
  }

  // Completes every pending operation with asio::error::operation_aborted; the node goes on.
  void cancel() { s_->cancel_all(); }

  // Closes the node now (Node::close(linger); linger > 0 blocks the calling thread: prefer
  // async_close). Pending receives complete with closed, pending publishes and report waits
  // with their reports (reason closed unless they were acknowledged). Returns the reports of
  // what was not fully acknowledged. Idempotent.
  std::vector<Delivery> close(Duration linger = Duration::zero()) { return s_->close(linger); }
  bool is_open() const noexcept { return s_ && !s_->closed; }

 private:
  using descriptor_type = ::asio::posix::basic_stream_descriptor<Executor>;
  using timer_type = ::asio::basic_waitable_timer<std::chrono::steady_clock,
                                                  ::asio::wait_traits<std::chrono::steady_clock>,
                                                  Executor>;
  using receive_op = detail::pending<Message>;
  using report_op = detail::pending<Delivery>;
  using close_op = detail::pending<std::vector<Delivery>>;

  struct report_wait {
    PublishHandle handle;
    std::unique_ptr<report_op> op;
  };

  struct state : std::enable_shared_from_this<state> {
    state(const Executor& e, std::unique_ptr<Node> n)
        : ex(e), node(std::move(n)), listener(node->listen()), descriptor(e), timer(e) {}

    Executor ex;
    std::unique_ptr<Node> node;
    Listener listener;
    descriptor_type descriptor;
    timer_type timer;
    bool closed = false;
    bool wait_armed = false;
    bool turn_posted = false;
    std::optional<std::chrono::steady_clock::time_point> timer_at;
    std::uint64_t timer_generation = 0;
    std::error_code failure;  // a turn failed: every later operation fails with it
    std::uint64_t next_id = 1;
    std::list<std::unique_ptr<receive_op>> receives;
    std::list<report_wait> reports;
    std::unique_ptr<close_op> closing;
    std::optional<std::chrono::steady_clock::time_point> close_deadline;

    void start() {
      arm_wait();
      schedule_timer();
    }

    // --- driving the node

    void arm_wait() {
      if (closed || failure) return;
      if (!wait_armed) {
        wait_armed = true;
        descriptor.async_wait(descriptor_type::wait_read, [self = this->shared_from_this()](std::error_code ec) {
          self->wait_armed = false;
          if (!ec) self->turn();
        });
      }
      // The reactor reports edges: readiness left over from a turn that stopped at its batch
      // limit, or that arrived before the wait was queued, would not be reported again.
      if (detail::readable_now(descriptor.native_handle())) post_turn();
    }

    void post_turn() {
      if (turn_posted) return;
      turn_posted = true;
      ::asio::post(ex, [self = this->shared_from_this()] {
        self->turn_posted = false;
        self->turn();
      });
    }

    void schedule_timer() {
      if (closed || failure) return;
      std::optional<Duration> next = node->next_timeout();
      if (closing && close_deadline) {
        const auto left = std::chrono::ceil<Duration>(*close_deadline - std::chrono::steady_clock::now());
        next = next ? std::min(*next, left) : left;
      }
      if (!next) {
        if (timer_at) {
          timer_at.reset();
          ++timer_generation;
          timer.cancel();
        }
        return;
      }
      const auto at = std::chrono::steady_clock::now() + std::max(*next, Duration::zero());
      if (timer_at && *timer_at <= at) return;  // an earlier turn is due: it re-arms
      timer_at = at;
      const std::uint64_t generation = ++timer_generation;
      timer.expires_at(at);  // aborts a pending wait (its generation is stale)
      timer.async_wait([self = this->shared_from_this(), generation](std::error_code ec) {
        if (generation != self->timer_generation) return;
        self->timer_at.reset();
        if (!ec) self->turn();
      });
    }

    void turn() {
      if (closed || failure) return;
      if (auto r = node->run_once(Duration::zero()); !r) {
        if (r.error().code() == Errc::closed) {
          close(Duration::zero());  // closed through node()
        } else {
          fail(detail::to_error_code(r.error()));
        }
        return;
      }
      complete_ready();
      if (closing && (node->pending_count() == 0 || std::chrono::steady_clock::now() >= *close_deadline)) {
        finish_close();
        return;
      }
      arm_wait();
      schedule_timer();
    }

    void complete_ready() {
      while (!receives.empty()) {
        std::optional<Message> m = listener.next(Duration::zero());
        if (!m) break;
        std::unique_ptr<receive_op> op = std::move(receives.front());
        receives.pop_front();
        op->complete({}, std::move(*m), true);
      }
      for (auto it = reports.begin(); it != reports.end();) {
        if (!it->handle.ready()) {
          ++it;
          continue;
        }
        std::optional<Delivery> d = it->handle.wait_for(Duration::zero());
        std::unique_ptr<report_op> op = std::move(it->op);
        it = reports.erase(it);
        op->complete({}, std::move(*d), true);
      }
    }

    void fail(std::error_code ec) {
      failure = ec;
      timer.cancel();
      descriptor.cancel();
      abort_all(ec);
      if (closing) finish_close();
    }

    // --- operations

    template <class Handler>
    void initiate_receive(Handler handler) {
      auto op = make_op<Message>(std::move(handler));
      if (auto ec = refusal(); ec) return op->complete(ec, Message{}, true);
      if (std::optional<Message> m = listener.next(Duration::zero())) {
        return op->complete({}, std::move(*m), true);
      }
      const std::uint64_t id = op->id();
      connect_cancellation(*op, id, ::asio::cancellation_type::all);
      receives.push_back(std::move(op));
    }

    template <class Handler>
    void initiate_publish(Handler handler, const std::string& channel, const std::string& message,
                          const PublishOptions& options) {
      auto op = make_op<Delivery>(std::move(handler));
      if (auto ec = refusal(); ec) return op->complete(ec, Delivery{}, true);
      Result<PublishHandle> h = node->publish(channel, message, options);
      schedule_timer();
      if (!h) return op->complete(detail::to_error_code(h.error()), Delivery{}, true);
      // A publish's message has left: only the wait for its report can be cancelled.
      wait_report(std::move(op), std::move(*h),
                  ::asio::cancellation_type::terminal | ::asio::cancellation_type::partial);
    }

    template <class Handler>
    void initiate_report(Handler handler, PublishHandle handle) {
      auto op = make_op<Delivery>(std::move(handler));
      if (auto ec = refusal(); ec && !(closed && handle.ready())) {
        return op->complete(ec, Delivery{}, true);
      }
      if (!handle.valid()) {
        return op->complete(make_error_code(Errc::invalid_argument), Delivery{}, true);
      }
      wait_report(std::move(op), std::move(handle), ::asio::cancellation_type::all);
    }

    template <class Handler>
    void initiate_close(Handler handler, Duration linger) {
      auto op = make_op<std::vector<Delivery>>(std::move(handler));
      if (closed || closing) return op->complete(make_error_code(Errc::closed), {}, true);
      closing = std::move(op);
      close_deadline = std::chrono::steady_clock::now() + linger;
      if (failure || node->pending_count() == 0 || linger <= Duration::zero()) return finish_close();
      schedule_timer();
    }

    void finish_close() {
      std::unique_ptr<close_op> op = std::move(closing);
      std::vector<Delivery> left = close(Duration::zero());
      if (op) op->complete({}, std::move(left), true);
    }

    template <class Op>
    void wait_report(std::unique_ptr<Op> op, PublishHandle handle, ::asio::cancellation_type allowed) {
      if (std::optional<Delivery> d = handle.wait_for(Duration::zero())) {
        return op->complete({}, std::move(*d), true);
      }
      connect_cancellation(*op, op->id(), allowed);
      reports.push_back(report_wait{std::move(handle), std::move(op)});
    }

    std::error_code refusal() const {
      if (closed) return make_error_code(Errc::closed);
      return failure;
    }

    template <class T, class Handler>
    auto make_op(Handler&& handler) {
      using op_type = detail::pending_op<T, std::decay_t<Handler>, Executor>;
      return std::make_unique<op_type>(next_id++, std::forward<Handler>(handler), ex);
    }

    template <class Op>
    void connect_cancellation(Op& op, std::uint64_t id, ::asio::cancellation_type allowed) {
      auto slot = op.slot();
      if (!slot.is_connected()) return;
      slot.assign([w = this->weak_from_this(), id, allowed](::asio::cancellation_type type) {
        if ((type & allowed) == ::asio::cancellation_type::none) return;
        if (auto self = w.lock()) self->cancel_one(id);
      });
    }

    void cancel_one(std::uint64_t id) {
      const auto aborted = make_error_code(::asio::error::operation_aborted);
      for (auto it = receives.begin(); it != receives.end(); ++it) {
        if ((*it)->id() != id) continue;
        std::unique_ptr<receive_op> op = std::move(*it);
        receives.erase(it);
        return op->complete(aborted, Message{}, false);
      }
      for (auto it = reports.begin(); it != reports.end(); ++it) {
        if (it->op->id() != id) continue;
        std::unique_ptr<report_op> op = std::move(it->op);
        reports.erase(it);
        return op->complete(aborted, Delivery{}, false);
      }
    }

    void abort_all(std::error_code ec) {
      auto receives_now = std::move(receives);
      receives.clear();
      for (auto& op : receives_now) op->complete(ec, Message{}, true);
      auto reports_now = std::move(reports);
      reports.clear();
      for (auto& r : reports_now) r.op->complete(ec, Delivery{}, true);
    }

    void cancel_all() { abort_all(make_error_code(::asio::error::operation_aborted)); }

    std::vector<Delivery> close(Duration linger) {
      if (closed) return {};
      closed = true;
      std::vector<Delivery> left = node->close(linger);
      ++timer_generation;
      timer_at.reset();
      timer.cancel();
      descriptor.cancel();
      std::error_code ignored;
      descriptor.close(ignored);
      // Pending reports are ready now (close() ends every publish); receives end with closed.
      complete_ready();
      abort_all(make_error_code(Errc::closed));
      if (closing) {
        std::unique_ptr<close_op> op = std::move(closing);
        op->complete({}, left, true);
      }
      return left;
    }
  };

  explicit basic_node(std::shared_ptr<state> s) : s_(std::move(s)) {}
  std::shared_ptr<state> s_;
};

// The node most programs use: driven by any Asio I/O executor (io_context's, a strand's).
using node = basic_node<>;

}  // namespace nomq::asio
