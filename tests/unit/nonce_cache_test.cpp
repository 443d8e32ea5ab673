#include "core/nonce_cache.hpp"
#include "unit/arena_support.hpp"

#include <gtest/gtest.h>

namespace nomq::detail {
namespace {

using namespace std::chrono_literals;

TEST(NonceCache, RemembersWithinLifetimeAndCapacity) {
  NonceCache c(test::test_arena(), 3, 61s);
  c.insert(1, Instant{0s});
  EXPECT_TRUE(c.contains(1, Instant{60s}));
  EXPECT_FALSE(c.contains(1, Instant{61s}));
  for (std::uint32_t n = 10; n < 14; ++n) c.insert(n, Instant{70s});
  EXPECT_FALSE(c.contains(10, Instant{70s}));  // the oldest went when the fourth came
  EXPECT_TRUE(c.contains(13, Instant{70s}));
  EXPECT_EQ(c.forgotten_early(), 1u);
}

TEST(NonceCache, LargerThanTheOriginals100) {
  NonceCache c(test::test_arena(), 1024, 61s);
  for (std::uint32_t n = 0; n < 1000; ++n) c.insert(n + 1, Instant{1s});
  EXPECT_TRUE(c.contains(1, Instant{2s}));
}

}  // namespace
}  // namespace nomq::detail
