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
  std::optional<std::string> group;          // --group ADDR[:PORT]
  std::optional<std::uint16_t> unicast_port;  // --unicast-port PORT
  bool debug = false;
};

// Adds -c/--config, --wire, --epoch, -p/--port, --group, --unicast-port, -d/--debug.
void add_node_options(CLI::App& app, NodeArgs& args);

// One line on stderr ("Error: ..." + "Use 'nomq <cmd> --help' ..."), exit code 2: for semantic
// mistakes CLI11 cannot see.
int usage_error(const std::string& command, const std::string& line);

// Loads the config, applies the overrides and creates the node (not started). On failure prints
// one line and returns nullptr with `exit_code` set (2: bad config or arguments, 1: sockets).
// `adjust`: last changes to the node's options before it is created (see the callers for why);
// a non-empty return is a usage error (printed, exit 2) found once the options are known.
using AdjustOptions = std::function<std::string(NodeOptions&)>;
std::unique_ptr<Node> make_node(const std::string& command, const NodeArgs& args,
                                NodeConfig& config_out, int& exit_code,
                                const AdjustOptions& adjust = {});

// A CLI11 validator for -p/--port: 1..65535.
CLI::Validator port_validator();

// The checks of a channel given with -t, as a usage error text ("" when fine): empty, longer
// than the wire allows (255 bytes).
std::string channel_problem(const std::string& channel);

// "127.0.0.1:5000".
std::string endpoint_text(const Endpoint& e);

}  // namespace nomq::cli
