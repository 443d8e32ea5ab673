#include "core/priority_queue.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace nomq::detail {
namespace {

TEST(PriorityQueue, HighestPriorityFirstThenFifo) {
  PriorityQueue<int> q(16);
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
  PriorityQueue<int> q(2);
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
  PriorityQueue<int> q(4);
  q.push(200, 1);
  q.push(15, 2);
  EXPECT_EQ(q.at(q.front()), 1);
  EXPECT_EQ(q.front_priority(), 15);
}

}  // namespace
}  // namespace nomq::detail
