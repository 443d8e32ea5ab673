// The runtime's one clock reading: everything the node hands the engine as `now` comes from here.
#pragma once

#include <time.h>

#include "nomq/time.hpp"

namespace nomq::detail {

inline Time realtime_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return Time{static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000};
}

}  // namespace nomq::detail
