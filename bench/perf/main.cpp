// nomq_perf: the measurements behind docs/performance.md. Each subcommand runs one bounded
// measurement and prints one JSON line; scripts/bench.sh repeats them and aggregates.
//
//   nomq_perf <bench> [--name value ...]
#include <cstring>

#include "perf/common.hpp"

namespace {

struct Entry {
  const char* name;
  void (*run)(const perf::Args&);
  const char* help;
};

constexpr Entry kBenches[] = {
    {"udp-tput", perf::udp_throughput, "--size N --seconds S: raw UDP one-way datagrams/s"},
    {"udp-rtt", perf::udp_pingpong, "--size N --count K [--epoll 1]: raw UDP ping-pong (--epoll 1: with a NoMQ node's system calls, epoll_wait + recvmmsg + sendmmsg)"},
    {"nomq-tput", perf::nomq_throughput, "--wire v1|v2 --qos Q --size N --seconds S"},
    {"nomq-rtt", perf::nomq_latency, "--wire v1|v2 --qos 1|2 --size N --count K: publish to report"},
    {"mqtt-tput", perf::mqtt_throughput, "--port P --qos Q --size N --seconds S (broker running)"},
    {"mqtt-lat", perf::mqtt_latency, "--port P --qos Q --size N --count K: publish to delivery"},
    {"zmq-tput", perf::zmq_throughput, "--size N --seconds S: PUB/SUB over TCP"},
    {"zmq-rtt", perf::zmq_latency, "--size N --count K: REQ/REP over TCP"},
    {"engine-pair", perf::engine_pair, "--wire --qos --size --count --crypto openssl|null"},
    {"engine-subs", perf::engine_subscribers, "--subs N --qos Q --count K"},
    {"engine-channels", perf::engine_channels, "--channels N --qos Q --count K"},
    {"codec", perf::crypto_packet, "--wire --size --count: seal/open of one PUBLISH"},
    {"first-publish", perf::first_publish, "--nomq PATH --port P --count K: fresh `nomq pub -q 1` process to acknowledged, next to `mosquitto_pub -q 1` (broker on P)"},
    {"cli-tput", perf::cli_throughput, "--nomq PATH --size N --count K: nomq pub --repeat K -q 0 -h into nomq sub > file"},
};

void usage() {
  std::fprintf(stderr, "usage: nomq_perf <bench> [--option value ...]\n");
  for (const auto& e : kBenches) std::fprintf(stderr, "  %-16s %s\n", e.name, e.help);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  for (const auto& e : kBenches) {
    if (std::strcmp(argv[1], e.name) == 0) {
      e.run(perf::Args{argc, argv, 2});
      return 0;
    }
  }
  std::fprintf(stderr, "nomq_perf: unknown bench '%s'\n", argv[1]);
  usage();
  return 2;
}
