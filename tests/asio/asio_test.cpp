// nomq::asio (include/nomq/asio.hpp) on loopback: nodes on 127.255.255.255 and a free group port
// per test, driven by one io_context on the test's thread. Nothing sleeps: every test waits for
// completions (coroutines, handlers, futures); a watchdog timer fails a test that hangs.
#include <gtest/gtest.h>
#include <poll.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <variant>
#include <vector>

#include "nomq/asio.hpp"
#include "nomq/config.hpp"

namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using nomq::Errc;

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

class AsioNode : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = nomq::generate_config();
    ASSERT_TRUE(config) << config.error().c_str();
    config->group = "127.255.255.255";
    config->ip = "127.0.0.1";
    config->port = 0;
    auto options = nomq::to_node_options(*config);
    ASSERT_TRUE(options) << options.error().c_str();
    options_ = *options;
  }

  // A node on the test's group (the first one picks the group port).
  nomq::asio::node& make_node() {
    auto n = nomq::asio::node::create(io_.get_executor(), options_);
    if (!n) {
      ADD_FAILURE() << n.error().c_str();
      std::abort();
    }
    options_.network.group = n->node().group();
    return nodes_.emplace_back(std::move(*n));
  }

  // Runs `task` on the io_context until it ends, then closes every node so that run() returns.
  void run(std::function<asio::awaitable<void>()> task) {
    bool done = false;
    std::exception_ptr failure;
    asio::steady_timer watchdog(io_, 30s);
    watchdog.async_wait([&](std::error_code ec) {
      if (ec) return;
      ADD_FAILURE() << "watchdog: the test did not end within 30 s";
      io_.stop();
    });
    asio::co_spawn(io_, std::move(task), [&](std::exception_ptr e) {
      done = true;
      failure = e;
      watchdog.cancel();
      for (auto& n : nodes_) n.close();
    });
    io_.run();
    ASSERT_TRUE(done);
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        FAIL() << "the test's coroutine threw: " << e.what();
      }
    }
  }

  // Runs ready handlers until `cond` holds (each run_one() waits for the next completion).
  template <class Cond>
  void run_until(Cond cond) {
    while (!cond()) {
      ASSERT_GT(io_.run_one_for(30s), 0u) << "nothing completed within 30 s";
    }
  }

  static nomq::PublishOptions qos1(nomq::Duration wait = 5s) {
    nomq::PublishOptions o;
    o.qos = nomq::Qos::at_least_once;
    o.wait_for_subscribers = wait;
    return o;
  }

  asio::io_context io_;
  nomq::NodeOptions options_;
  std::deque<nomq::asio::node> nodes_;
};

