// The part of GoogleTest's API that the unit tests run on the target use, for builds where
// GoogleTest does not fit (Cortex-M under qemu: no exceptions, no RTTI, no iostream, a few
// hundred KB of flash). With this header on the include path a test file such as
// tests/unit/replay_window_test.cpp compiles unchanged for the target, so the target runs the
// same test cases as the host. Output goes through printf (semihosting on the target); main()
// comes from tests/mcu/test_main.cpp and returns non-zero if any check failed.
//
// Supported: TEST, TEST_F (fixtures derived from ::testing::Test, SetUp/TearDown), TEST_P with
// INSTANTIATE_TEST_SUITE_P over ::testing::Values(...), ::testing::ValuesIn(container or array),
// ::testing::Range(a, b) or ::testing::Combine(generators...) of a std::tuple parameter (one
// test case per pattern and instantiation, running every parameter in order; Combine varies the
// last generator fastest, as GoogleTest does), TYPED_TEST_SUITE over ::testing::Types<...> (with
// or without a name generator) and TYPED_TEST (one test case per pattern and type, named
// Suite/TypeName), ::testing::Environment with AddGlobalTestEnvironment (SetUp before the first
// test, TearDown after the last), EXPECT_/ASSERT_ EQ NE LT LE GT GE TRUE FALSE, `<< message`
// after a check (printed only when it fails: integers, enums, strings, pointers, Errc by name),
// SCOPED_TRACE (accepted and ignored: put what a failure needs into its `<<` message),
// ADD_FAILURE, FAIL, RecordProperty (ignored). Not supported: death tests, matchers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <array>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

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
  Failure(const char* file, int line, const char* expr, const Message& values)
      : file_(file), line_(line), expr_(expr), values_(values) {}
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

// A comparison's verdict, with both operands printed if it failed. Both are compared and printed
// inside the full expression that made them, as GoogleTest does: an operand may be a view into
// a temporary (`result.error().message()`) that ends with that expression.
struct Outcome {
  bool ok;
  Message values;
};
template <class A, class B, class Op>
Outcome compare(const A& a, const B& b, Op op) {
  Outcome o{static_cast<bool>(op(a, b)), {}};
  if (!o.ok) o.values << "(" << a << " vs " << b << ")";
  return o;
}

struct Scoped {
  template <class T>
  explicit Scoped(const T&) {}
};

}  // namespace testing_subset

namespace testing {
using testing_subset::Message;

// A fixture: TEST_F(Fixture, Name) derives from Fixture and runs SetUp, the body, TearDown.
class Test {
 public:
  virtual ~Test() = default;
  void Run() {
    SetUp();
    TestBody();
    TearDown();
  }

 protected:
  virtual void SetUp() {}
  virtual void TearDown() {}
  virtual void TestBody() = 0;
};

// A value-parameterised fixture. GetParam() is the parameter of the run in progress.
template <class T>
class TestWithParam : public Test {
 public:
  using ParamType = T;
  static const T& GetParam() { return *current(); }
  static const T*& current() {
    static const T* p = nullptr;
    return p;
  }
};

// Parameter generators: converted to the suite's ParamType when instantiated.
template <class... V>
struct ValuesHolder {
  std::tuple<V...> values;
  template <class T>
  std::vector<T> to_vector() const {
    return std::apply([](const auto&... v) { return std::vector<T>{static_cast<T>(v)...}; },
                      values);
  }
};
template <class... V>
ValuesHolder<V...> Values(V... v) {
  return {std::tuple<V...>{v...}};
}
template <class I>
struct RangeHolder {
  I begin, end;
  template <class T>
  std::vector<T> to_vector() const {
    std::vector<T> out;
    for (I i = begin; i < end; ++i) out.push_back(static_cast<T>(i));
    return out;
  }
};
template <class I>
RangeHolder<I> Range(I begin, I end) {
  return {begin, end};
}
template <class E>
struct ValuesInHolder {
  std::vector<E> values;
  template <class T>
  std::vector<T> to_vector() const {
    std::vector<T> out;
    for (const E& v : values) out.push_back(static_cast<T>(v));
    return out;
  }
};
template <class C>
auto ValuesIn(const C& container) {
  using E = std::decay_t<decltype(*std::begin(container))>;
  return ValuesInHolder<E>{std::vector<E>(std::begin(container), std::end(container))};
}
// Every combination of the generators' values, as std::tuple parameters.
template <class... G>
struct CombineHolder {
  std::tuple<G...> generators;
  template <class T>
  std::vector<T> to_vector() const {
    return product<T>(std::index_sequence_for<G...>{});
  }
  template <class T, std::size_t... I>
  std::vector<T> product(std::index_sequence<I...>) const {
    const auto lists =
        std::make_tuple(std::get<I>(generators).template to_vector<std::tuple_element_t<I, T>>()...);
    const std::array<std::size_t, sizeof...(G)> sizes{std::get<I>(lists).size()...};
    std::vector<T> out;
    for (const std::size_t n : sizes) {
      if (n == 0) return out;
    }
    std::array<std::size_t, sizeof...(G)> at{};
    for (;;) {
      out.push_back(T{std::get<I>(lists)[at[I]]...});
      std::size_t k = sizeof...(G);
      for (;;) {
        if (k == 0) return out;
        --k;
        if (++at[k] < sizes[k]) break;
        at[k] = 0;
      }
    }
  }
};
template <class... G>
CombineHolder<G...> Combine(G... generators) {
  return {std::tuple<G...>{generators...}};
}

// Typed tests: the list of types a TYPED_TEST_SUITE runs over.
template <class... T>
struct Types {};

// A global environment: SetUp before the first test, TearDown after the last (test_main.cpp).
class Environment {
 public:
  virtual ~Environment() = default;
  virtual void SetUp() {}
  virtual void TearDown() {}
};
inline std::vector<Environment*>& environments() {
  static std::vector<Environment*> list;
  return list;
}
inline Environment* AddGlobalTestEnvironment(Environment* e) {
  environments().push_back(e);
  return e;
}

template <class T>
struct TestParamInfo {
  T param;
  std::size_t index;
};
}  // namespace testing

