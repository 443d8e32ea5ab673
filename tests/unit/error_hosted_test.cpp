// What Error offers hosted builds only: std::error_code interop (src/wire/error_category.cpp)
// and printing to a std::ostream. The Cortex-M4 build runs error_test.cpp without these.
#include <gtest/gtest.h>

#include <sstream>
#include <system_error>

#include "nomq/error.hpp"

namespace nomq {
namespace {

TEST(Error, PrintsToAStream) {
  std::ostringstream out;
  out << Error{Errc::closed, "the engine is closed"} << " / " << Error{Errc::bad_mac} << " / "
      << Errc::too_short;
  EXPECT_EQ(out.str(), "closed: the engine is closed / bad_mac / too_short");
}

TEST(Error, InteroperatesWithStdErrorCode) {
  static_assert(std::is_error_code_enum_v<Errc>);
  const std::error_code ec = Errc::bad_mac;
  EXPECT_TRUE(ec.category() == errc_category());
  EXPECT_STREQ(ec.category().name(), "nomq");
  EXPECT_EQ(ec.value(), static_cast<int>(Errc::bad_mac));
  EXPECT_EQ(ec.message(), "bad_mac");
  EXPECT_TRUE(ec == Errc::bad_mac);
  EXPECT_FALSE(make_error_code(Errc::ok));  // 0 is "no error", as std::error_code has it
  EXPECT_TRUE(Error(Errc::timed_out, "no answer").error_code() == std::errc::timed_out);
  EXPECT_TRUE(make_error_code(Errc::invalid_argument) == std::errc::invalid_argument);
  EXPECT_TRUE(make_error_code(Errc::message_too_large) == std::errc::message_size);
  EXPECT_FALSE(make_error_code(Errc::bad_mac) == std::errc::invalid_argument);
}

}  // namespace
}  // namespace nomq
