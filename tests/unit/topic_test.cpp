// MQTT topic-filter rules of src/wire/topic.cpp (docs/protocol.md §13), case by case.
#include <gtest/gtest.h>

#include "nomq/wire.hpp"

namespace nomq::wire {
namespace {

TEST(Topic, IsFilter) {
  EXPECT_TRUE(is_filter("a/#"));
  EXPECT_TRUE(is_filter("+"));
  EXPECT_TRUE(is_filter("a+b"));  // malformed, but not a channel either
  EXPECT_FALSE(is_filter("a/b"));
  EXPECT_FALSE(is_filter(""));
}

TEST(Topic, ValidFilters) {
  for (const char* f : {"#", "+", "a/#", "a/+", "+/+", "+/a/#", "a//+", "/#", "a", "a/b/c", "+/"}) {
    EXPECT_TRUE(valid_filter(f)) << f;
  }
  for (const char* f : {"", "a#", "#a", "a/#/b", "##", "a/b#", "a+", "+a", "a/+b", "++", "#/"}) {
    EXPECT_FALSE(valid_filter(f)) << f;
  }
}

struct Case {
  const char* filter;
  const char* name;
  bool match;
};

// The examples of MQTT 5.0 §4.7.1 and §4.7.2, plus edges.
TEST(Topic, Matching) {
  const Case cases[] = {
      {"sport/tennis/player1/#", "sport/tennis/player1", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"sport/#", "sport", true},
      {"#", "sport", true},
      {"#", "a/b/c", true},
      {"#", "/", true},
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player1/tournament", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},
      {"+/+", "/finance", true},
      {"/+", "/finance", true},
      {"+", "/finance", false},
      {"+", "finance", true},
      {"a/b", "a/b", true},
      {"a/b", "a/bc", false},
      {"a/b", "a/b/c", false},
      {"a/+/c", "a//c", true},
      {"a/+/c", "a/b/d", false},
      {"a/#", "ab", false},
      {"a/#", "a/", true},
      {"#", "$SYS/x", false},
      {"+/x", "$SYS/x", false},
      {"$SYS/#", "$SYS/x", true},
      {"a/+", "a/$x", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(filter_matches(c.filter, c.name), c.match) << c.filter << " ~ " << c.name;
  }
}

}  // namespace
}  // namespace nomq::wire
