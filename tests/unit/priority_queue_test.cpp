#include "core/priority_queue.hpp"
#include "unit/arena_support.hpp"

#include <gtest/gtest.h>

#include <array>
#include <deque>
#include <random>
#include <vector>

namespace nomq::detail {
namespace {

TEST(PriorityQueue, HighestPriorityFirstThenFifo) {
  PriorityQueue<int> q(test::test_arena(), 16);
  const std::uint8_t prios[] = {0, 5, 15, 5, 0, 15, 7};
  for (int i = 0; i < 7; ++i) ASSERT_NE(q.push(prios[i], i), PriorityQueue<int>::npos);
  std::vector<int> out;
  while (!q.empty()) {
    out.push_back(q.at(q.front()));
    q.pop();
  }
  EXPECT_EQ(out, (std::vector<int>{2, 5, 6, 1, 3, 0, 4}));
}

TEST(PriorityQueue, FixedCapacityRefusesWhenFullAndReusesNodes) {
  PriorityQueue<int> q(test::test_arena(), 2);
  EXPECT_NE(q.push(1, 1), PriorityQueue<int>::npos);
  EXPECT_NE(q.push(1, 2), PriorityQueue<int>::npos);
  EXPECT_TRUE(q.full());
  EXPECT_EQ(q.push(9, 3), PriorityQueue<int>::npos);
  q.pop();
  EXPECT_NE(q.push(9, 3), PriorityQueue<int>::npos);
  EXPECT_EQ(q.at(q.front()), 3);
  EXPECT_EQ(q.front_priority(), 9);
}

TEST(PriorityQueue, PriorityAbove15IsClamped) {
  PriorityQueue<int> q(test::test_arena(), 4);
  q.push(200, 1);
  q.push(15, 2);
  EXPECT_EQ(q.at(q.front()), 1);
  EXPECT_EQ(q.front_priority(), 15);
}

// Any interleaving of pushes at random levels and pops comes out highest level first, FIFO
// within a level, as a reference model (one deque per level) says.
TEST(PriorityQueue, MatchesAModelUnderRandomPushesAndPops) {
  const std::uint32_t seed = 1616;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng{seed};
  PriorityQueue<int> q(test::test_arena(), 24);
  std::array<std::deque<int>, 16> model;
  std::size_t model_size = 0;
  int next = 0;
  for (int step = 0; step < 50000; ++step) {
    if (rng() % 2 == 0) {
      const auto level = static_cast<std::uint8_t>(rng() % 16);
      const bool pushed = q.push(level, next) != PriorityQueue<int>::npos;
      ASSERT_EQ(pushed, model_size < 24) << "step " << step;
      if (pushed) {
        model[level].push_back(next);
        ++model_size;
      }
      ++next;
    } else {
      int top = 15;
      while (top >= 0 && model[static_cast<std::size_t>(top)].empty()) --top;
      if (top < 0) {
        ASSERT_EQ(q.front(), PriorityQueue<int>::npos) << "step " << step;
        continue;
      }
      const std::uint32_t n = q.front();
      ASSERT_NE(n, PriorityQueue<int>::npos) << "step " << step;
      ASSERT_EQ(q.front_priority(), top) << "step " << step;
      ASSERT_EQ(q.at(n), model[static_cast<std::size_t>(top)].front()) << "step " << step;
      q.pop();
      model[static_cast<std::size_t>(top)].pop_front();
      --model_size;
    }
    ASSERT_EQ(q.size(), model_size);
  }
}

}  // namespace
}  // namespace nomq::detail
