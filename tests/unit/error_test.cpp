#include "nomq/error.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <system_error>

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

TEST(Errc, EveryCodeHasADomainInItsBlock) {
  EXPECT_EQ(domain(Errc::ok), ErrorDomain::none);
  EXPECT_EQ(domain(Errc::too_short), ErrorDomain::wire);
  EXPECT_EQ(domain(Errc::bad_body), ErrorDomain::wire);
  EXPECT_EQ(domain(Errc::unknown_channel), ErrorDomain::engine);
  EXPECT_EQ(domain(Errc::wrong_wire_version), ErrorDomain::engine);
  EXPECT_EQ(domain(Errc::invalid_argument), ErrorDomain::api);
  EXPECT_EQ(domain(Errc::closed), ErrorDomain::api);
  EXPECT_EQ(domain(Errc::crypto_failure), ErrorDomain::platform);
  EXPECT_EQ(domain(Errc::timed_out), ErrorDomain::platform);
  EXPECT_EQ(domain(Errc::config_unreadable), ErrorDomain::config);
  EXPECT_EQ(domain(Errc::config_bad_field), ErrorDomain::config);
  EXPECT_EQ(to_string(ErrorDomain::config), "config");
}

TEST(Error, CarriesTheCodeAndAReasonJoinedFromParts) {
  const Error e{Errc::message_too_large, "message of ", std::size_t{2000}, " bytes: at most ", 1024,
                " (", std::string{"max_message_size"}, ")", ' ', true};
  EXPECT_EQ(e.code(), Errc::message_too_large);
  EXPECT_EQ(e.message(), "message of 2000 bytes: at most 1024 (max_message_size) true");
  EXPECT_STREQ(e.c_str(), "message of 2000 bytes: at most 1024 (max_message_size) true");
  EXPECT_EQ(e.name(), "message_too_large");
  EXPECT_EQ(e.domain(), ErrorDomain::api);
  // Named: message() is a view into the Error (the Cortex-M4 runner keeps its operands past the
  // full expression, where a temporary would be gone).
  const Error negative{Errc::io_error, -5};
  EXPECT_EQ(negative.message(), "-5");
}

TEST(Error, WithoutAReasonTheMessageIsTheCodesName) {
  const Error e = Errc::bad_mac;
  EXPECT_EQ(e.message(), "bad_mac");
  EXPECT_STREQ(e.c_str(), "bad_mac");
}

TEST(Error, ALongReasonIsCutAndEndsInDots) {
  const std::string long_path(400, 'p');
  const Error e{Errc::config_unreadable, long_path, ": No such file or directory"};
  EXPECT_EQ(e.message().size(), Error::kCapacity);
  EXPECT_EQ(e.message().substr(0, 10), "pppppppppp");
  EXPECT_EQ(e.message().substr(Error::kCapacity - 3), "...");
  EXPECT_EQ(std::string{e.c_str()}.size(), Error::kCapacity);
  // Exactly full, then one more part: the end shows the cut.
  Error full{Errc::io_error, std::string(Error::kCapacity, 'x')};
  EXPECT_EQ(full.message().back(), 'x');
  full.append("more");
  EXPECT_EQ(full.message().size(), Error::kCapacity);
  EXPECT_EQ(full.message().substr(Error::kCapacity - 3), "...");
}

TEST(Error, IsAPlainValueWithoutHeap) {
  static_assert(std::is_trivially_copyable_v<Error>);
  static_assert(std::is_trivially_destructible_v<Error>);
  static_assert(sizeof(Error) == Error::kCapacity + 3);
  Error a{Errc::closed, "first"};
  const Error b = a;
  a = Error{Errc::io_error, "second"};
  EXPECT_EQ(b.message(), "first");
  EXPECT_EQ(a.message(), "second");
}

TEST(Error, ComparesByCodeAndConvertsToItsCode) {
  const Error e{Errc::closed, "the engine is closed"};
  EXPECT_TRUE(e == Errc::closed);
  EXPECT_TRUE(Errc::closed == e);
  EXPECT_TRUE(e != Errc::io_error);
  EXPECT_EQ(e, Error{Errc::closed});
  const Errc code = e;  // counters indexed by code keep working
  EXPECT_EQ(code, Errc::closed);
}

// A type with no default constructor and no copy: Result<T> needs neither.
struct MoveOnly {
  explicit MoveOnly(int v) : value(std::make_unique<int>(v)) {}
  std::unique_ptr<int> value;
};

TEST(Result, HoldsTypesWithoutADefaultConstructor) {
  static_assert(!std::is_default_constructible_v<MoveOnly>);
  Result<MoveOnly> r{std::in_place, 7};
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->value, 7);
  MoveOnly taken = std::move(r).value();
  EXPECT_EQ(*taken.value, 7);
  static_assert(!std::is_copy_constructible_v<Result<MoveOnly>>);

  Result<std::unique_ptr<int>> p = std::make_unique<int>(3);  // converting, as std::expected
  EXPECT_EQ(**p, 3);
}

TEST(Result, AnErrorCarriesItsReason) {
  const auto f = []() -> Result<std::string> {
    return Error{Errc::config_unreadable, "/missing.json: No such file or directory"};
  };
  const auto r = f();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::config_unreadable);
  EXPECT_EQ(r.error().message(), "/missing.json: No such file or directory");
  EXPECT_EQ(r.value_or("fallback"), "fallback");
  const Result<void> v = Error{Errc::closed, "closed"};
  EXPECT_FALSE(v);
  EXPECT_EQ(v.error().message(), "closed");
}

TEST(Result, ErrorOnAValueIsCodeOk) {
  const Result<int> good{1};
  EXPECT_EQ(good.error(), Errc::ok);
  const Result<void> done = Errc::ok;  // success, as `return Errc::ok;` says
  EXPECT_TRUE(done);
  EXPECT_EQ(done.error(), Errc::ok);
}

// The misuse policy (nomq/error.hpp): reading the value of an error aborts, in every build
// type, saying which call and which error. GoogleTest's death tests fork; the Cortex-M4 runner
// (tests/mcu/gtest_subset) has none, so there this file runs without them.
#if GTEST_HAS_DEATH_TEST
TEST(ResultDeathTest, ValueOfAnErrorAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Result<int> bad = Error{Errc::too_many_pending, "50 pending"};
  EXPECT_DEATH((void)bad.value(),
               R"(nomq: Result::value\(\) on an error: too_many_pending: 50 pending)");
  EXPECT_DEATH((void)*bad, R"(nomq: Result::operator\* on an error: too_many_pending)");
  Result<std::string> text = Errc::closed;
  EXPECT_DEATH((void)text->size(), "nomq: Result::operator-> on an error: closed: closed");
  EXPECT_DEATH((void)Result<int>{Errc::ok}, R"(Result<T>\(Errc::ok\))");
}
#endif

}  // namespace
}  // namespace nomq
