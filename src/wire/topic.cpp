// MQTT topic filters over channel names (docs/protocol.md §13). Hand-written: the core depends
// on no library, and the rules are a single pass over two strings that the unit tests pin down
// (MQTT 5.0 §4.7).
#include <cstddef>
#include <string_view>

#include "nomq/wire.hpp"

namespace nomq::wire {

bool is_filter(std::string_view name) noexcept {
  return name.find_first_of("+#") != std::string_view::npos;
}

bool valid_filter(std::string_view filter) noexcept {
  if (filter.empty()) return false;
  for (std::size_t i = 0; i < filter.size(); ++i) {
    const char c = filter[i];
    if (c != '+' && c != '#') continue;
    // A wildcard fills its level: the previous and next characters are '/' or the ends.
    if (i > 0 && filter[i - 1] != '/') return false;
    if (i + 1 < filter.size() && filter[i + 1] != '/') return false;
    if (c == '#' && i + 1 != filter.size()) return false;  // '#' is the last level
  }
  return true;
}

bool filter_matches(std::string_view filter, std::string_view name) noexcept {
  // Names starting with '$' are not matched by a filter starting with a wildcard (MQTT 4.7.2).
  if (!filter.empty() && !name.empty() && name[0] == '$' &&
      (filter[0] == '+' || filter[0] == '#')) {
    return false;
  }
  // f, n: the start of the current level; past the end (> size) once every level was used
  // ("a/" has two levels, "a" and "").
  std::size_t f = 0, n = 0;
  while (true) {
    if (f > filter.size()) return n > name.size();
    std::size_t fe = filter.find('/', f);
    if (fe == std::string_view::npos) fe = filter.size();
    const std::string_view fl = filter.substr(f, fe - f);
    if (fl == "#") return true;  // the rest, including the parent itself ("a/#" matches "a")
    if (n > name.size()) return false;
    std::size_t ne = name.find('/', n);
    if (ne == std::string_view::npos) ne = name.size();
    if (fl != "+" && fl != name.substr(n, ne - n)) return false;
    f = fe + 1;
    n = ne + 1;
  }
}

}  // namespace nomq::wire
