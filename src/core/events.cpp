#include "core/events.hpp"

namespace nomq::detail {

Events::Events(Arena& arena, std::size_t max_reports, std::size_t max_peers,
               Counters& counters) noexcept
    : ring_(arena.make<ControlEvent>(ring_size(max_reports, max_peers))), max_reports_(max_reports), counters_(counters) {}

void Events::push_report(std::uint32_t pending_slot) noexcept {
  if (count_ == ring_.size()) {
    // Make room by dropping the oldest peer event (reports are never dropped).
    for (std::size_t k = 0; k < count_; ++k) {
      if (at(k).is_report) continue;
      for (std::size_t m = k; m + 1 < count_; ++m) at(m) = at(m + 1);
      --count_;
      counters_.drop(Errc::inbox_full);
      break;
    }
  }
  ControlEvent ev;
  ev.is_report = true;
  ev.pending = pending_slot;
  at(count_) = ev;
  ++count_;
}

void Events::push_peer(PeerEvent::Kind kind, const Endpoint& from, std::uint32_t session,
                       std::int64_t clock_offset_s, std::uint64_t failures) noexcept {
  // Peer events never displace delivery reports: at most size - max_reports of them wait.
  std::size_t peers_waiting = 0;
  for (std::size_t k = 0; k < count_; ++k) {
    if (!at(k).is_report) ++peers_waiting;
  }
  if (peers_waiting + max_reports_ >= ring_.size()) {
    counters_.drop(Errc::inbox_full);
    return;
  }
  ControlEvent ev;
  ev.peer = PeerEvent{kind, from, session, clock_offset_s, failures};
  at(count_) = ev;
  ++count_;
}

bool Events::pop(ControlEvent& out) noexcept {
  if (count_ == 0) return false;
  out = ring_[head_];
  head_ = (head_ + 1) % ring_.size();
  --count_;
  return true;
}

}  // namespace nomq::detail