// Eight publishing coroutines and four receiving ones on one io_context: every QoS 1 message
// arrives exactly once and every report says it was acknowledged.
TEST_F(AsioNode, ManyCoroutinesPublishAndReceiveOnOneIoContext) {
  auto& publisher = make_node();
  auto& subscriber = make_node();
  ASSERT_TRUE(subscriber.subscribe("test/many"));
  constexpr int kPublishers = 8;
  constexpr int kEach = 15;
  constexpr int kReceivers = 4;
  std::multiset<std::string> received;
  std::map<int, int> per_receiver;
  int acknowledged = 0;

  int tasks_left = kReceivers + kPublishers;
  std::vector<std::exception_ptr> failures;
  auto task_done = [&](std::exception_ptr e) {
    if (e) failures.push_back(e);
    if (--tasks_left == 0) {
      for (auto& n : nodes_) n.close();
    }
  };
  for (int r = 0; r < kReceivers; ++r) {
    asio::co_spawn(io_, [&, r]() -> asio::awaitable<void> {
      for (;;) {
        auto [ec, m] = co_await subscriber.async_receive(use_tuple);
        if (ec == asio::error::operation_aborted) co_return;  // everything received: see below
        EXPECT_FALSE(ec) << ec.message();
        if (ec) co_return;
        EXPECT_EQ(m.channel, "test/many");
        received.insert(m.message);
        ++per_receiver[r];
        // The last message: release the receivers still waiting.
        if (received.size() == kPublishers * kEach) {
          subscriber.cancel();
          co_return;
        }
      }
    }, task_done);
  }
  for (int p = 0; p < kPublishers; ++p) {
    asio::co_spawn(io_, [&, p]() -> asio::awaitable<void> {
      for (int i = 0; i < kEach; ++i) {
        const std::string text = std::to_string(p) + "/" + std::to_string(i);
        nomq::Delivery d = co_await publisher.async_publish("test/many", text, qos1(), asio::use_awaitable);
        EXPECT_TRUE(d.all_acknowledged()) << nomq::to_string(d.reason);
        EXPECT_EQ(d.recipients.size(), 1u);
        acknowledged += d.all_acknowledged() ? 1 : 0;
      }
    }, task_done);
  }
  asio::steady_timer watchdog(io_, 30s);
  watchdog.async_wait([&](std::error_code ec) {
    if (ec) return;
    ADD_FAILURE() << "watchdog: " << received.size() << " received, " << acknowledged << " acknowledged";
    io_.stop();
  });
  // Ends when every coroutine has ended and the nodes are closed (the watchdog is cancelled
  // by then: the last task closes the nodes, the timer is the only work left).
  while (tasks_left > 0 && io_.run_one() > 0) {
  }
  watchdog.cancel();
  io_.run();
  EXPECT_TRUE(failures.empty());

  EXPECT_EQ(acknowledged, kPublishers * kEach);
  ASSERT_EQ(received.size(), static_cast<std::size_t>(kPublishers * kEach));
  for (int p = 0; p < kPublishers; ++p) {
    for (int i = 0; i < kEach; ++i) {
      EXPECT_EQ(received.count(std::to_string(p) + "/" + std::to_string(i)), 1u) << p << "/" << i;
    }
  }
  EXPECT_GE(per_receiver.size(), 1u);
}

// A QoS 1 report awaited with a coroutine names the subscriber that acknowledged it.
TEST_F(AsioNode, Qos1ReportAwaitedNamesTheRecipient) {
  auto& publisher = make_node();
  auto& subscriber = make_node();
  ASSERT_TRUE(subscriber.subscribe("test/report"));
  run([&]() -> asio::awaitable<void> {
    nomq::Delivery d = co_await publisher.async_publish("test/report", "21.5", qos1(), asio::use_awaitable);
    EXPECT_TRUE(d.all_acknowledged());
    EXPECT_EQ(d.channel, "test/report");
    EXPECT_EQ(d.qos, nomq::Qos::at_least_once);
    EXPECT_EQ(d.recipients.size(), 1u);
    if (d.recipients.empty()) co_return;
    EXPECT_EQ(d.recipients[0].state, nomq::RecipientState::acknowledged);
    EXPECT_EQ(d.recipients[0].endpoint, subscriber.node().local_endpoint());
    nomq::Message m = co_await subscriber.async_receive(asio::use_awaitable);
    EXPECT_EQ(m.message, "21.5");
    EXPECT_EQ(m.qos, nomq::Qos::at_least_once);
    EXPECT_EQ(m.from, publisher.node().local_endpoint());
  });
}

