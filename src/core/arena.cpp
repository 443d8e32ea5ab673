// The arena's one out-of-line step (core/arena.hpp).
#include "core/arena.hpp"

#include <cstring>

namespace nomq::detail {

void* Arena::take(std::size_t bytes, bool zero) noexcept {
  // The caller sized the block with the tables' bytes_for(), so running out is a bug in a
  // bytes_for(): it stops the program instead of overrunning the block.
  if (bytes > size_ - used_) __builtin_trap();
  void* p = base_ + used_;
  used_ += bytes;
  if (zero) std::memset(p, 0, bytes);
  return p;
}

}  // namespace nomq::detail
