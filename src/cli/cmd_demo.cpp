// `nomq demo`: three nodes in one process on loopback exchange QoS 0/1/2 messages and hand a
// retained message to a late joiner, printing what happens. Exit 0 when every step worked.
//
// Loopback only: the group is 127.255.255.255 (the loopback broadcast) on a group port the
// kernel picks, so the demo works next to other NoMQ processes and never leaves the host.
#include <cstdio>
#include <string>

#include "cli/command.hpp"
#include "cli/node_setup.hpp"
#include "nomq/config.hpp"

namespace nomq::cli {
namespace {

struct DemoArgs {
  std::string wire = "v2";
  double timeout = 10;
  bool debug = false;
};

std::string qos_text(Qos q) { return "QoS " + std::to_string(static_cast<int>(q)); }

int run_demo(const DemoArgs& a) {
  set_log_level(a.debug ? LogLevel::debug : LogLevel::warning);
  auto keys = generate_config();
  if (!keys) {
    std::fprintf(stderr, "Error: %s\n", keys.error().c_str());
    return kExitFailure;
  }
  NodeConfig config = *keys;
  config.wire = a.wire == "v1" ? WireVersion::v1 : WireVersion::v2;
  config.group = "127.255.255.255";
  config.ip = "127.0.0.1";
  config.port = 0;  // the first node's group socket gets a free port; the others reuse it
  auto options = to_node_options(config);
  if (!options) {
    std::fprintf(stderr, "Error: %s\n", options.error().c_str());
    return kExitFailure;
  }
  const auto timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(a.timeout));

  struct Named {
    const char* name;
    std::unique_ptr<Node> node;
  };
  auto make = [&](const char* name) -> Named {
    auto n = Node::create(*options);
    if (!n) return {name, nullptr};
    options->network.group = (*n)->group();  // the port the first node got
    (void)(*n)->start();
    return {name, std::move(*n)};
  };
  Named sensor = make("sensor");
  Named logger = make("logger");
  if (!sensor.node || !logger.node) {
    std::fprintf(stderr, "Error: cannot open sockets on loopback (see the line above)\n");
    return kExitFailure;
  }
  std::printf("nomq demo: wire %s, group %s (loopback broadcast), fresh random keys\n",
              a.wire.c_str(), endpoint_text(sensor.node->group()).c_str());
  for (const Named* n : {&sensor, &logger})
    std::printf("  %-8s node %08x on %s\n", n->name, n->node->session_id(),
                endpoint_text(n->node->local_endpoint()).c_str());

  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    std::printf("  %s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
  };

  const std::string channel = "plant/line1/temp";
  auto inbox = logger.node->listen();
  if (!logger.node->subscribe(channel).ok()) return kExitFailure;
  std::printf("\nlogger subscribes to '%s' and announces it to the group\n", channel.c_str());

  const bool v2 = a.wire != "v1";
  PublishOptions to_logger;
  if (!v2) to_logger.destination = logger.node->local_endpoint();  // v1 has no discovery
  const Qos levels[] = {Qos::at_least_once, Qos::exactly_once, Qos::at_most_once};
  const char* values[] = {"21.5", "21.7", "21.6"};
  for (int i = 0; i < 3; ++i) {
    PublishOptions o = to_logger;
    o.qos = levels[i];
    o.wait_for_subscribers = timeout;
    auto h = sensor.node->publish(channel, values[i], o);
    if (!h) {
      check(false, "sensor publish refused: " + error_text(h.error()));
      continue;
    }
    std::printf("\nsensor publishes \"%s\" on '%s' at %s\n", values[i], channel.c_str(), qos_text(o.qos).c_str());
    auto got = inbox.next(timeout);
    check(got && got->message == values[i],
          got ? "logger received \"" + got->message + "\" (" + qos_text(got->qos) + ") from " + endpoint_text(got->from)
              : "logger received nothing");
    if (o.qos != Qos::at_most_once) {
      auto d = h->wait_for(timeout);
      std::string who;
      if (d)
        for (const auto& r : d->recipients) who += " " + endpoint_text(r.endpoint) + " " + std::string{to_string(r.state)};
      check(d && d->all_acknowledged(),
            d ? "sensor's delivery report: " + std::string{to_string(d->reason)} + ";" + who
              : "no delivery report in time");
    }
  }
  if (auto dup = inbox.next(std::chrono::milliseconds{300}))
    check(false, "logger got an extra copy of \"" + dup->message + "\"");
  else
    check(true, "no duplicates at the logger");

  // A retained message, then a node that starts afterwards.
  const std::string setpoint = "plant/line1/setpoint";
  PublishOptions r = to_logger;
  r.qos = Qos::at_least_once;
  r.retain = true;
  r.wait_for_subscribers = timeout;
  (void)logger.node->subscribe(setpoint);
  auto retained = sensor.node->publish(setpoint, "22.0", r);
  std::printf("\nsensor publishes \"22.0\" on '%s', retained, QoS 1\n", setpoint.c_str());
  {
    auto got = inbox.next(timeout);
    check(got && got->message == "22.0", got ? "logger received \"" + got->message + "\"" : "logger received nothing");
    auto d = retained ? retained->wait_for(timeout) : std::nullopt;
    check(d && d->all_acknowledged(), d ? "sensor's delivery report: " + std::string{to_string(d->reason)}
                                        : "no delivery report in time");
  }
  if (v2) {
    Named display = make("display");
    if (!display.node) return kExitFailure;
    auto screen = display.node->listen();
    (void)display.node->subscribe(setpoint);
    std::printf("display (node %08x, started later) subscribes to '%s'\n", display.node->session_id(),
                setpoint.c_str());
    auto got = screen.next(timeout);
    check(got && got->message == "22.0" && got->retain,
          got ? "display received \"" + got->message + "\"" + (got->retain ? " (retained)" : " (not marked retained)")
              : "display received nothing");
    display.node->close();
  } else {
    std::printf("(v1 devices never announce subscriptions: no late-joiner replay in v1)\n");
  }

  auto left_sensor = sensor.node->close();
  logger.node->close();
  check(left_sensor.empty(), "sensor closes with nothing undelivered");
  std::printf("\n%s\n", failures == 0 ? "demo OK" : "demo FAILED");
  return failures == 0 ? kExitOk : kExitFailure;
}

std::function<int()> setup_demo(CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  app.add_option("--wire", a->wire, "Wire version")->check(CLI::IsMember({"v1", "v2"}))->capture_default_str();
  app.add_option("--timeout", a->timeout, "Seconds to wait for each step")->capture_default_str();
  app.add_flag("-d,--debug", a->debug, "Debug log on stderr");
  return [a] { return run_demo(*a); };
}

NOMQ_CLI_COMMAND("demo", "Three nodes on loopback exchanging QoS 0/1/2 and retained messages", setup_demo);

}  // namespace
}  // namespace nomq::cli
