// main() of a target test program: runs every TEST registered through the GoogleTest subset
// (tests/mcu/gtest_subset) in order and returns 0 only if every check held. Under qemu with
// semihosting that return value is the process's exit code: the CI verdict.
#include <gtest/gtest.h>

#include <cstdio>

int main() {
  int tests = 0;
  int failed = 0;
  for (auto* e : testing::environments()) e->SetUp();
  for (auto* t = testing_subset::first_test(); t != nullptr; t = t->next) {
    const int before = testing_subset::current_failures();
    std::printf("[ RUN      ] %s.%s\n", t->suite, t->name);
    t->fn();
    const bool ok = testing_subset::current_failures() == before;
    std::printf("[ %s ] %s.%s\n", ok ? "     OK" : "FAILED ", t->suite, t->name);
    ++tests;
    if (!ok) ++failed;
  }
  const auto& environments = testing::environments();
  const int before = testing_subset::current_failures();
  for (auto e = environments.rbegin(); e != environments.rend(); ++e) (*e)->TearDown();
  if (testing_subset::current_failures() != before) ++failed;  // a check in a TearDown
  std::printf("[==========] %d tests, %d failed\n", tests, failed);
  return failed == 0 ? 0 : 1;
}
