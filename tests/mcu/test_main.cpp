// main() of a target test program: runs every TEST registered through the GoogleTest subset
// (tests/mcu/gtest_subset) in order and returns 0 only if every check held. Under qemu with
// semihosting that return value is the process's exit code: the CI verdict.
//
// It also measures the stack each test used. picolibc's linker script gives the stack the top
// of RAM (2 KiB unless a program moves __heap_end: mcu/CMakeLists.txt gives the test programs
// 32 KiB) and ends the heap below it, at __heap_end; nothing guards the boundary. Before each
// test main() fills the free stack, from __heap_end to a little below its own frame, with a
// pattern, and after it finds the deepest byte that changed: "stack: N bytes" is how far below
// the top of the stack that test's calls reached (main's frame and the C runtime's included),
// `mcu stack_peak_bytes: N` the most of any test. A test that changed every painted byte ran
// into the heap's end: a failure.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>

extern "C" char __stack[];     // the top of the stack (picolibc.ld)
extern "C" char __heap_end[];  // the bottom of the stack's region

namespace {

constexpr unsigned char kPaint = 0xA5;
constexpr std::size_t kMargin = 256;  // left unpainted below main's frame: the painting's own

// Not inlined: its frame is below main's, inside the margin.
[[gnu::noinline]] void paint(char* below) {
  for (volatile char* p = __heap_end; p < below; ++p) *p = static_cast<char>(kPaint);
}

std::size_t peak(char* below) {
  const volatile char* p = __heap_end;
  while (p < below && static_cast<unsigned char>(*p) == kPaint) ++p;
  return static_cast<std::size_t>(__stack - const_cast<const char*>(p));
}

}  // namespace

int main() {
  char* const below = static_cast<char*>(__builtin_frame_address(0)) - kMargin;
  const std::size_t region = static_cast<std::size_t>(__stack - __heap_end);
  std::size_t most = 0;
  int tests = 0;
  int failed = 0;
  for (auto* t = testing_subset::first_test(); t != nullptr; t = t->next) {
    const int before = testing_subset::current_failures();
    std::printf("[ RUN      ] %s.%s\n", t->suite, t->name);
    paint(below);
    t->fn();
    const std::size_t used = peak(below);
    if (used > most) most = used;
    std::printf("  stack: %zu bytes\n", used);
    const bool ok = testing_subset::current_failures() == before;
    std::printf("[ %s ] %s.%s\n", ok ? "     OK" : "FAILED ", t->suite, t->name);
    ++tests;
    if (!ok) ++failed;
  }
  // Every painted byte changed: the stack went at least to the region's end, maybe past it.
  const bool overflow = most >= region;
  std::printf("mcu stack_peak_bytes: %zu (of %zu)%s\n", most, region,
              overflow ? ": the stack reached the heap's end" : "");
  if (overflow) ++failed;
  std::printf("[==========] %d tests, %d failed\n", tests, failed);
  return failed == 0 ? 0 : 1;
}