// Callbacks and use_future are completion tokens too; a handler never runs inside the
// initiating call.
TEST_F(AsioNode, CallbackAndFutureTokens) {
  auto& publisher = make_node();
  auto& subscriber = make_node();
  ASSERT_TRUE(subscriber.subscribe("test/tokens"));

  std::optional<nomq::Delivery> report;
  publisher.async_publish("test/tokens", "cb", qos1(), [&](std::error_code ec, nomq::Delivery d) {
    EXPECT_FALSE(ec);
    report = std::move(d);
  });
  EXPECT_FALSE(report);  // not from inside async_publish
  run_until([&] { return report.has_value(); });
  EXPECT_TRUE(report->all_acknowledged());

  std::future<nomq::Message> first = subscriber.async_receive(asio::use_future);
  run_until([&] { return first.wait_for(0s) == std::future_status::ready; });
  EXPECT_EQ(first.get().message, "cb");

  // QoS 0 completes with its (empty) report at once, posted.
  std::future<nomq::Delivery> qos0 = publisher.async_publish("test/tokens", "zero", asio::use_future);
  run_until([&] { return qos0.wait_for(0s) == std::future_status::ready; });
  const nomq::Delivery d0 = qos0.get();
  EXPECT_EQ(d0.reason, Errc::ok);
  EXPECT_NE(d0.message_id, 0u);

  // An error from publish arrives as the handler's error code (and as an exception through a
  // future).
  std::future<nomq::Delivery> bad = publisher.async_publish("", "x", asio::use_future);
  run_until([&] { return bad.wait_for(0s) == std::future_status::ready; });
  try {
    bad.get();
    ADD_FAILURE() << "an empty channel name was accepted";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), nomq::make_error_code(Errc::invalid_argument)) << e.code().message();
  }
  for (auto& n : nodes_) n.close();
  io_.run();
}

// A cancelled receive loses nothing: the message goes to the next receive. Terminal, partial
// and total signals all cancel a receive.
TEST_F(AsioNode, CancelledReceiveLosesNoMessage) {
  auto& publisher = make_node();
  auto& subscriber = make_node();
  ASSERT_TRUE(subscriber.subscribe("test/cancel"));
  for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                    asio::cancellation_type::total}) {
    asio::cancellation_signal signal;
    std::optional<std::error_code> result;
    subscriber.async_receive(asio::bind_cancellation_slot(
        signal.slot(), [&](std::error_code ec, nomq::Message) { result = ec; }));
    io_.poll();  // the receive is pending: no message was sent
    EXPECT_FALSE(result);
    signal.emit(type);
    run_until([&] { return result.has_value(); });
    EXPECT_EQ(*result, asio::error::operation_aborted);
  }
  std::future<nomq::Delivery> sent = publisher.async_publish("test/cancel", "kept", qos1(), asio::use_future);
  run_until([&] { return sent.wait_for(0s) == std::future_status::ready; });
  EXPECT_TRUE(sent.get().all_acknowledged());
  std::future<nomq::Message> next = subscriber.async_receive(asio::use_future);
  run_until([&] { return next.wait_for(0s) == std::future_status::ready; });
  EXPECT_EQ(next.get().message, "kept");
  for (auto& n : nodes_) n.close();
  io_.run();
}

// operator|| cancels the operation that did not finish first (terminal cancellation).
TEST_F(AsioNode, AwaitableOrCancelsTheLoser) {
  auto& publisher = make_node();
  auto& subscriber = make_node();
  ASSERT_TRUE(subscriber.subscribe("test/other"));
  run([&]() -> asio::awaitable<void> {
    // Nothing is published on test/other: the QoS 0 publish ends first, the receive is cancelled.
    std::variant<nomq::Message, nomq::Delivery> r = co_await (
        subscriber.async_receive(asio::use_awaitable) ||
        publisher.async_publish("test/unheard", "x", asio::use_awaitable));
    EXPECT_EQ(r.index(), 1u);
    // The subscriber still works, and the cancelled receive took nothing.
    nomq::Delivery d = co_await publisher.async_publish("test/other", "y", qos1(), asio::use_awaitable);
    EXPECT_TRUE(d.all_acknowledged());
    nomq::Message m = co_await subscriber.async_receive(asio::use_awaitable);
    EXPECT_EQ(m.message, "y");
  });
}

