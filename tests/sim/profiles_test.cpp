// The device profiles (EngineConfig::seed_profile / small_profile, docs/embedded.md) run the
// usual invariants in the simulator: QoS 1 and 2 under loss, duplication and reordering,
// nothing lost, QoS 2 exactly once, and their state (issue 12's budgets: docs/embedded.md).
#include <gtest/gtest.h>

#include "nomq/engine.hpp"
#include "sim/scenario.hpp"

namespace nomq::sim {
namespace {

struct ProfileCase {
  const char* profile;
  Qos qos;
  std::uint64_t seed;
};

class Profiles : public ::testing::TestWithParam<ProfileCase> {};

TEST_P(Profiles, LossyRunKeepsEveryInvariant) {
  const ProfileCase& c = GetParam();
  ScenarioOptions o;
  o.profile = c.profile;
  o.seed = c.seed;
  o.nodes = 3;
  o.messages = 600;
  o.qos = c.qos;
  o.loss = 0.2;
  o.duplicate = 0.05;
  o.reorder = 0.05;
  o.rate = 50;
  o.warmup = std::chrono::seconds(5);
  o.max_pending = std::string_view{c.profile} == "small" ? 8 : 50;
  o.payload_size = std::string_view{c.profile} == "small" ? 200 : 900;
  const ScenarioResult r = run_scenario(o);
  EXPECT_TRUE(r.violations.empty()) << command_line(o) << "\n" << to_summary(o, r);
  EXPECT_EQ(r.published, o.messages) << command_line(o);
  EXPECT_EQ(r.lost, 0u) << command_line(o);
  if (c.qos == Qos::exactly_once) {
    EXPECT_EQ(r.duplicates, 0u) << command_line(o);
  }
  EXPECT_EQ(r.delivered, r.expected_deliveries) << command_line(o);
}

INSTANTIATE_TEST_SUITE_P(SeedAndSmall, Profiles,
                         ::testing::Values(ProfileCase{"seed", Qos::at_least_once, 1},
                                           ProfileCase{"seed", Qos::exactly_once, 2},
                                           ProfileCase{"small", Qos::at_least_once, 3},
                                           ProfileCase{"small", Qos::exactly_once, 4}),
                         [](const ::testing::TestParamInfo<ProfileCase>& p) {
                           return std::string(p.param.profile) + "_qos" +
                                  std::to_string(static_cast<int>(p.param.qos));
                         });

TEST(Profiles, StateWithinBudgets) {
  const std::size_t seed = Engine::state_bytes_for(EngineConfig::seed_profile());
  const std::size_t small = Engine::state_bytes_for(EngineConfig::small_profile());
  std::printf("state_bytes seed profile: %zu, small profile: %zu\n", seed, small);
  for (const TableBytes& t : Engine::state_report_for(EngineConfig::small_profile())) {
    std::printf("  small %-40s %zu\n", std::string(t.table).c_str(), t.bytes);
  }
  // Issue 12's budgets: the seed profile within 96 KiB (met); the small profile within 12 KiB
  // is not met yet (docs/embedded.md lists where its bytes go): this guards what was reached,
  // 18 624 bytes on x86-64 (16 992 on the Cortex-M4) after round 7's proportional tables (the
  // pool's metadata in its byte heap, 16-bit map slots, compact events, max_peer_events 8,
  // max_outbox 8), within 18.5 KiB; it was 22 224 before.
  EXPECT_LE(seed, 96u * 1024u);
  EXPECT_LE(small, 18u * 1024u + 512u);
  std::size_t sum = 0;
  for (const TableBytes& t : Engine::state_report_for(EngineConfig::small_profile())) sum += t.bytes;
  EXPECT_EQ(sum, small);
  EXPECT_TRUE(Engine::validate(EngineConfig::seed_profile()).ok());
  EXPECT_TRUE(Engine::validate(EngineConfig::small_profile()).ok());
}

}  // namespace
}  // namespace nomq::sim
