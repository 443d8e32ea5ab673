// NoMQ API example (docs/api.md, "Errors"): what a failed call returns and how to act on it.
// Built and run as a CTest test; exits 0 when every error below says what the docs say.
#include <nomq/config.hpp>
#include <nomq/node.hpp>

#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>

namespace {

bool says(const nomq::Error& e, std::string_view part) {
  const bool found = e.message().find(part) != std::string_view::npos;
  if (!found) std::fprintf(stderr, "unexpected: %s\n", e.c_str());
  return found;
}

}  // namespace

int main() {
  // A file that is not there: the code says what kind of failure, the message which file and why.
  auto missing = nomq::Node::load("/nonexistent/nomq.json");
  if (!missing) {
    std::printf("%s: %s\n", std::string{missing.error().name()}.c_str(), missing.error().c_str());
    // config_unreadable: /nonexistent/nomq.json: No such file or directory
  }
  if (missing.error() != nomq::Errc::config_unreadable) return 1;
  if (!says(missing.error(), "/nonexistent/nomq.json: No such file or directory")) return 1;

  // A limit: the message names the limit, its value and the config key that sets it.
  auto config = nomq::generate_config();
  if (!config) return 1;
  config->group = "127.255.255.255";
  config->ip = "127.0.0.1";
  config->port = 0;
  config->limits.max_message_size = 16;
  auto options = nomq::to_node_options(*config);
  if (!options) return 1;
  auto node = nomq::Node::create(*options);
  if (!node) {
    std::fprintf(stderr, "%s\n", node.error().c_str());  // e.g. "bind 127.0.0.1:0: ..."
    return 1;
  }
  auto sent = (*node)->publish("plant/line1/temp", "a reading longer than 16 bytes");
  if (!sent) {
    switch (sent.error().code()) {        // act on the code...
      case nomq::Errc::too_many_pending:  // wait for a delivery report, then retry
        break;
      default:                            // ...and show the message to a person
        std::printf("refused: %s\n", sent.error().c_str());
        // refused: message of 30 bytes: at most 16 (max_message_size)
    }
  }
  if (sent.error() != nomq::Errc::message_too_large) return 1;
  if (!says(sent.error(), "message of 30 bytes: at most 16 (max_message_size)")) return 1;

  // std::error_code interop: category "nomq", and standard meanings where there is one.
  std::error_code ec = sent.error().code();
  if (ec != std::errc::message_size || std::string_view{ec.category().name()} != "nomq") return 1;

  // An error is a value of fixed size, made without the heap: the engine returns them too.
  nomq::Result<nomq::PublishHandle> refused =
      nomq::Error{nomq::Errc::queue_full, "outbox full (", 512, " datagrams)"};
  const nomq::PublishHandle handle = std::move(refused).value_or(nomq::PublishHandle{});
  // *refused here would abort: reading the value of an error is a programming error.
  return handle.ready() ? 1 : 0;
}
