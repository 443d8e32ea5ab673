// How the simulator reports a run it cannot continue (a bad option, an engine that cannot be
// built, an engine that never stops producing output). Hosted builds throw, as the simulator's
// API documents; a build without exceptions (the simulator on a microcontroller, under qemu:
// tests/mcu/sim_compare.cpp) prints the reason and aborts, which fails that run.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#if defined(__cpp_exceptions)
#include <stdexcept>
#endif

namespace nomq::sim {

[[noreturn]] inline void fail_invalid_argument(const std::string& what) {
#if defined(__cpp_exceptions)
  throw std::invalid_argument(what);
#else
  std::fprintf(stderr, "simulator: invalid argument: %s\n", what.c_str());
  std::abort();
#endif
}

[[noreturn]] inline void fail_runtime(const std::string& what) {
#if defined(__cpp_exceptions)
  throw std::runtime_error(what);
#else
  std::fprintf(stderr, "simulator: %s\n", what.c_str());
  std::abort();
#endif
}

}  // namespace nomq::sim
