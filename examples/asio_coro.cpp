// NoMQ on Asio with C++20 coroutines (docs/asio.md): two nodes on one io_context, one thread.
//  - `sensor` publishes readings at QoS 1 from a coroutine and awaits each delivery report.
//  - `logger` receives them in another coroutine.
//  - a receive raced against a timer (operator||) shows per-operation cancellation.
// Built and run as a CTest test (example.asio_coro); exits 0 when every reading arrived and
// was acknowledged.
#include <nomq/asio.hpp>
#include <nomq/config.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <system_error>
#include <variant>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr int kReadings = 5;

asio::awaitable<void> logger_task(nomq::asio::node& logger, int& received) {
  for (int i = 0; i < kReadings; ++i) {
    nomq::Message m = co_await logger.async_receive(asio::use_awaitable);
    std::printf("logger: %s = %s (QoS %d from %s)\n", m.channel.c_str(), m.message.c_str(),
                static_cast<int>(m.qos), nomq::to_string(m.from).c_str());
    ++received;
  }
}

asio::awaitable<void> sensor_task(nomq::asio::node& sensor, int& acknowledged) {
  nomq::PublishOptions qos1;
  qos1.qos = nomq::Qos::at_least_once;
  qos1.wait_for_subscribers = 5s;  // the logger's announcement may still be on its way
  for (int i = 0; i < kReadings; ++i) {
    char reading[16];
    std::snprintf(reading, sizeof reading, "%.1f", 21.5 + 0.1 * i);
    nomq::Delivery d =
        co_await sensor.async_publish("plant/line1/temp", reading, qos1, asio::use_awaitable);
    std::printf("sensor: message %u %s, %zu recipient(s)\n", d.message_id,
                std::string{nomq::to_string(d.reason)}.c_str(), d.recipients.size());
    if (d.all_acknowledged()) ++acknowledged;
  }
}

int main() {
  auto config = nomq::generate_config();  // shared keys; a deployment loads nomq.json
  if (!config) return 1;
  config->group = "127.255.255.255";  // loopback broadcast: nothing leaves the host
  config->ip = "127.0.0.1";
  config->port = 0;  // a free group port (the first node picks it)
  auto options = nomq::to_node_options(*config);
  if (!options) return 1;

  asio::io_context io;
  auto logger = nomq::asio::node::create(io.get_executor(), *options);
  if (!logger) {
    std::fprintf(stderr, "logger: %s\n", logger.error().c_str());
    return 1;
  }
  options->network.group = logger->node().group();  // the group port the first node got
  auto sensor = nomq::asio::node::create(io.get_executor(), *options);
  if (!sensor) return 1;
  if (!logger->subscribe("plant/line1/temp")) return 1;

  int received = 0;
  int acknowledged = 0;
  bool timed_out = false;
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // Both coroutines at once; && waits for both.
        co_await (logger_task(*logger, received) && sensor_task(*sensor, acknowledged));

        // A receive with a deadline: whichever ends first cancels the other.
        asio::steady_timer deadline(io, 100ms);
        std::variant<nomq::Message, std::monostate> r = co_await (
            logger->async_receive(asio::use_awaitable) || deadline.async_wait(asio::use_awaitable));
        timed_out = r.index() == 1;
        std::printf("no more readings within 100 ms: %s\n", timed_out ? "yes" : "no");

        // Wait (without blocking the loop) for what is still unacknowledged, then close.
        std::vector<nomq::Delivery> left = co_await sensor->async_close(1s, asio::use_awaitable);
        std::printf("sensor closed, %zu message(s) not acknowledged\n", left.size());
        logger->close();
      },
      [&](std::exception_ptr e) { failure = e; });
  io.run();  // returns once both nodes are closed and the coroutine has ended

  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "failed: %s\n", e.what());
    }
    return 1;
  }
  return received == kReadings && acknowledged == kReadings && timed_out ? 0 : 1;
}
