// The runtime's logger: spdlog, logger name "nomq", to stderr, off until set_log_level().
//
// Only log.cpp includes spdlog. Call sites format through fmt's type-erased vformat (compiled
// in libfmt): spdlog's templates in every unit that logs made each of them carry fmt's whole
// formatting engine (float, int and string writers) and spdlog's types, in code and in debug
// information (docs/api.md, "Library size").
#pragma once

#include <fmt/core.h>

namespace nomq::detail {

enum class Severity : unsigned char { debug, info, warn, error };

// Whether a message of this severity is written (the level set by set_log_level()).
bool log_enabled(Severity s) noexcept;
// Formats and writes one line; called only when log_enabled(s).
void log_formatted(Severity s, fmt::string_view format, fmt::format_args args);

// log().info("node {:08x} on {}", id, to_string(endpoint)): the format string is checked at
// compile time; nothing is formatted unless the severity is enabled (the arguments themselves
// are evaluated: test log_enabled() first around costly ones).
class Logger {
 public:
  template <class... A>
  void debug(fmt::format_string<A...> f, A&&... a) const { write(Severity::debug, f, a...); }
  template <class... A>
  void info(fmt::format_string<A...> f, A&&... a) const { write(Severity::info, f, a...); }
  template <class... A>
  void warn(fmt::format_string<A...> f, A&&... a) const { write(Severity::warn, f, a...); }
  template <class... A>
  void error(fmt::format_string<A...> f, A&&... a) const { write(Severity::error, f, a...); }

 private:
  template <class... A>
  static void write(Severity s, fmt::string_view f, A&... a) {
    if (log_enabled(s)) log_formatted(s, f, fmt::make_format_args(a...));
  }
};

inline Logger log() noexcept { return {}; }

}  // namespace nomq::detail