// async_publish accepts terminal and partial cancellation (the wait for the report ends, the
// message stays in flight) and ignores total (its message has already left).
TEST_F(AsioNode, PublishCancellationStopsTheWaitNotTheDelivery) {
  auto& publisher = make_node();
  asio::cancellation_signal signal;
  std::optional<std::error_code> result;
  // No subscriber: the publish waits for one for up to 10 s.
  publisher.async_publish("test/nobody", "x", qos1(10s),
                          asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, nomq::Delivery) {
                            result = ec;
                          }));
  io_.poll();
  EXPECT_FALSE(result);
  signal.emit(asio::cancellation_type::total);
  io_.poll();
  EXPECT_FALSE(result) << "total cancellation must not cancel a publish whose message has left";
  signal.emit(asio::cancellation_type::partial);
  run_until([&] { return result.has_value(); });
  EXPECT_EQ(*result, asio::error::operation_aborted);
  EXPECT_EQ(publisher.node().pending_count(), 1u);  // the message is still in flight
  const std::vector<nomq::Delivery> left = publisher.close();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].reason, Errc::closed);
  io_.run();
}

// A cancelled async_wait_report leaves the publish alone: its handle is awaited again and gets
// the report once a subscriber appears and acknowledges.
TEST_F(AsioNode, WaitReportCancelledThenAwaitedAgain) {
  auto& publisher = make_node();
  auto& subscriber = make_node();
  auto handle = publisher.publish("test/late", "hello", qos1(10s));
  ASSERT_TRUE(handle) << handle.error().c_str();
  asio::cancellation_signal signal;
  std::optional<std::error_code> first;
  publisher.async_wait_report(*handle, asio::bind_cancellation_slot(
                                           signal.slot(), [&](std::error_code ec, nomq::Delivery) { first = ec; }));
  io_.poll();
  EXPECT_FALSE(first);
  signal.emit(asio::cancellation_type::total);
  run_until([&] { return first.has_value(); });
  EXPECT_EQ(*first, asio::error::operation_aborted);

  // Now a subscriber appears: its announcement lets the pending publish reach it.
  ASSERT_TRUE(subscriber.subscribe("test/late"));
  run([&]() -> asio::awaitable<void> {
    nomq::Delivery d = co_await publisher.async_wait_report(*handle, asio::use_awaitable);
    EXPECT_TRUE(d.all_acknowledged()) << nomq::to_string(d.reason);
    EXPECT_EQ(d.message_id, handle->message_id());
    nomq::Message m = co_await subscriber.async_receive(asio::use_awaitable);
    EXPECT_EQ(m.message, "hello");
  });
}

