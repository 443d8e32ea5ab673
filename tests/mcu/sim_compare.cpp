// The seeded lossy simulation (src/sim, the same scenario code `nomq sim` runs), built twice
// from this one file: for the host (nomq_mcu_sim_host, a CTest test, OpenSSL or mbedTLS backend)
// and for the Cortex-M4 (mcu_sim.elf under qemu, mbedTLS). Each build runs the same scenarios
// with the same seeds and prints one `mcu sim ...` line per scenario: its delivery account and
// Simulator::trace_digest(), an FNV-1a digest of every datagram sent (time, sender, destination,
// bytes) and every event the engines raised. The simulator is deterministic and both crypto
// backends are byte-identical, so scripts/mcu.sh requires the target's lines to equal the host's:
// the same engines made the same decisions, datagram for datagram, on both machines.
//
// The scenarios: 3 nodes of the small device profile (EngineConfig::small_profile), one
// publisher, two subscribers, 20 % loss, 5 % duplication, 5 % reordering on every link, at QoS
// 0, 1 and 2. Exit code 0 only if every run kept the simulator's invariants (QoS 1/2: nothing
// lost, every publish reported; QoS 2: exactly once) and published every message.
#include <cinttypes>
#include <cstdint>
#include <cstdio>

#include "nomq/engine.hpp"
#include "sim/scenario.hpp"

namespace {

// Messages per QoS level. The issue asks for 10 000 (QoS 1 and 2): both builds run that many.
constexpr std::uint64_t kMessages = 10000;

struct Case {
  nomq::Qos qos;
  std::uint64_t seed;
};

constexpr Case kCases[] = {
    {nomq::Qos::at_most_once, 12001},
    {nomq::Qos::at_least_once, 12002},
    {nomq::Qos::exactly_once, 12003},
};

nomq::sim::ScenarioOptions options_for(const Case& c) {
  nomq::sim::ScenarioOptions o;
  o.profile = "small";
  o.max_pending = nomq::EngineConfig::small_profile().limits.max_pending;
  o.seed = c.seed;
  o.nodes = 3;
  o.publishers = 1;
  o.messages = kMessages;
  o.qos = c.qos;
  o.loss = 0.2;
  o.duplicate = 0.05;
  o.reorder = 0.05;
  o.rate = 100;
  o.payload_size = 32;
  o.warmup = std::chrono::seconds(5);
  return o;
}

}  // namespace

int main() {
  int failed = 0;
  for (const Case& c : kCases) {
    const nomq::sim::ScenarioOptions o = options_for(c);
    const nomq::sim::ScenarioResult r = nomq::sim::run_scenario(o);
    std::printf("mcu sim qos=%d seed=%" PRIu64 " messages=%" PRIu64 " published=%" PRIu64
                " delivered=%" PRIu64 "/%" PRIu64 " duplicates=%" PRIu64 " lost=%" PRIu64
                " reported_failed=%" PRIu64 " expired=%" PRIu64 " datagrams=%" PRIu64
                " bytes=%" PRIu64 " retransmissions=%" PRIu64 " link_drops=%" PRIu64
                " suppressed=%" PRIu64 " digest=%016" PRIx64 "\n",
                static_cast<int>(o.qos), o.seed, o.messages, r.published, r.delivered,
                r.expected_deliveries, r.duplicates, r.lost, r.reported_failed, r.expired,
                r.datagrams_sent, r.bytes_sent, r.retransmissions, r.dropped_loss,
                r.duplicates_suppressed, r.trace_digest);
    bool ok = r.violations.empty() && r.published == o.messages;
    if (o.qos != nomq::Qos::at_most_once) ok = ok && r.lost == 0 && r.unreported == 0;
    if (o.qos == nomq::Qos::exactly_once) ok = ok && r.duplicates == 0;
    if (!ok) {
      std::printf("mcu sim qos=%d seed=%" PRIu64 ": FAILED, invariants broken:",
                  static_cast<int>(o.qos), o.seed);
      for (const auto& v : r.violations) std::printf(" %s", v.c_str());
      std::printf(" (published %" PRIu64 ", lost %" PRIu64 ", unreported %" PRIu64 ")\n",
                  r.published, r.lost, r.unreported);
      ++failed;
    }
  }
  std::printf("mcu sim: %d of %zu scenarios failed\n", failed, sizeof kCases / sizeof kCases[0]);
  return failed == 0 ? 0 : 1;
}