namespace testing_subset {

// The TEST_P patterns of a fixture, in the order they are defined; INSTANTIATE_TEST_SUITE_P
// (after them in the file, as with GoogleTest) registers one test case per pattern.
template <class Suite>
struct Patterns {
  struct Pattern {
    const char* name;
    void (*run)();
  };
  static std::vector<Pattern>& list() {
    static std::vector<Pattern> l;
    return l;
  }
  static std::vector<typename Suite::ParamType>& params() {
    static std::vector<typename Suite::ParamType> p;
    return p;
  }
  struct Add {
    Add(const char* name, void (*run)()) { list().push_back({name, run}); }
  };
};

// Runs one pattern over every parameter of the suite's instantiation.
template <class Suite, std::size_t I>
void run_pattern() {
  auto& pattern = Patterns<Suite>::list()[I];
  for (const auto& p : Patterns<Suite>::params()) {
    Suite::current() = &p;
    pattern.run();
  }
  Suite::current() = nullptr;
}

template <class Suite, std::size_t... I>
void register_patterns(const char* suite, std::index_sequence<I...>) {
  static TestCase cases[sizeof...(I)];
  ((I < Patterns<Suite>::list().size()
        ? (void)(cases[I] = TestCase{suite, Patterns<Suite>::list()[I].name,
                                     &run_pattern<Suite, I>, nullptr},
                 Registrar{&cases[I]})
        : (void)0),
   ...);
}

// Up to 16 TEST_P patterns per fixture.
template <class Suite, class Gen>
struct Instantiate {
  Instantiate(const char* suite, const Gen& gen) {
    auto values = gen.template to_vector<typename Suite::ParamType>();
    auto& params = Patterns<Suite>::params();
    params.insert(params.end(), values.begin(), values.end());
    register_patterns<Suite>(suite, std::make_index_sequence<16>{});
  }
  template <class NameFn>
  Instantiate(const char* suite, const Gen& gen, NameFn) : Instantiate(suite, gen) {}
};

// TYPED_TEST: one test case per type of the suite's list, named Suite/Name-of-the-type (the
// suite's name generator, or the type's index as GoogleTest does without one).
struct IndexTypeNames {
  template <class T>
  static std::string GetName(int i) {
    return std::to_string(i);
  }
};
template <class TypeList, class Names = IndexTypeNames>
struct TypedSuite {
  using List = TypeList;
  using NameGenerator = Names;
};
template <template <class> class Body, class Suite, class List = typename Suite::List>
struct TypedRegistrar;
template <template <class> class Body, class Suite, class... T>
struct TypedRegistrar<Body, Suite, ::testing::Types<T...>> {
  TypedRegistrar(const char* suite, const char* name) {
    int i = 0;
    (add<T>(suite, name, i++), ...);
  }
  template <class U>
  static void run() {
    Body<U> t;
    t.Run();
  }
  template <class U>
  static void add(const char* suite, const char* name, int i) {
    static const std::string full =
        std::string{suite} + "/" + Suite::NameGenerator::template GetName<U>(i);
    static TestCase tc{full.c_str(), name, &run<U>, nullptr};
    Registrar{&tc};
  }
};

}  // namespace testing_subset

