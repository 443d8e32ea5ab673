// The runtime's logger: spdlog, logger name "nomq", to stderr, off until set_log_level().
#pragma once

#include <spdlog/spdlog.h>

#include <memory>

namespace nomq::detail {

spdlog::logger& log();

inline bool log_enabled(spdlog::level::level_enum level) { return log().should_log(level); }

}  // namespace nomq::detail
