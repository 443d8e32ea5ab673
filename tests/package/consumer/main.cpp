// A NoMQ application built against the installed package (tests/package): a node on loopback,
// printed with what node.hpp brings (to_string of an Endpoint, of a PeerEvent kind).
#include <nomq/config.hpp>
#include <nomq/node.hpp>

#include <cstdio>
#include <string>

int main() {
  auto config = nomq::generate_config();
  if (!config) return 1;
  config->group = "127.255.255.255";
  config->ip = "127.0.0.1";
  config->port = 0;
  auto options = nomq::to_node_options(*config);
  if (!options) return 1;
  auto node = nomq::Node::create(*options);
  if (!node) {
    std::fprintf(stderr, "%s\n", node.error().c_str());
    return 1;
  }
  auto sent = (*node)->publish("consumer/test", "hello");
  if (!sent) return 1;
  std::printf("node on %s, group %s; peer events: %s, %s\n",
              nomq::to_string((*node)->local_endpoint()).c_str(),
              nomq::to_string((*node)->group()).c_str(),
              std::string{nomq::to_string(nomq::PeerEvent::Kind::joined)}.c_str(),
              std::string{nomq::to_string(nomq::PeerEvent::Kind::left)}.c_str());
  return (*node)->close().empty() ? 0 : 1;
}
