// main() of a target test program: runs every TEST registered through the GoogleTest subset
// (tests/mcu/gtest_subset) in order and returns 0 only if every check held. Under qemu with
// semihosting that return value is the process's exit code: the CI verdict.
//
// It also measures the stack each test used (tests/mcu/stack_depth.hpp): it prints each test's
// depth ("stack: N bytes": main's frame, the C runtime's, the test's own locals and printf
// included) and `mcu stack_peak_bytes`, the most of any test; a test that reached the heap's
// end fails the program.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdio>

#include "mcu/stack_depth.hpp"

int main() {
  const nomq::mcu_test::StackDepth stack(__builtin_frame_address(0));
  std::size_t most = 0;
  int tests = 0;
  int failed = 0;
  for (auto* e : testing::environments()) e->SetUp();
  for (auto* t = testing_subset::first_test(); t != nullptr; t = t->next) {
    const int before = testing_subset::current_failures();
    std::printf("[ RUN      ] %s.%s\n", t->suite, t->name);
    stack.paint();
    t->fn();
    const std::size_t used = stack.peak();
    if (used > most) most = used;
    std::printf("  stack: %zu bytes\n", used);
    const bool ok = testing_subset::current_failures() == before;
    std::printf("[ %s ] %s.%s\n", ok ? "     OK" : "FAILED ", t->suite, t->name);
    ++tests;
    if (!ok) ++failed;
  }
  const auto& environments = testing::environments();
  const int before = testing_subset::current_failures();
  for (auto e = environments.rbegin(); e != environments.rend(); ++e) (*e)->TearDown();
  if (testing_subset::current_failures() != before) ++failed;  // a check in a TearDown
  if (!nomq::mcu_test::StackDepth::report_peak(most)) ++failed;
  std::printf("[==========] %d tests, %d failed\n", tests, failed);
  return failed == 0 ? 0 : 1;
}
