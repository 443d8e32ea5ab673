// Shared by `nomq pub` and `nomq sub`: the options both take (-c, --wire, --epoch, -p, -d), and
// turning them plus the config file into a running node.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "nomq/config.hpp"
#include "nomq/node.hpp"

namespace nomq::cli {

struct NodeArgs {
  std::string config_path;
  bool insecure_key_file = false;  // --insecure-key-file: accept a group/other-readable config
  std::string wire;    // "", "v1", "v2"
  std::string epoch;   // "", "1970", "2000"
  std::optional<std::uint16_t> port;
  bool debug = false;
};

// Adds -c/--config, --wire, --epoch, -p/--port, -d/--debug.
void add_node_options(CLI::App& app, NodeArgs& args);

// One line on stderr ("Error: ..." + "Use 'nomq <cmd> --help' ..."), exit code 2: for semantic
// mistakes CLI11 cannot see.
int usage_error(const std::string& command, const std::string& line);

// Loads the config, applies the overrides and creates the node (not started). On failure prints
// one line and returns nullptr with `exit_code` set (2: bad config or arguments, 1: sockets).
// `adjust`: last changes to the node's options before it is created (see the callers for why).
std::unique_ptr<Node> make_node(const std::string& command, const NodeArgs& args,
                                NodeConfig& config_out, int& exit_code,
                                const std::function<void(NodeOptions&)>& adjust = {});

// "127.0.0.1:5000".
std::string endpoint_text(const Endpoint& e);

}  // namespace nomq::cli
