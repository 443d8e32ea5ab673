#include "nomq/error.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace nomq {
namespace {

TEST(Errc, EveryCodeHasADistinctName) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kErrcCount; ++i) {
    const auto name = to_string(static_cast<Errc>(i));
    EXPECT_FALSE(name.empty()) << i;
    EXPECT_NE(name, "unknown_error") << "code " << i << " has no name";
    names.emplace(name);
  }
  EXPECT_EQ(names.size(), kErrcCount);
  EXPECT_EQ(to_string(Errc::ok), "ok");
  EXPECT_EQ(to_string(Errc::bad_mac), "bad_mac");
}

TEST(Result, CarriesValueOrError) {
  Result<int> good{42};
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 42);
  Result<int> bad{Errc::too_short};
  EXPECT_FALSE(bad);
  EXPECT_EQ(bad.error(), Errc::too_short);
  Result<void> v;
  EXPECT_TRUE(v.ok());
}

}  // namespace
}  // namespace nomq
