// Text forms of endpoints (Linux runtime; not part of the core).
#pragma once

#include "nomq/export.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nomq/endpoint.hpp"

namespace nomq {

// "192.0.2.1:8888", "[fe80::1%2]:8888".
NOMQ_EXPORT std::string to_string(const Endpoint& e);
// The address alone: "192.0.2.1", "fe80::1%2".
NOMQ_EXPORT std::string address_to_string(const Endpoint& e);

// Parses a numeric IPv4 or IPv6 address (no name lookup) with the given port. IPv6 may carry a
// "%scope" suffix (interface name or index). nullopt if it is not an address.
NOMQ_EXPORT std::optional<Endpoint> parse_endpoint(std::string_view address, std::uint16_t port);

}  // namespace nomq
