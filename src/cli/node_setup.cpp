#include "cli/node_setup.hpp"

#include <cstdio>

#include "cli/command.hpp"
#include "nomq/endpoint_io.hpp"

namespace nomq::cli {

void add_node_options(CLI::App& app, NodeArgs& args) {
  app.add_option("-c,--config", args.config_path,
                 "Config file (JSON or the original's format), e.g. from 'nomq keygen'")
      ->required();
  app.add_flag("--insecure-key-file", args.insecure_key_file,
               "Accept a config file readable or writable by group or others (refused otherwise: "
               "it holds the keys)");
  app.add_option("--wire", args.wire, "Wire version, overrides the config [default: from config]")
      ->check(CLI::IsMember({"v1", "v2"}));
  app.add_option("--epoch", args.epoch,
                 "Clock epoch of wire timestamps, overrides the config [default: from config]")
      ->check(CLI::IsMember({"1970", "2000"}));
  app.add_option("-p,--port", args.port,
                 "Group port, overrides the config's 'port' [default: from config, 8888]");
  app.add_flag("-d,--debug", args.debug, "Debug log on stderr: packets, peers, drops and why");
}

int usage_error(const std::string& command, const std::string& line) {
  std::fprintf(stderr, "Error: %s\nUse 'nomq %s --help' to see usage.\n", line.c_str(),
               command.c_str());
  return kExitUsage;
}

std::string endpoint_text(const Endpoint& e) { return to_string(e); }

std::unique_ptr<Node> make_node(const std::string& command, const NodeArgs& args,
                                NodeConfig& config_out, int& exit_code,
                                const std::function<void(NodeOptions&)>& adjust) {
  auto loaded = load_config(args.config_path,
                            LoadOptions{.allow_insecure_permissions = args.insecure_key_file});
  if (!loaded) {
    std::fprintf(stderr, "Error: %s\n", loaded.error().c_str());
    exit_code = kExitUsage;
    return nullptr;
  }
  // Each warning line starts "WARNING: " already.
  if (!loaded->warning.empty()) std::fprintf(stderr, "%s\n", loaded->warning.c_str());
  NodeConfig config = loaded->config;
  if (args.wire == "v1") config.wire = WireVersion::v1;
  if (args.wire == "v2") config.wire = WireVersion::v2;
  if (args.epoch == "1970") config.epoch = Epoch::e1970;
  if (args.epoch == "2000") config.epoch = Epoch::e2000;
  if (args.port) config.port = *args.port;
  set_log_level(args.debug ? LogLevel::debug : LogLevel::warning);

  auto options = to_node_options(config);
  if (!options) {
    exit_code = usage_error(command, args.config_path + ": " + std::string{options.error().message()});
    return nullptr;
  }
  if (adjust) adjust(*options);
  auto node = Node::create(*options);
  if (!node) {
    std::fprintf(stderr, "Error: cannot start the node: %s; is the group address/interface "
                 "right?\n", error_text(node.error()).c_str());
    exit_code = kExitFailure;
    return nullptr;
  }
  config_out = config;
  exit_code = kExitOk;
  return std::move(*node);
}

}  // namespace nomq::cli
