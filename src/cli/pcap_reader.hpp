// UDP datagrams out of a packet capture (pcap or pcapng, through libpcap), for `nomq decode`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nomq/endpoint.hpp"
#include "nomq/time.hpp"

namespace nomq::cli {

struct CapturedDatagram {
  std::size_t frame = 0;  // 1-based frame number in the capture (as Wireshark counts)
  WallTime captured{};    // capture time
  Endpoint from;
  Endpoint to;
  std::vector<std::uint8_t> payload;
};

// Every UDP datagram of the capture `path` ("-": stdin) whose source or destination port is
// `port` (0: any). Link types: Ethernet (with 802.1Q tags), Linux cooked (SLL, SLL2), BSD
// loopback/null, raw IP. IPv4 fragments other than the first, and IPv6 extension headers, are
// skipped and counted in `skipped`. Returns "" or why the capture cannot be read (libpcap's
// message, e.g. "missing.pcap: No such file or directory").
std::string read_capture(const std::string& path, std::uint16_t port,
                         std::vector<CapturedDatagram>& out, std::size_t& skipped);

}  // namespace nomq::cli
