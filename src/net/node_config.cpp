// From a config file to a node: NodeConfig (nomq/config.hpp) -> NodeOptions.
#include <string>

#include "net/log.hpp"
#include "nomq/config.hpp"
#include "nomq/crypto_backend.hpp"
#include "nomq/endpoint_io.hpp"
#include "nomq/node.hpp"

namespace nomq {

NodeOptions::~NodeOptions() {
  wipe_secret(encryption_key);
  wipe_secret(hmac_key);
  if (master_secret) wipe_secret(*master_secret);
}

Result<NodeOptions> to_node_options(const NodeConfig& config) {
  NodeOptions o;
  if (config.key_form == KeyForm::master) {
    o.master_secret = config.master_secret;
    o.group_id = config.group_id;
    o.key_epoch = config.key_epoch;
  } else {
    o.encryption_key = config.encryption_key;
    o.hmac_key = config.hmac_key;
  }
  o.channel_keys = config.channel_keys;
  o.engine = to_engine_config(config);
  auto group = parse_endpoint(config.group, config.port);
  if (!group) {
    return Error{Errc::config_bad_field, "group: '", config.group,
                 "' is not a numeric IPv4 or IPv6 address"};
  }
  if ((group->family == Endpoint::Family::ipv6) != config.use_ipv6) {
    return Error{Errc::config_bad_field, "group: '", config.group, "' does not match use_ipv6"};
  }
  o.network.group = *group;
  o.network.interface_name = config.group_interface;
  auto bind = parse_endpoint(config.ip, config.unicast_port);
  if (!bind) return Error{Errc::config_bad_field, "ip: '", config.ip, "' is not a numeric address"};
  if (bind->family != group->family) {
    return Error{Errc::config_bad_field, "ip: '", config.ip,
                 "' is not of the group's address family"};
  }
  o.network.unicast_bind = *bind;
  return o;
}

Result<std::unique_ptr<Node>> Node::load(const std::string& config_file) {
  auto loaded = load_config(config_file);
  if (!loaded) return loaded.error();
  if (!loaded->warning.empty()) detail::log().warn("{}", loaded->warning);
  set_log_level(loaded->config.log_level);
  auto options = to_node_options(loaded->config);
  if (!options) {
    return Error{options.error().code(), config_file, ": ", options.error().message()};
  }
  return create(*options);
}

}  // namespace nomq