#define NOMQ_SUBSET_CONCAT2(a, b) a##b
#define NOMQ_SUBSET_CONCAT(a, b) NOMQ_SUBSET_CONCAT2(a, b)

#define TEST(suite, name)                                                                  \
  static void suite##_##name##_body();                                                     \
  static ::testing_subset::TestCase suite##_##name##_case{#suite, #name,                   \
                                                          suite##_##name##_body, nullptr}; \
  static ::testing_subset::Registrar suite##_##name##_registrar{&suite##_##name##_case};   \
  static void suite##_##name##_body()

#define TEST_F(fixture, name)                                                               \
  class fixture##_##name##_Test : public fixture {                                          \
   protected:                                                                               \
    void TestBody() override;                                                               \
  };                                                                                        \
  static void fixture##_##name##_run() {                                                    \
    fixture##_##name##_Test t;                                                              \
    t.Run();                                                                                \
  }                                                                                         \
  static ::testing_subset::TestCase fixture##_##name##_case{#fixture, #name,                \
                                                            fixture##_##name##_run, nullptr}; \
  static ::testing_subset::Registrar fixture##_##name##_registrar{&fixture##_##name##_case}; \
  void fixture##_##name##_Test::TestBody()

#define TEST_P(fixture, name)                                                               \
  class fixture##_##name##_Test : public fixture {                                          \
   protected:                                                                               \
    void TestBody() override;                                                               \
  };                                                                                        \
  static void fixture##_##name##_run() {                                                    \
    fixture##_##name##_Test t;                                                              \
    t.Run();                                                                                \
  }                                                                                         \
  static ::testing_subset::Patterns<fixture>::Add fixture##_##name##_pattern{               \
      #name, fixture##_##name##_run};                                                       \
  void fixture##_##name##_Test::TestBody()

#define TYPED_TEST_SUITE(fixture, types, ...) \
  using fixture##_SubsetTypedSuite = ::testing_subset::TypedSuite<types __VA_OPT__(, ) __VA_ARGS__>

#define TYPED_TEST(fixture, name)                                                           \
  template <class gtest_TypeParam_>                                                         \
  class fixture##_##name##_Test : public fixture<gtest_TypeParam_> {                        \
   protected:                                                                               \
    using TypeParam = gtest_TypeParam_;                                                     \
    void TestBody() override;                                                               \
  };                                                                                        \
  static ::testing_subset::TypedRegistrar<fixture##_##name##_Test,                          \
                                          fixture##_SubsetTypedSuite>                       \
      fixture##_##name##_registrar{#fixture, #name};                                        \
  template <class gtest_TypeParam_>                                                         \
  void fixture##_##name##_Test<gtest_TypeParam_>::TestBody()

#define INSTANTIATE_TEST_SUITE_P(prefix, fixture, generator, ...)                          \
  static ::testing_subset::Instantiate<fixture, decltype(generator)>                        \
      prefix##_##fixture##_instantiation{#prefix "/" #fixture, generator __VA_OPT__(, ) __VA_ARGS__}

// A check: on failure `on_fail` (nothing for EXPECT, return for ASSERT) applies to the report,
// whose message takes the `<<` text. The switch keeps a caller's if/else unambiguous.
#define NOMQ_SUBSET_CMP(lhs, rhs, op, on_fail)                                      \
  switch (0)                                                                        \
  case 0:                                                                           \
  default:                                                                          \
    if (const auto nomq_v_ = ::testing_subset::compare(                             \
            (lhs), (rhs), [](const auto& x, const auto& y) { return x op y; });     \
        nomq_v_.ok) {                                                               \
    } else                                                                          \
      on_fail ::testing_subset::Failure(__FILE__, __LINE__, #lhs " " #op " " #rhs,  \
                                        nomq_v_.values) = ::testing_subset::Message()

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
#define ADD_FAILURE() ::testing_subset::Failure(__FILE__, __LINE__, "ADD_FAILURE()") = ::testing_subset::Message()
#define FAIL() return ADD_FAILURE()

// GoogleTest's RecordProperty (an XML report attribute): nothing to record to on the target.
template <class V>
void RecordProperty(const char*, const V&) {}

#define SCOPED_TRACE(m) \
  ::testing_subset::Scoped NOMQ_SUBSET_CONCAT(nomq_trace_, __LINE__) { m }
