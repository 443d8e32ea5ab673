// nomq::asio from the installed package (tests/package): one QoS 0 publish, completed through
// the io_context.
#include <nomq/asio.hpp>
#include <nomq/config.hpp>

#include <asio/io_context.hpp>
#include <cstdio>

int main() {
  auto config = nomq::generate_config();
  if (!config) return 1;
  config->group = "127.255.255.255";
  config->ip = "127.0.0.1";
  config->port = 0;
  auto options = nomq::to_node_options(*config);
  if (!options) return 1;
  asio::io_context io;
  auto node = nomq::asio::node::create(io.get_executor(), *options);
  if (!node) return 1;
  bool ok = false;
  node->async_publish("consumer/asio", "hello", [&](std::error_code ec, nomq::Delivery d) {
    ok = !ec && d.reason == nomq::Errc::ok;
    node->close();
  });
  io.run();
  std::printf("asio publish: %s\n", ok ? "ok" : "failed");
  return ok ? 0 : 1;
}
