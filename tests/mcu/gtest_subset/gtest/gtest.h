// The part of GoogleTest's API that the unit tests run on the target use, for builds where
// GoogleTest does not fit (Cortex-M under qemu: no exceptions, no RTTI, no iostream, a few
// hundred KB of flash). With this header on the include path a test file such as
// tests/unit/replay_window_test.cpp compiles unchanged for the target, so the target runs the
// same test cases as the host. Output goes through printf (semihosting on the target); main()
// comes from tests/mcu/test_main.cpp and returns non-zero if any check failed.
//
// Supported: TEST, EXPECT_/ASSERT_ EQ NE LT LE GT GE TRUE FALSE, `<< message` after a check
// (printed only when it fails: integers, enums, strings, pointers, Errc by name), SCOPED_TRACE
// (accepted and ignored: put what a failure needs into its `<<` message). Not supported:
// fixtures, typed and value-parameterised tests, death tests, matchers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <type_traits>

#include "nomq/error.hpp"

namespace testing_subset {

using TestFn = void (*)();

struct TestCase {
  const char* suite;
  const char* name;
  TestFn fn;
  TestCase* next;
};

// Registration order is kept so that runs are reproducible.
inline TestCase*& first_test() {
  static TestCase* head = nullptr;
  return head;
}
inline TestCase*& last_test() {
  static TestCase* tail = nullptr;
  return tail;
}

struct Registrar {
  Registrar(TestCase* tc) {
    if (last_test() == nullptr) {
      first_test() = tc;
    } else {
      last_test()->next = tc;
    }
    last_test() = tc;
  }
};

inline int& current_failures() {
  static int n = 0;
  return n;
}

// Collects what follows a check (`<< "seed " << seed`) into a fixed buffer.
class Message {
 public:
  template <class T>
  Message& operator<<(const T& value) {
    if constexpr (std::is_same_v<T, bool>) {
      append("%s", value ? "true" : "false");
    } else if constexpr (std::is_same_v<T, nomq::Errc>) {
      const std::string_view s = nomq::to_string(value);
      append("%.*s", static_cast<int>(s.size()), s.data());
    } else if constexpr (std::is_enum_v<T> || (std::is_integral_v<T> && std::is_signed_v<T>)) {
      append("%lld", static_cast<long long>(value));
    } else if constexpr (std::is_integral_v<T>) {
      append("%llu", static_cast<unsigned long long>(value));
    } else if constexpr (std::is_null_pointer_v<T>) {
      append("%s", "nullptr");
    } else if constexpr (std::is_convertible_v<T, const char*>) {
      const char* p = value;
      append("%s", p != nullptr ? p : "nullptr");
    } else if constexpr (std::is_pointer_v<T>) {
      append("%p", static_cast<const void*>(value));
    } else if constexpr (std::is_convertible_v<T, std::string_view>) {
      const std::string_view s = value;
      append("%.*s", static_cast<int>(s.size()), s.data());
    } else {
      append("%s", "(value)");
    }
    return *this;
  }
  const char* text() const { return buf_; }

 private:
  template <class... Args>
  void append(const char* format, Args... args) {
    const int n = std::snprintf(buf_ + used_, sizeof buf_ - used_, format, args...);
    if (n > 0) used_ = used_ + static_cast<std::size_t>(n) < sizeof buf_ ? used_ + static_cast<std::size_t>(n) : sizeof buf_ - 1;
  }
  char buf_[160] = {};
  std::size_t used_ = 0;
};

// Reports one failed check when the check's Message is assigned to it (GoogleTest's trick:
// `=` binds after every `<<`, so the whole message exists by then).
class Failure {
 public:
  Failure(const char* file, int line, const char* expr) : file_(file), line_(line), expr_(expr) {}
  template <class A, class B>
  Failure(const char* file, int line, const char* expr, const A& a, const B& b)
      : Failure(file, line, expr) {
    values_ << "(" << a << " vs " << b << ")";
  }
  void operator=(const Message& m) const {
    ++current_failures();
    std::printf("%s:%d: Failure: %s %s %s\n", file_, line_, expr_, values_.text(), m.text());
  }

