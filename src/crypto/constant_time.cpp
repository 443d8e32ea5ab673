// Portable constant-time comparison for the core (no OS headers). Backends may override
// Crypto::mac_equal with their library's routine; this is the fallback and the reference.
#include <cstddef>
#include <cstdint>

#include "nomq/crypto.hpp"

namespace nomq {

bool constant_time_equal(Bytes a, Bytes b) noexcept {
  if (a.size() != b.size()) return false;  // lengths are public (fixed MAC size)
  // Accumulate every difference; no early exit, so time depends on the length only. The
  // volatile accumulator keeps the compiler from turning the loop into memcmp.
  volatile std::uint8_t diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff = static_cast<std::uint8_t>(diff | (a[i] ^ b[i]));
  return diff == 0;
}

}  // namespace nomq