// close() while operations are pending: receives end with `closed`, publishes and report waits
// with their reports (reason closed); operations started after close() fail with `closed`,
// posted like any completion.
TEST_F(AsioNode, CloseWhileOperationsArePending) {
  auto& publisher = make_node();
  auto& subscriber = make_node();
  ASSERT_TRUE(subscriber.subscribe("test/close"));
  std::vector<std::error_code> receives;
  for (int i = 0; i < 3; ++i) {
    subscriber.async_receive([&](std::error_code ec, nomq::Message) { receives.push_back(ec); });
  }
  std::optional<nomq::Delivery> published;
  publisher.async_publish("test/nobody", "x", qos1(10s), [&](std::error_code ec, nomq::Delivery d) {
    EXPECT_FALSE(ec);
    published = std::move(d);
  });
  auto handle = publisher.publish("test/nobody2", "y", qos1(10s));
  ASSERT_TRUE(handle);
  std::optional<nomq::Delivery> waited;
  publisher.async_wait_report(*handle, [&](std::error_code ec, nomq::Delivery d) {
    EXPECT_FALSE(ec);
    waited = std::move(d);
  });
  io_.poll();
  EXPECT_TRUE(receives.empty());
  EXPECT_FALSE(published);

  const std::vector<nomq::Delivery> left = publisher.close();
  EXPECT_EQ(left.size(), 2u);
  subscriber.close();
  EXPECT_FALSE(publisher.is_open());

  bool late_called = false;
  std::error_code late;
  subscriber.async_receive([&](std::error_code ec, nomq::Message) {
    late_called = true;
    late = ec;
  });
  EXPECT_FALSE(late_called);  // posted, not invoked inside async_receive
  std::optional<std::error_code> late_publish;
  publisher.async_publish("test/close", "z", [&](std::error_code ec, nomq::Delivery) { late_publish = ec; });

  io_.run();  // nothing keeps the io_context busy any more: run() returns
  ASSERT_EQ(receives.size(), 3u);
  for (auto ec : receives) EXPECT_EQ(ec, nomq::make_error_code(Errc::closed));
  ASSERT_TRUE(published);
  EXPECT_EQ(published->reason, Errc::closed);
  ASSERT_TRUE(waited);
  EXPECT_EQ(waited->reason, Errc::closed);
  EXPECT_EQ(waited->message_id, handle->message_id());
  EXPECT_TRUE(late_called);
  EXPECT_EQ(late, nomq::make_error_code(Errc::closed));
  ASSERT_TRUE(late_publish);
  EXPECT_EQ(*late_publish, nomq::make_error_code(Errc::closed));
  // A report that exists is still handed out after close.
  std::optional<nomq::Delivery> after;
  publisher.async_wait_report(*handle, [&](std::error_code ec, nomq::Delivery d) {
    EXPECT_FALSE(ec);
    after = std::move(d);
  });
  io_.restart();
  io_.run();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->reason, Errc::closed);
}

// async_close lingers without blocking the loop: the subscriber's acknowledgement arrives
// through the same io_context, and nothing is left undelivered.
TEST_F(AsioNode, AsyncCloseWaitsForAcknowledgements) {
  auto& publisher = make_node();
  auto& subscriber = make_node();
  ASSERT_TRUE(subscriber.subscribe("test/linger"));
  run([&]() -> asio::awaitable<void> {
    // Make sure the subscriber is known, then leave one publish pending and close at once.
    nomq::Delivery first = co_await publisher.async_publish("test/linger", "1", qos1(), asio::use_awaitable);
    EXPECT_TRUE(first.all_acknowledged());
    auto h = publisher.publish("test/linger", "2", qos1());
    EXPECT_TRUE(h);
    EXPECT_EQ(publisher.node().pending_count(), 1u);
    std::vector<nomq::Delivery> left = co_await publisher.async_close(10s, asio::use_awaitable);
    EXPECT_TRUE(left.empty());
    EXPECT_FALSE(publisher.is_open());
    for (const char* expected : {"1", "2"}) {
      nomq::Message m = co_await subscriber.async_receive(asio::use_awaitable);
      EXPECT_EQ(m.message, expected);
    }
    auto [ec, again] = co_await publisher.async_close(0s, use_tuple);
    EXPECT_EQ(ec, nomq::make_error_code(Errc::closed));
  });
}

// cancel() ends every pending operation with operation_aborted; the node goes on working.
TEST_F(AsioNode, CancelAllThenContinue) {
  auto& publisher = make_node();
  auto& subscriber = make_node();
  ASSERT_TRUE(subscriber.subscribe("test/cancel-all"));
  int aborted = 0;
  for (int i = 0; i < 4; ++i) {
    subscriber.async_receive([&](std::error_code ec, nomq::Message) {
      if (ec == asio::error::operation_aborted) ++aborted;
    });
  }
  subscriber.cancel();
  run_until([&] { return aborted == 4; });
  run([&]() -> asio::awaitable<void> {
    nomq::Delivery d = co_await publisher.async_publish("test/cancel-all", "after", qos1(), asio::use_awaitable);
    EXPECT_TRUE(d.all_acknowledged());
    nomq::Message m = co_await subscriber.async_receive(asio::use_awaitable);
    EXPECT_EQ(m.message, "after");
  });
}

