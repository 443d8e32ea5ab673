#include "net/log.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "nomq/node.hpp"

namespace nomq {
namespace detail {

namespace {

spdlog::logger& logger() {
  // Not registered in spdlog's global registry: an application's own spdlog setup (default
  // logger, set_level for everything) leaves NoMQ alone, and NoMQ never changes it.
  static const std::shared_ptr<spdlog::logger> logger = [] {
    auto l = std::make_shared<spdlog::logger>("nomq", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%H:%M:%S.%e nomq %l: %v");
    l->set_level(spdlog::level::off);
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return *logger;
}

spdlog::level::level_enum level_of(Severity s) noexcept {
  switch (s) {
    case Severity::debug: return spdlog::level::debug;
    case Severity::info: return spdlog::level::info;
    case Severity::warn: return spdlog::level::warn;
    case Severity::error: return spdlog::level::err;
  }
  return spdlog::level::err;
}

}  // namespace

bool log_enabled(Severity s) noexcept { return logger().should_log(level_of(s)); }

void log_formatted(Severity s, fmt::string_view format, fmt::format_args args) {
  const fmt::memory_buffer text = [&] {
    fmt::memory_buffer b;
    fmt::vformat_to(fmt::appender(b), format, args);
    return b;
  }();
  logger().log(level_of(s), spdlog::string_view_t{text.data(), text.size()});
}

}  // namespace detail

void set_log_level(LogLevel level) {
  spdlog::level::level_enum l = spdlog::level::off;
  switch (level) {
    case LogLevel::debug: l = spdlog::level::debug; break;
    case LogLevel::info: l = spdlog::level::info; break;
    case LogLevel::warning: l = spdlog::level::warn; break;
    case LogLevel::error: l = spdlog::level::err; break;
    case LogLevel::off: l = spdlog::level::off; break;
  }
  detail::logger().set_level(l);
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (text == "debug") return LogLevel::debug;
  if (text == "info") return LogLevel::info;
  if (text == "warning" || text == "warn") return LogLevel::warning;
  if (text == "error") return LogLevel::error;
  if (text == "off") return LogLevel::off;
  return std::nullopt;
}

}  // namespace nomq