 private:
  const char* file_;
  int line_;
  const char* expr_;
  Message values_;
};

// Both operands of a comparison, by value: a temporary operand (a function's result) would
// not outlive the if statement's init-statement if it were held by reference.
template <class A, class B>
struct Operands {
  A a;
  B b;
};
template <class A, class B>
Operands<std::decay_t<const A&>, std::decay_t<const B&>> operands(const A& a, const B& b) {
  return {a, b};
}

struct Scoped {
  template <class T>
  explicit Scoped(const T&) {}
};

}  // namespace testing_subset

namespace testing {
using testing_subset::Message;
}

#define NOMQ_SUBSET_CONCAT2(a, b) a##b
#define NOMQ_SUBSET_CONCAT(a, b) NOMQ_SUBSET_CONCAT2(a, b)

#define TEST(suite, name)                                                                  \
  static void suite##_##name##_body();                                                     \
  static ::testing_subset::TestCase suite##_##name##_case{#suite, #name,                   \
                                                          suite##_##name##_body, nullptr}; \
  static ::testing_subset::Registrar suite##_##name##_registrar{&suite##_##name##_case};   \
  static void suite##_##name##_body()

// A check: on failure `on_fail` (nothing for EXPECT, return for ASSERT) applies to the report,
// whose message takes the `<<` text. The switch keeps a caller's if/else unambiguous.
#define NOMQ_SUBSET_CMP(lhs, rhs, op, on_fail)                                      \
  switch (0)                                                                        \
  case 0:                                                                           \
  default:                                                                          \
    if (const auto nomq_v_ = ::testing_subset::operands((lhs), (rhs));              \
        nomq_v_.a op nomq_v_.b) {                                                   \
    } else                                                                          \
      on_fail ::testing_subset::Failure(__FILE__, __LINE__, #lhs " " #op " " #rhs,  \
                                        nomq_v_.a, nomq_v_.b) = ::testing_subset::Message()

#define NOMQ_SUBSET_BOOL(cond, expected, on_fail)                                   \
  switch (0)                                                                        \
  case 0:                                                                           \
  default:                                                                          \
    if (static_cast<bool>(cond) == (expected)) {                                    \
    } else                                                                          \
      on_fail ::testing_subset::Failure(__FILE__, __LINE__, #cond) =                \
          ::testing_subset::Message()

#define EXPECT_EQ(a, b) NOMQ_SUBSET_CMP(a, b, ==, )
#define EXPECT_NE(a, b) NOMQ_SUBSET_CMP(a, b, !=, )
#define EXPECT_LT(a, b) NOMQ_SUBSET_CMP(a, b, <, )
#define EXPECT_LE(a, b) NOMQ_SUBSET_CMP(a, b, <=, )
#define EXPECT_GT(a, b) NOMQ_SUBSET_CMP(a, b, >, )
#define EXPECT_GE(a, b) NOMQ_SUBSET_CMP(a, b, >=, )
#define EXPECT_STREQ(a, b) NOMQ_SUBSET_CMP(std::string_view{a}, std::string_view{b}, ==, )
#define EXPECT_TRUE(c) NOMQ_SUBSET_BOOL(c, true, )
#define EXPECT_FALSE(c) NOMQ_SUBSET_BOOL(c, false, )
#define ASSERT_EQ(a, b) NOMQ_SUBSET_CMP(a, b, ==, return)
#define ASSERT_NE(a, b) NOMQ_SUBSET_CMP(a, b, !=, return)
#define ASSERT_LT(a, b) NOMQ_SUBSET_CMP(a, b, <, return)
#define ASSERT_LE(a, b) NOMQ_SUBSET_CMP(a, b, <=, return)
#define ASSERT_GT(a, b) NOMQ_SUBSET_CMP(a, b, >, return)
#define ASSERT_GE(a, b) NOMQ_SUBSET_CMP(a, b, >=, return)
#define ASSERT_TRUE(c) NOMQ_SUBSET_BOOL(c, true, return)
#define ASSERT_FALSE(c) NOMQ_SUBSET_BOOL(c, false, return)
#define SCOPED_TRACE(m) \
  ::testing_subset::Scoped NOMQ_SUBSET_CONCAT(nomq_trace_, __LINE__) { m }
