#include "core/retained_store.hpp"
#include "unit/arena_support.hpp"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <vector>

namespace nomq::detail {
namespace {

using namespace std::chrono_literals;

wire::ChannelId ch(std::uint8_t b) {
  wire::ChannelId c{};
  c[0] = b;
  return c;
}

std::uint32_t make(MessagePool& pool, std::uint8_t channel, const char* text, Instant expires) {
  const std::uint32_t s = pool.alloc(1, std::string_view{text}.size());
  pool.meta(s).channel_id = ch(channel);
  pool.meta(s).expires = expires;
  pool.set(s, "c", as_bytes(text));
  return s;
}

std::vector<std::string> published(RetainedStore& r, MessagePool& pool, std::uint8_t c, Instant now) {
  std::vector<std::string> out;
  r.for_each_published(ch(c), now, [&](std::uint32_t s) {
    out.emplace_back(as_string_view(pool.message(s)));
  });
  return out;
}

TEST(RetainedStore, KeepsTheLastNWithinTtl) {
  MessagePool pool(test::test_arena(), 16, 16 * MessagePool::block_bytes(1, 32));
  RetainedStore r(test::test_arena(), pool, 4, 2);
  for (const char* m : {"a", "b", "c"}) {
    const auto s = make(pool, 1, m, Instant{100s});
    ASSERT_EQ(r.add_published(s, Instant{0s}), Errc::ok);
    pool.unref(s);
  }
  EXPECT_EQ(published(r, pool, 1, Instant{1s}), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(pool.free_count(), 14u);  // "a" was released
  EXPECT_TRUE(published(r, pool, 1, Instant{100s}).empty());  // expired
  EXPECT_EQ(pool.free_count(), 16u);
}

TEST(RetainedStore, ChannelBoundIsTooManyRetainedUnlessAnEntryIsReclaimable) {
  MessagePool pool(test::test_arena(), 16, 16 * MessagePool::block_bytes(1, 32));
  RetainedStore r(test::test_arena(), pool, 1, 2);
  const auto a = make(pool, 1, "a", Instant{10s});
  ASSERT_EQ(r.add_published(a, Instant{0s}), Errc::ok);
  EXPECT_FALSE(r.can_add(ch(2), Instant{1s}));
  const auto b = make(pool, 2, "b", Instant{100s});
  EXPECT_EQ(r.add_published(b, Instant{1s}), Errc::too_many_retained);
  EXPECT_TRUE(r.can_add(ch(2), Instant{10s}));  // channel 1's only message expired
  EXPECT_EQ(r.add_published(b, Instant{10s}), Errc::ok);
}

TEST(RetainedStore, SubscriberCopyAndAnswerTimers) {
  MessagePool pool(test::test_arena(), 8, 8 * MessagePool::block_bytes(1, 32));
  RetainedStore r(test::test_arena(), pool, 2, 1);
  const auto s = make(pool, 3, "v", Instant{100s});
  ASSERT_TRUE(r.set_copy(s, Instant{0s}));
  pool.unref(s);
  EXPECT_EQ(r.copy(ch(3), Instant{1s}), s);
  r.schedule_answer(ch(3), Instant{2s});
  EXPECT_EQ(r.next_answer(), Instant{2s});
  EXPECT_FALSE(r.pop_due_answer(Instant{1s}));
  r.cancel_answer(ch(3));  // another node answered first
  EXPECT_FALSE(r.pop_due_answer(Instant{3s}));
  r.schedule_answer(ch(3), Instant{4s});
  auto due = r.pop_due_answer(Instant{4s});
  ASSERT_TRUE(due);
  EXPECT_EQ(*due, ch(3));
  EXPECT_EQ(r.copy(ch(3), Instant{100s}), kNoSlot);
}

// next_answer() answers from a count of scheduled answers (no scan with none); with some it
// must agree with a scan over every channel, whatever schedules, cancels, pops and drops.
TEST(RetainedStore, NextAnswerAgreesWithABruteForceScan) {
  const std::uint32_t seed = 0x72657461u;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng{seed};
  auto pick = [&rng](std::uint32_t n) { return static_cast<std::uint32_t>(rng() % n); };
  constexpr std::uint8_t kChannels = 6;
  MessagePool pool(test::test_arena(), 64, 64 * MessagePool::block_bytes(1, 16));
  RetainedStore r(test::test_arena(), pool, 4, 2);
  std::array<Instant, kChannels> due{};
  Instant now{100s};
  for (int step = 0; step < 20000; ++step) {
    const auto c = static_cast<std::uint8_t>(pick(kChannels));
    switch (pick(6)) {
      case 0: {
        const std::uint32_t s = make(pool, c, "x", now + Duration{std::int64_t{pick(4'000'000)}});
        (void)r.set_copy(s, now);
        pool.unref(s);
        break;
      }
      case 1: {
        const Instant when = now + Duration{std::int64_t{pick(1'000'000)}};
        const bool before = r.answer_scheduled(ch(c));
        r.schedule_answer(ch(c), when);
        if (!before && r.answer_scheduled(ch(c))) due[c] = when;
        break;
      }
      case 2: r.cancel_answer(ch(c)); break;
      case 3: r.drop_copy(ch(c)); break;
      case 4: while (r.pop_due_answer(now)) {} break;
      case 5: now += Duration{std::int64_t{pick(500'000)}}; break;
    }
    std::optional<Instant> expected;
    for (std::uint8_t k = 0; k < kChannels; ++k) {
      if (r.answer_scheduled(ch(k)) && (!expected || due[k] < *expected)) expected = due[k];
    }
    ASSERT_EQ(r.next_answer(), expected) << "step " << step;
  }
}

}  // namespace
}  // namespace nomq::detail
