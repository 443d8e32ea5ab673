// The part of nlohmann::json's read-only API that the unit tests run on the target use, over
// JSON trees embedded at build time (tests/mcu/gen_json_vectors.py writes the vector files as
// constexpr nodes; there is no JSON parser on the target). With this directory on the include
// path a test such as tests/unit/key_schedule_test.cpp compiles unchanged for the target.
//
// Supported on a const value: operator[] with a member name (an object) or an index (an array),
// size(), begin()/end() (an array's elements, an object's member values), back(), contains(),
// is_null(), is_string(), is_number(), is_discarded(), get<T>() for std::string, bool, integer
// and floating-point T, and == with a string. Where nlohmann::json throws or asserts (a missing
// member, a wrong type) this counts a test failure, prints why, and returns a null value, a
// zero or an empty string. No parsing, no construction, no modification.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>

namespace nlohmann {

class json {
 public:
  enum class kind : std::uint8_t { null, boolean, integer, floating, string, array, object, discarded };

  constexpr json() = default;
  // One node: `key` is its member name in its parent object (nullptr otherwise), `items` the
  // `count` children of an array or object.
  constexpr json(kind k, const char* key, const char* text, long long integer, double floating,
                 const json* items, std::size_t count)
      : kind_(k), key_(key), text_(text), integer_(integer), floating_(floating), items_(items),
        count_(count) {}
  static const json& discarded() {
    static constexpr json d{kind::discarded, nullptr, nullptr, 0, 0.0, nullptr, 0};
    return d;
  }

  bool is_null() const { return kind_ == kind::null; }
  bool is_string() const { return kind_ == kind::string; }
  bool is_number() const { return kind_ == kind::integer || kind_ == kind::floating; }
  bool is_discarded() const { return kind_ == kind::discarded; }

  std::size_t size() const {
    if (kind_ == kind::array || kind_ == kind::object) return count_;
    return kind_ == kind::null || kind_ == kind::discarded ? 0 : 1;
  }
  const json* begin() const { return items_; }
  const json* end() const { return items_ + count_; }

  bool contains(std::string_view member) const { return find(member) != nullptr; }
  const json& operator[](std::string_view member) const {
    if (const json* m = find(member)) return *m;
    fail("no member", member);
    return null_value();
  }
  const json& operator[](std::size_t index) const {
    if (kind_ == kind::array && index < count_) return items_[index];
    fail("no element", std::to_string(index));
    return null_value();
  }
  const json& back() const {
    if (kind_ == kind::array && count_ > 0) return items_[count_ - 1];
    fail("no last element", "");
    return null_value();
  }

  template <class T>
  T get() const {
    if constexpr (std::is_same_v<T, std::string>) {
      if (kind_ == kind::string) return std::string{text_};
      fail("not a string", key_name());
      return {};
    } else if constexpr (std::is_same_v<T, bool>) {
      if (kind_ == kind::boolean) return integer_ != 0;
      fail("not a boolean", key_name());
      return false;
    } else if constexpr (std::is_arithmetic_v<T>) {
      if (kind_ == kind::integer) return static_cast<T>(integer_);
      if (kind_ == kind::floating) return static_cast<T>(floating_);
      fail("not a number", key_name());
      return T{};
    } else {
      static_assert(std::is_arithmetic_v<T>, "get<T>: std::string, bool or a number");
    }
  }

  friend bool operator==(const json& j, std::string_view s) {
    return j.kind_ == kind::string && std::string_view{j.text_} == s;
  }

 private:
  static const json& null_value() {
    static constexpr json n{};
    return n;
  }
  const json* find(std::string_view member) const {
    if (kind_ != kind::object) return nullptr;
    for (const json& m : *this) {
      if (std::string_view{m.key_} == member) return &m;
    }
    return nullptr;
  }
  std::string_view key_name() const { return key_ != nullptr ? key_ : "(element)"; }
  static void fail(const char* what, std::string_view which) {
    ++::testing_subset::current_failures();
    std::printf("json (target subset): %s %.*s\n", what, static_cast<int>(which.size()),
                which.data());
  }

  kind kind_ = kind::null;
  const char* key_ = nullptr;
  const char* text_ = nullptr;
  long long integer_ = 0;
  double floating_ = 0.0;
  const json* items_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace nlohmann
