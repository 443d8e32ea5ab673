#include "cli/node_setup.hpp"

#include <cstdio>
#include <algorithm>
#include <exception>
#include <string>

#include "nomq/wire.hpp"

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
                 "Group port, overrides the config's 'port' [default: from config, 8888]")
      ->check(port_validator());
  app.add_option("--group", args.group,
                 "Group ADDR[:PORT] (broadcast or multicast; IPv6 as [ADDR]:PORT), overrides the "
                 "config's 'group' (and 'port' when given) [default: from config]")
      ->type_name("ADDR[:PORT]");
  app.add_option("--unicast-port", args.unicast_port,
                 "Port of this node's own socket (replies come back there), overrides the "
                 "config's 'unicast_port' [default: from config, 0: any free port]")
      ->check(port_validator());
  app.add_flag("-d,--debug", args.debug, "Debug log on stderr: packets, peers, drops and why");
}

CLI::Validator port_validator() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        std::size_t used = 0;
        unsigned long v = 0;
        try {
          v = std::stoul(s, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != s.size() || s.empty() || s[0] == '-' || v < 1 || v > 65535)
          return "port must be 1-65535, got '" + s + "'";
        return {};
      },
      "1-65535");
}

std::string channel_problem(const std::string& channel) {
  if (channel.empty()) return "-t: the channel name is empty";
  if (channel.size() > wire::kMaxChannelName)
    return "-t: channel name of " + std::to_string(channel.size()) + " bytes: at most " +
           std::to_string(wire::kMaxChannelName) + " (channel_name_too_long)";
  return {};
}

// --group ADDR[:PORT]: "239.1.2.3", "239.1.2.3:9000", "ff02::1", "[ff02::1]:9000". An IPv6
// group makes an IPv6 node (as nomq keygen --group does).
static std::string apply_group(const std::string& text, NodeConfig& config) {
  std::string addr = text;
  std::optional<std::uint16_t> port;
  auto take_port = [&](const std::string& p) -> bool {
    std::string copy = p;
    if (!port_validator()(copy).empty()) return false;
    port = static_cast<std::uint16_t>(std::stoul(p));
    return true;
  };
  if (!addr.empty() && addr.front() == '[') {
    const auto close = addr.find(']');
    if (close == std::string::npos) return "--group: no ']' in '" + text + "'";
    const std::string rest = addr.substr(close + 1);
    addr = addr.substr(1, close - 1);
    if (!rest.empty() && (rest[0] != ':' || !take_port(rest.substr(1))))
      return "--group: port must be 1-65535 in '" + text + "'";
  } else if (std::count(addr.begin(), addr.end(), ':') == 1) {
    const auto colon = addr.find(':');
    if (!take_port(addr.substr(colon + 1))) return "--group: port must be 1-65535 in '" + text + "'";
    addr.resize(colon);
  }
  const auto parsed = parse_endpoint(addr, 0);
  if (!parsed) return "--group needs a numeric IPv4 or IPv6 address, got '" + text + "'";
  config.group = addr;
  if (port) config.port = *port;
  const bool v6 = parsed->family == Endpoint::Family::ipv6;
  if (v6 != config.use_ipv6) {
    config.use_ipv6 = v6;
    config.ip = v6 ? "::" : "0.0.0.0";
  }
  return {};
}

int usage_error(const std::string& command, const std::string& line) {
  std::fprintf(stderr, "Error: %s\nUse 'nomq %s --help' to see usage.\n", line.c_str(),
               command.c_str());
  return kExitUsage;
}

std::string endpoint_text(const Endpoint& e) { return to_string(e); }

std::unique_ptr<Node> make_node(const std::string& command, const NodeArgs& args,
                                NodeConfig& config_out, int& exit_code,
                                const AdjustOptions& adjust) {
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
  if (args.group) {
    if (std::string problem = apply_group(*args.group, config); !problem.empty()) {
      exit_code = usage_error(command, problem);
      return nullptr;
    }
  }
  if (args.unicast_port) config.unicast_port = *args.unicast_port;
  if (auto valid = validate_config(config); !valid) {
    // The overrides above may break a cross-field rule (unicast_port == port, the family).
    exit_code = usage_error(command, std::string{valid.error().message()});
    return nullptr;
  }
  set_log_level(args.debug ? LogLevel::debug : LogLevel::warning);

  auto options = to_node_options(config);
  if (!options) {
    exit_code = usage_error(command, args.config_path + ": " + std::string{options.error().message()});
    return nullptr;
  }
  if (adjust) {
    if (std::string problem = adjust(*options); !problem.empty()) {
      exit_code = usage_error(command, problem);
      return nullptr;
    }
  }
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
