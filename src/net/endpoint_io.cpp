#include "nomq/endpoint_io.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include <cstdlib>
#include <cstring>

namespace nomq {

std::string to_string(const Endpoint& e) {
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
  switch (e.family) {
    case Endpoint::Family::ipv4:
      inet_ntop(AF_INET, e.address.data(), text, sizeof text);
      return std::string{text} + ":" + std::to_string(e.port);
    case Endpoint::Family::ipv6: {
      inet_ntop(AF_INET6, e.address.data(), text, sizeof text);
      // Appended piece by piece: g++ 12 at -O3 reports a false -Wrestrict on
      // `"literal" + std::string` temporaries (as in src/sim/scenario.cpp).
      std::string s(1, '[');
      s += text;
      if (e.scope_id != 0) {
        s += '%';
        s += std::to_string(e.scope_id);
      }
      s += "]:";
      s += std::to_string(e.port);
      return s;
    }
    case Endpoint::Family::none:
      break;
  }
  return "none";
}

std::string address_to_string(const Endpoint& e) {
  std::string s = to_string(e);
  if (e.family == Endpoint::Family::none) return s;
  s.resize(s.rfind(':'));
  if (e.family == Endpoint::Family::ipv6) s = s.substr(1, s.size() - 2);
  return s;
}

std::optional<Endpoint> parse_endpoint(std::string_view address, std::uint16_t port) {
  std::string text{address};
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  Endpoint e;
  e.port = port;
  if (inet_pton(AF_INET, text.c_str(), e.address.data()) == 1) {
    e.family = Endpoint::Family::ipv4;
    return e;
  }
  std::string scope;
  if (auto pct = text.find('%'); pct != std::string::npos) {
    scope = text.substr(pct + 1);
    text.resize(pct);
  }
  if (inet_pton(AF_INET6, text.c_str(), e.address.data()) != 1) return std::nullopt;
  e.family = Endpoint::Family::ipv6;
  if (!scope.empty()) {
    char* end = nullptr;
    const unsigned long index = std::strtoul(scope.c_str(), &end, 10);
    e.scope_id = (end && *end == '\0') ? static_cast<std::uint32_t>(index) : if_nametoindex(scope.c_str());
    if (e.scope_id == 0) return std::nullopt;
  }
  return e;
}

}  // namespace nomq
