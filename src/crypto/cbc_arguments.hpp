// The no-padding CBC contract of Crypto::cbc_encrypt/cbc_decrypt, checked the same way by every
// backend before its library sees the buffers (include/nomq/crypto.hpp).
#pragma once

#include <cstdint>

#include "nomq/bytes.hpp"
#include "nomq/crypto.hpp"

namespace nomq::detail {

// True if `in` is a non-zero multiple of the block size, `out` is at least as large, and the
// two either are the same buffer (in place) or do not overlap at all. Libraries handle exact
// aliasing; a partial overlap would have them read bytes they already overwrote.
inline bool cbc_arguments_valid(Bytes in, MutableBytes out) noexcept {
  if (in.empty() || in.size() % kBlockSize != 0 || out.size() < in.size()) return false;
  const auto in_at = reinterpret_cast<std::uintptr_t>(in.data());
  const auto out_at = reinterpret_cast<std::uintptr_t>(out.data());
  return in_at == out_at || in_at >= out_at + in.size() || out_at >= in_at + in.size();
}

}  // namespace nomq::detail
