// For harnesses whose nodes never disagree about the time (unit tests, fuzzing, benchmarks):
// one simulated clock stands for both of an engine's clocks, the wall clock reading the same
// microsecond count as the monotonic one. Clock disagreement is the simulator's business
// (Simulator::step_wall_clock), never this helper's.
#pragma once

#include "nomq/time.hpp"

namespace nomq::sim {

constexpr WallTime wall_at(Instant t) noexcept { return WallTime{t.time_since_epoch()}; }

}  // namespace nomq::sim
