// Per-sender-session anti-replay window over v2 sequence numbers (RFC 6479 style): a ring of
// 64-bit blocks, one bit per sequence number; advancing clears whole blocks, so a check or an
// update costs O(1) amortised whatever the window width. The bits live in storage the owner
// allocated once (the sender table), so a window itself never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "nomq/error.hpp"

namespace nomq::detail {

class ReplayWindow {
 public:
  // Blocks needed for a window of at least `width` sequence numbers (one spare block, as in
  // RFC 6479, so the newest block can fill while the oldest still covers the window).
  static constexpr std::size_t blocks_for(std::uint32_t width) noexcept {
    return (static_cast<std::size_t>(width) + 63) / 64 + 1;
  }

  ReplayWindow() = default;
  // Binds the window to `blocks` (from blocks_for) and forgets everything seen.
  void reset(std::span<std::uint64_t> blocks) noexcept;

  // The sequence numbers the window guarantees to remember behind the newest one.
  std::uint32_t width() const noexcept;

  // ok: never seen and inside the window (or newer than anything seen);
  // replayed: seen before; replay_window_old: too far behind the newest to tell.
  // Does not change the window: call update() only once the packet is authenticated.
  Errc check(std::uint32_t seq) const noexcept;
  // Records `seq`. Precondition: check(seq) == ok.
  void update(std::uint32_t seq) noexcept;

  std::uint32_t newest() const noexcept { return top_; }
  bool empty() const noexcept { return empty_; }

 private:
  std::span<std::uint64_t> blocks_;
  std::uint32_t top_ = 0;
  bool empty_ = true;
};

}  // namespace nomq::detail
