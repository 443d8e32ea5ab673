// A NoMQ application built against the installed package (tests/package): a node on loopback,
// printed with what node.hpp brings (to_string of an Endpoint, of a PeerEvent kind).
#include <nomq/config.hpp>
#include <nomq/crypto_backend.hpp>
#include <nomq/engine.hpp>
#include <nomq/node.hpp>
#include <nomq/wire.hpp>

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
  // More of the API than the Node, so that a shared build proves it is exported (the
  // libraries hide everything the headers do not mark NOMQ_EXPORT, docs/api.md): an
  // out-of-line constructor, free functions of each library, static members, the error
  // category, the crypto backend.
  const nomq::NodeConfig defaults;
  if (defaults.port == 0 || !nomq::validate_config(*config)) return 1;
  if (!nomq::wire::is_filter("plant/#") || !nomq::wire::filter_matches("plant/#", "plant/a")) return 1;
  if (nomq::Engine::state_bytes_for(nomq::EngineConfig::small_profile()) == 0) return 1;
  const nomq::Error refused{nomq::Errc::invalid_argument, "consumer check"};
  if (refused.error_code().category().name() == nullptr || nomq::to_string(refused.code()).empty()) return 1;
  if (!nomq::make_rng() || nomq::crypto_backend_name().empty()) return 1;
  auto sent = (*node)->publish("consumer/test", "hello");
  if (!sent) return 1;
  std::printf("node on %s, group %s; peer events: %s, %s\n",
              nomq::to_string((*node)->local_endpoint()).c_str(),
              nomq::to_string((*node)->group()).c_str(),
              std::string{nomq::to_string(nomq::PeerEvent::Kind::joined)}.c_str(),
              std::string{nomq::to_string(nomq::PeerEvent::Kind::left)}.c_str());
  return (*node)->close().empty() ? 0 : 1;
}
