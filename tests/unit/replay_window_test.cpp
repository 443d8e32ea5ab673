#include "core/replay_window.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

namespace nomq::detail {
namespace {

struct Window {
  explicit Window(std::uint32_t width) : bits(ReplayWindow::blocks_for(width)) { w.reset(bits); }
  Errc offer(std::uint32_t seq) {
    const Errc e = w.check(seq);
    if (e == Errc::ok) w.update(seq);
    return e;
  }
  std::vector<std::uint64_t> bits;
  ReplayWindow w;
};

TEST(ReplayWindow, AtLeast1024Wide) {
  Window w(1024);
  EXPECT_GE(w.w.width(), 1024u);
}

TEST(ReplayWindow, FirstAndNewerAcceptedRepeatRejected) {
  Window w(1024);
  EXPECT_EQ(w.offer(5), Errc::ok);
  EXPECT_EQ(w.offer(5), Errc::replayed);
  EXPECT_EQ(w.offer(6), Errc::ok);
  EXPECT_EQ(w.offer(4), Errc::ok);  // late but inside the window
  EXPECT_EQ(w.offer(4), Errc::replayed);
}

TEST(ReplayWindow, CheckDoesNotAdvance) {
  Window w(1024);
  EXPECT_EQ(w.w.check(10), Errc::ok);
  EXPECT_EQ(w.w.check(10), Errc::ok);  // nothing recorded until update()
  EXPECT_TRUE(w.w.empty());
}

TEST(ReplayWindow, OlderThanTheWindowIsRejectedAsOld) {
  Window w(1024);
  ASSERT_EQ(w.offer(5000), Errc::ok);
  EXPECT_EQ(w.offer(5000 - w.w.width()), Errc::replay_window_old);
  EXPECT_EQ(w.offer(5000 - w.w.width() + 1), Errc::ok);
}

TEST(ReplayWindow, BigJumpClearsEverything) {
  Window w(1024);
  for (std::uint32_t s = 1; s <= 100; ++s) ASSERT_EQ(w.offer(s), Errc::ok);
  ASSERT_EQ(w.offer(1'000'000), Errc::ok);
  EXPECT_EQ(w.offer(1'000'000 - 10), Errc::ok);
  EXPECT_EQ(w.offer(1'000'000 - 10), Errc::replayed);
}

TEST(ReplayWindow, RandomReorderingWithinTheWindowMatchesAReferenceSet) {
  const std::uint32_t seed = 12345;
  std::mt19937 rng(seed);
  Window w(1024);
  std::set<std::uint32_t> seen;
  std::uint32_t top = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::uint32_t base = static_cast<std::uint32_t>(i) + 2000;
    const std::uint32_t seq = base - static_cast<std::uint32_t>(rng() % 1500);
    Errc want;
    if (!seen.empty() && seq + w.w.width() <= top) {
      want = Errc::replay_window_old;
    } else if (seen.count(seq) != 0) {
      want = Errc::replayed;
    } else {
      want = Errc::ok;
    }
    ASSERT_EQ(w.offer(seq), want) << "seed " << seed << " step " << i << " seq " << seq;
    if (want == Errc::ok) {
      seen.insert(seq);
      top = std::max(top, seq);
    }
  }
}

}  // namespace
}  // namespace nomq::detail