// A node on a strand of an io_context run by two threads: operations and completions stay on
// the strand, and messages still flow.
TEST_F(AsioNode, StrandExecutorWithTwoThreads) {
  using strand = asio::strand<asio::io_context::executor_type>;
  auto s = asio::make_strand(io_);
  auto sub = nomq::asio::basic_node<strand>::create(s, options_);
  ASSERT_TRUE(sub) << sub.error().c_str();
  options_.network.group = sub->node().group();
  auto pub = nomq::asio::basic_node<strand>::create(s, options_);
  ASSERT_TRUE(pub);
  ASSERT_TRUE(sub->subscribe("test/strand"));
  std::promise<std::string> got;
  asio::co_spawn(s, [&]() -> asio::awaitable<void> {
    nomq::Delivery d = co_await pub->async_publish("test/strand", "on a strand", qos1(), asio::use_awaitable);
    EXPECT_TRUE(d.all_acknowledged());
    nomq::Message m = co_await sub->async_receive(asio::use_awaitable);
    EXPECT_TRUE(s.running_in_this_thread());
    pub->close();
    sub->close();
    got.set_value(m.message);
  }, asio::detached);
  std::thread second([&] { io_.run(); });
  io_.run();
  second.join();
  EXPECT_EQ(got.get_future().get(), "on a strand");
}

// The Node itself: a QoS 1/2 publish from another thread that moves the next timer earlier (its
// first retransmission, 200 ms, before the node's other timers) makes fd() readable, so a
// poll() loop waiting on the old next_timeout() wakes up. The publish is unicast to a node that
// never answers, so no datagram makes the fd readable instead.
TEST(NodeFd, PublishFromAnotherThreadWakesAPollLoop) {
  auto config = nomq::generate_config();
  ASSERT_TRUE(config);
  config->group = "127.255.255.255";
  config->ip = "127.0.0.1";
  config->port = 0;
  auto options = nomq::to_node_options(*config);
  ASSERT_TRUE(options);
  auto node = nomq::Node::create(*options);
  ASSERT_TRUE(node) << node.error().c_str();
  options->network.group = (*node)->group();
  // A subscriber whose loop never runs: it announces its subscription and never acknowledges.
  auto silent = nomq::Node::create(*options);
  ASSERT_TRUE(silent);
  ASSERT_TRUE((*silent)->subscribe("test/fd"));

  // Run the loop as a poll() caller would until its next timer is more than 300 ms away (the
  // start-up solicitations are done) and nothing is readable: it would now sleep.
  ::pollfd p{(*node)->fd(), POLLIN, 0};
  std::optional<nomq::Duration> before;
  for (int turns = 0; turns < 1000; ++turns) {
    before = (*node)->next_timeout();
    if (before && *before > std::chrono::milliseconds{300} && ::poll(&p, 1, 0) == 0) break;
    ASSERT_TRUE((*node)->run_once(before.value_or(std::chrono::milliseconds{100})));
  }
  ASSERT_TRUE(before);
  ASSERT_GT(*before, std::chrono::milliseconds{300});
  ASSERT_EQ(::poll(&p, 1, 0), 0);

  nomq::PublishOptions o;
  o.qos = nomq::Qos::at_least_once;
  o.destination = (*silent)->local_endpoint();  // unicast: nothing comes back to this node
  std::thread other([&] { EXPECT_TRUE((*node)->publish("test/fd", "x", o)); });
  other.join();
  const auto after = (*node)->next_timeout();
  ASSERT_TRUE(after);
  EXPECT_LE(*after, std::chrono::milliseconds{200});
  EXPECT_EQ(::poll(&p, 1, 0), 1) << "fd() not readable: a poll() loop would sleep past the new timer";
  ASSERT_TRUE((*node)->run_once(nomq::Duration::zero()));  // consumes the wake-up
  (*node)->close();
  (*silent)->close();
}

}  // namespace
