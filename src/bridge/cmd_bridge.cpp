// `nomq bridge -c bridge.json`: joins the NoMQ group to an MQTT broker (docs/bridge.md).
#include <cstdio>
#include <memory>

#include "bridge/bridge.hpp"
#include "cli/command.hpp"

namespace nomq::cli {
namespace {

struct BridgeArgs {
  std::string config;
  bool json = false;
  bool debug = false;
  bool check = false;
};

int run(const BridgeArgs& a) {
  auto cfg = bridge::load_bridge_config(a.config);
  if (!cfg) {
    std::fprintf(stderr, "Error: %s\n", error_text(cfg.error()).c_str());
    return kExitUsage;
  }
  if (a.check) {
    std::printf("%s: ok, %zu rules\n", a.config.c_str(), cfg->rules.size());
    return kExitOk;
  }
  bridge::RunOptions o;
  o.json_stats = a.json;
  o.debug = a.debug;
  return bridge::run_bridge(*cfg, o);
}

std::function<int()> setup(CLI::App& app) {
  auto a = std::make_shared<BridgeArgs>();
  app.add_option("-c,--config", a->config, "Bridge config (JSON, docs/bridge.md)")->required();
  app.add_flag("--json", a->json, "Stats lines as JSON objects");
  app.add_flag("--check", a->check, "Check the config and exit (0: valid, 2: the first error)");
  app.add_flag("-d,--debug", a->debug, "Log the node's activity to stderr");
  return [a] { return run(*a); };
}

NOMQ_CLI_COMMAND("bridge", "Bridge NoMQ channels to an MQTT broker, with store-and-forward", setup);

}  // namespace
}  // namespace nomq::cli
