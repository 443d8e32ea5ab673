// Memory for the table tests: each table takes its arrays from an Arena (core/arena.hpp), as
// in the engine; test_arena() hands out a fresh one over a block that lives until the end of
// the program (kept reachable, so leak checkers stay quiet).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "core/arena.hpp"

namespace nomq::test {

inline detail::Arena& test_arena(std::size_t bytes = 64 * 1024) {
  struct Block {
    std::unique_ptr<std::max_align_t[]> memory;
    detail::Arena arena;
  };
  static std::vector<std::unique_ptr<Block>> blocks;
  const std::size_t words = bytes / sizeof(std::max_align_t) + 1;
  auto memory = std::make_unique<std::max_align_t[]>(words);
  void* base = memory.get();
  blocks.push_back(std::unique_ptr<Block>(new Block{std::move(memory), detail::Arena{base, words * sizeof(std::max_align_t)}}));
  return blocks.back()->arena;
}

}  // namespace nomq::test
