// `nomq bridge`: a NoMQ node and an MQTT client (libmosquitto) joined by the rules of a
// BridgeConfig, with a SQLite store-and-forward queue (docs/bridge.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "bridge/bridge_config.hpp"

namespace nomq::bridge {

struct Counters {
  std::atomic<std::uint64_t> out_received{0};   // NoMQ messages matching an out rule
  std::atomic<std::uint64_t> out_published{0};  // handed to the MQTT client
  std::atomic<std::uint64_t> out_acked{0};      // QoS 1/2 acknowledged by the broker
  std::atomic<std::uint64_t> out_rejected{0};   // refused by the broker (reason code >= 128)
  std::atomic<std::uint64_t> out_store_full{0}; // not kept: the store was full (logged by name)
  std::atomic<std::uint64_t> in_received{0};    // MQTT messages matching an in rule
  std::atomic<std::uint64_t> in_published{0};   // published into NoMQ
  std::atomic<std::uint64_t> in_delivered{0};   // QoS 1/2 reports with every recipient acked
  std::atomic<std::uint64_t> in_failed{0};      // QoS 1/2 reports not ok (expired, no one ...)
  std::atomic<std::uint64_t> in_duplicates{0};  // already bridged (nomq-id seen before)
  std::atomic<std::uint64_t> in_store_full{0};
  std::atomic<std::uint64_t> loops_dropped{0};  // our own messages coming back
  std::atomic<std::uint64_t> expired{0};        // dropped from the store at expiry
  std::atomic<std::uint64_t> connects{0};
  std::atomic<std::uint64_t> connect_failures{0};
};

struct RunOptions {
  bool json_stats = false;
  bool debug = false;
};

// Runs until SIGTERM/SIGINT. Returns the process exit code (docs/bridge.md "Exit codes").
int run_bridge(const BridgeConfig& config, const RunOptions& options);

}  // namespace nomq::bridge
