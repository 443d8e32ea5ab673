// How deep a target program's stack went: picolibc's linker script puts the stack at the top of
// RAM (__stack) and ends the heap at __heap_end below it, 2 KiB lower unless the program moves
// __heap_end (mcu/CMakeLists.txt gives the test programs 32 KiB), with nothing guarding the
// boundary. StackDepth fills the free stack, from __heap_end to a margin below the caller's
// frame, with a pattern; peak() finds the deepest byte that changed since, measured from the
// top of the stack (the caller's frame and the C runtime's included). A peak of region() means
// every painted byte changed: the stack reached the heap's end, maybe went past it.
#pragma once

#include <cstddef>
#include <cstdio>

extern "C" char __stack[];
extern "C" char __heap_end[];

namespace nomq::mcu_test {

class StackDepth {
 public:
  // `frame`: the caller's __builtin_frame_address(0). Inline, so that it runs in that frame.
  explicit StackDepth(void* frame) noexcept : below_(static_cast<char*>(frame) - kMargin) {}

  // Not inlined: its own frame lies inside the margin.
  [[gnu::noinline]] void paint() const noexcept {
    for (volatile char* p = __heap_end; p < below_; ++p) *p = static_cast<char>(kPaint);
  }
  std::size_t peak() const noexcept {
    const volatile char* p = __heap_end;
    while (p < below_ && static_cast<unsigned char>(*p) == kPaint) ++p;
    return static_cast<std::size_t>(__stack - const_cast<const char*>(p));
  }
  // peak() less the stack above `frame` (a frame further up, e.g. the caller's own): how deep
  // the calls made from that frame went below it.
  std::size_t below(void* frame) const noexcept {
    return peak() - static_cast<std::size_t>(__stack - static_cast<char*>(frame));
  }
  static std::size_t region() noexcept { return static_cast<std::size_t>(__stack - __heap_end); }
  // Prints `mcu stack_peak_bytes: N (of REGION)` for a peak of `used` bytes; false (and says so)
  // when the stack reached the heap's end.
  static bool report_peak(std::size_t used) noexcept {
    const bool overflow = used >= region();
    std::printf("mcu stack_peak_bytes: %u (of %u)%s\n", static_cast<unsigned>(used),
                static_cast<unsigned>(region()), overflow ? ": the stack reached the heap's end" : "");
    return !overflow;
  }

 private:
  static constexpr unsigned char kPaint = 0xA5;
  static constexpr std::size_t kMargin = 256;  // left unpainted: paint()'s own frame
  char* below_;
};

}  // namespace nomq::mcu_test
