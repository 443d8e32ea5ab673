#include "core/events.hpp"

namespace nomq::detail {

Events::Events(Arena& arena, std::size_t max_reports, std::size_t max_peers,
               Counters& counters) noexcept
    : ring_(arena.make<std::uint32_t>(ring_size(max_reports, max_peers))),
      peers_(arena.make<PeerEvent>(peer_slots(max_peers))),
      max_reports_(max_reports),
      counters_(counters) {}

void Events::push_report(std::uint32_t pending_slot) noexcept {
  if (count_ == ring_.size()) {
    // Make room by dropping the oldest peer event (reports are never dropped): the first kPeer
    // entry of the ring, which is the head of the peer FIFO.
    for (std::size_t k = 0; k < count_; ++k) {
      if (at(k) != kPeer) continue;
      for (std::size_t m = k; m + 1 < count_; ++m) at(m) = at(m + 1);
      --count_;
      peer_head_ = (peer_head_ + 1) % peers_.size();
      --peer_count_;
      counters_.drop(Errc::inbox_full);
      break;
    }
  }
  at(count_) = pending_slot;
  ++count_;
}

void Events::push_peer(PeerEvent::Kind kind, const Endpoint& from, std::uint32_t session,
                       std::int64_t clock_offset_s, std::uint64_t failures) noexcept {
  // Peer events never displace delivery reports: at most size - max_reports of them wait.
  if (peer_count_ + max_reports_ >= ring_.size() || peer_count_ == peers_.size()) {
    counters_.drop(Errc::inbox_full);
    return;
  }
  peer_at(peer_count_) = PeerEvent{kind, from, session, clock_offset_s, failures};
  ++peer_count_;
  at(count_) = kPeer;
  ++count_;
}

bool Events::pop(ControlEvent& out) noexcept {
  if (count_ == 0) return false;
  const std::uint32_t entry = ring_[head_];
  head_ = (head_ + 1) % ring_.size();
  --count_;
  if (entry == kPeer) {
    out.is_report = false;
    out.peer = peers_[peer_head_];
    peer_head_ = (peer_head_ + 1) % peers_.size();
    --peer_count_;
  } else {
    out.is_report = true;
    out.pending = entry;
  }
  return true;
}

}  // namespace nomq::detail
