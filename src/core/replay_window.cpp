#include "core/replay_window.hpp"

namespace nomq::detail {

void ReplayWindow::reset(std::span<std::uint64_t> blocks) noexcept {
  blocks_ = blocks;
  for (auto& b : blocks_) b = 0;
  top_ = 0;
  empty_ = true;
}

std::uint32_t ReplayWindow::width() const noexcept {
  return blocks_.size() < 2 ? 0 : static_cast<std::uint32_t>((blocks_.size() - 1) * 64);
}

Errc ReplayWindow::check(std::uint32_t seq) const noexcept {
  if (blocks_.empty()) return Errc::replay_window_old;
  if (empty_ || seq > top_) return Errc::ok;
  if (top_ - seq >= width()) return Errc::replay_window_old;
  const std::size_t block = (seq / 64) % blocks_.size();
  const std::uint64_t bit = std::uint64_t{1} << (seq % 64);
  return (blocks_[block] & bit) != 0 ? Errc::replayed : Errc::ok;
}

void ReplayWindow::update(std::uint32_t seq) noexcept {
  if (blocks_.empty()) return;
  const std::size_t n = blocks_.size();
  if (empty_) {
    for (auto& b : blocks_) b = 0;
    top_ = seq;
    empty_ = false;
  } else if (seq > top_) {
    // Clear the blocks the window slides over; at most all of them. Block numbers are below
    // 2^26, so size_t arithmetic cannot overflow even where size_t has 32 bits (Cortex-M).
    const std::size_t from = top_ / 64;
    const std::size_t to = seq / 64;
    const std::size_t diff = to - from;
    const std::size_t clear = diff > n ? n : diff;
    for (std::size_t i = 1; i <= clear; ++i) blocks_[(from + i) % n] = 0;
    top_ = seq;
  }
  blocks_[(seq / 64) % n] |= std::uint64_t{1} << (seq % 64);
}

}  // namespace nomq::detail
