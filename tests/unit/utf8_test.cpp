#include "wire/utf8.hpp"

#include <gtest/gtest.h>

#include <string_view>

namespace nomq::detail {
namespace {

bool valid(std::string_view s) { return is_valid_utf8(as_bytes(s)); }

TEST(Utf8, AcceptsWellFormedText) {
  EXPECT_TRUE(valid(""));
  EXPECT_TRUE(valid("plain ascii"));
  EXPECT_TRUE(valid("temp\xC3\xA9rature 21,5 \xC2\xB0" "C \xE2\x9C\x93"));
  EXPECT_TRUE(valid("\xF0\x9F\x98\x80"));          // U+1F600
  EXPECT_TRUE(valid("\xF4\x8F\xBF\xBF"));          // U+10FFFF, the last code point
  EXPECT_TRUE(valid("\xED\x9F\xBF"));              // U+D7FF, just below the surrogates
  EXPECT_TRUE(valid("\xEE\x80\x80"));              // U+E000, just above them
  EXPECT_TRUE(valid(std::string_view("\0", 1)));  // NUL is a character
}

TEST(Utf8, RejectsWhatPythonsStrictDecoderRejects) {
  EXPECT_FALSE(valid("\xC3\x28"));              // the legacy vector invalid_utf8
  EXPECT_FALSE(valid("\x80"));                  // lone continuation
  EXPECT_FALSE(valid("\xC3"));                  // truncated 2-byte
  EXPECT_FALSE(valid("\xE2\x9C"));              // truncated 3-byte
  EXPECT_FALSE(valid("\xF0\x9F\x98"));          // truncated 4-byte
  EXPECT_FALSE(valid("\xC0\xAF"));              // overlong '/'
  EXPECT_FALSE(valid("\xC1\xBF"));              // overlong
  EXPECT_FALSE(valid("\xE0\x80\xAF"));          // overlong 3-byte
  EXPECT_FALSE(valid("\xF0\x80\x80\xAF"));      // overlong 4-byte
  EXPECT_FALSE(valid("\xED\xA0\x80"));          // U+D800 surrogate
  EXPECT_FALSE(valid("\xED\xBF\xBF"));          // U+DFFF surrogate
  EXPECT_FALSE(valid("\xF4\x90\x80\x80"));      // U+110000
  EXPECT_FALSE(valid("\xF5\x80\x80\x80"));      // F5 lead
  EXPECT_FALSE(valid("\xFF"));
  EXPECT_FALSE(valid("\xE2\x28\xA1"));          // bad continuation in 3-byte
  EXPECT_FALSE(valid("\xF0\x9F\x28\x80"));      // bad third byte in 4-byte
}

}  // namespace
}  // namespace nomq::detail
