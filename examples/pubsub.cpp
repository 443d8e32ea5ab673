// NoMQ API example (docs/api.md): two nodes in one process on loopback.
//  - `sensor` runs its loop on a background thread (start()) and publishes at QoS 2.
//  - `logger` runs inside this thread's own loop (run_once() / Listener::next() drive it).
// Built and run as a CTest test; exits 0 when the message arrived and was acknowledged.
#include <nomq/config.hpp>
#include <nomq/node.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

int main() {
  nomq::set_log_level(nomq::LogLevel::info);  // quiet (off) unless asked

  // Both nodes share keys. A real deployment loads them: nomq::Node::load("nomq.json").
  auto config = nomq::generate_config();
  if (!config) {
    std::fprintf(stderr, "keys: %s\n", config.error().c_str());  // the code's reason, one line
    return 1;
  }
  config->group = "127.255.255.255";  // loopback broadcast: nothing leaves the host
  config->ip = "127.0.0.1";
  config->port = 0;                   // a free group port (the first node picks it)
  auto options = nomq::to_node_options(*config);
  if (!options) {
    std::fprintf(stderr, "config: %s\n", options.error().c_str());  // "group: ..."
    return 1;
  }

  auto logger = nomq::Node::create(*options);
  if (!logger) {
    // e.g. io_error "bind 127.0.0.1:0: Address already in use"
    std::fprintf(stderr, "logger: %s: %s\n", std::string{logger.error().name()}.c_str(),
                 logger.error().c_str());
    return 1;
  }
  options->network.group = (*logger)->group();  // the group port the first node got
  auto sensor = nomq::Node::create(*options);
  if (!sensor) return 1;

  // Mode 1: a background thread runs the sensor's loop.
  if (!(*sensor)->start()) return 1;

  // Mode 2: the logger runs in this thread. Its listener drives the loop while it waits.
  auto inbox = (*logger)->listen();
  (*logger)->on_message([](const nomq::Message& m) {
    std::printf("callback: %s = %s\n", m.channel.c_str(), m.message.c_str());
  });
  if (!(*logger)->subscribe("plant/line1/temp", 0)) return 1;
  (void)(*logger)->run_once(0ms);  // send the announcement now

  // publish() is thread-safe; QoS 2 waits (up to 5 s here) for a subscriber to be known.
  nomq::PublishOptions options2;
  options2.qos = nomq::Qos::exactly_once;
  options2.wait_for_subscribers = 5s;
  auto sent = (*sensor)->publish("plant/line1/temp", "21.5", options2);
  if (!sent) {
    std::fprintf(stderr, "publish: %s\n", sent.error().c_str());
    return 1;
  }
  auto msg = inbox.next(5s);  // the original's listen().mssg(), with a timeout
  if (!msg) {
    std::fprintf(stderr, "nothing received\n");
    return 1;
  }
  std::printf("listener: %s = %s (QoS %d from %08x)\n", msg->channel.c_str(), msg->message.c_str(),
              static_cast<int>(msg->qos), msg->sender_session);

  // Keep the logger's loop turning until the sensor's QoS 2 handshake completes. An
  // application with its own poll()/epoll() would watch logger->fd() and next_timeout().
  std::optional<nomq::Delivery> report;
  for (int i = 0; i < 100 && !report; ++i) {
    (void)(*logger)->run_once(50ms);
    report = sent->wait_for(0ms);
  }
  if (!report || !report->all_acknowledged()) {
    std::fprintf(stderr, "not acknowledged\n");
    return 1;
  }
  std::printf("report: message %u acknowledged by %zu recipient(s)\n", report->message_id,
              report->recipients.size());

  // A burst: while a Batch lives, the datagrams leave in sendmmsg() calls of up to 32.
  const std::string readings[] = {"21.6", "21.7", "21.8"};
  {
    nomq::Node::Batch batch = (*sensor)->batch();
    for (const auto& reading : readings) {
      if (!(*sensor)->publish("plant/line1/temp", reading)) return 1;
    }
  }  // the rest leaves here

  // gen_signature / authenticate: a MAC under the shared key (v2: HMAC-SHA256).
  const nomq::Digest sig = (*sensor)->gen_signature("auth");
  if (!(*logger)->authenticate(sig, "auth")) return 1;

  const auto left = (*sensor)->close();  // undelivered reports, none here
  (*logger)->close();
  return left.empty() ? 0 : 1;
}
