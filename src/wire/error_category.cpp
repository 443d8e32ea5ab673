// std::error_code interop for Errc (nomq/error.hpp): the "nomq" error category. Hosted builds
// only: std::error_category brings libstdc++'s system_error and string machinery, which a
// device build does without (mcu/CMakeLists.txt leaves this file out; nothing in the core
// calls it).
#include <string>

#include "nomq/error.hpp"

namespace nomq {

namespace {

class ErrcCategory final : public std::error_category {
 public:
  constexpr ErrcCategory() noexcept = default;
  const char* name() const noexcept override { return "nomq"; }
  std::string message(int value) const override {
    return std::string{to_string(static_cast<Errc>(value))};
  }
  // The codes that mean what a standard one means compare equal to it (ec == std::errc::x).
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<Errc>(value)) {
      case Errc::invalid_argument: return std::errc::invalid_argument;
      case Errc::message_too_large: return std::errc::message_size;
      case Errc::buffer_too_small: return std::errc::no_buffer_space;
      case Errc::io_error: return std::errc::io_error;
      case Errc::timed_out: return std::errc::timed_out;
      default: return {value, *this};
    }
  }
};

// Constant-initialised: no guard, no order-of-initialisation question.
constinit const ErrcCategory kErrcCategory;

}  // namespace

const std::error_category& errc_category() noexcept { return kErrcCategory; }

}  // namespace nomq
