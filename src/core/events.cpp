#include "core/events.hpp"

namespace nomq::detail {

Events::Events(Arena& arena, std::size_t max_reports, std::size_t max_peers,
               Counters& counters, std::size_t peer_events) noexcept
    : ring_(arena.make<std::uint16_t>(max_reports + slots_of(max_peers, peer_events))),
      peers_(arena.make<StoredPeer>(slots_of(max_peers, peer_events))),
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
  at(count_) = static_cast<std::uint16_t>(pending_slot);
  ++count_;
}

void Events::push_peer(PeerEvent::Kind kind, const Endpoint& from, std::uint32_t session,
                       std::int64_t clock_offset_s, std::uint64_t failures) noexcept {
  // Peer events never displace delivery reports: at most size - max_reports of them wait.
  if (peer_count_ + max_reports_ >= ring_.size() || peer_count_ == peers_.size()) {
    counters_.drop(Errc::inbox_full);
    return;
  }
  const std::uint64_t value = kind == PeerEvent::Kind::clock_skew
                                  ? static_cast<std::uint64_t>(clock_offset_s)
                                  : failures;
  StoredPeer& e = peer_at(peer_count_);
  e.endpoint = from;
  e.session = session;
  e.value_lo = static_cast<std::uint32_t>(value);
  e.value_hi = static_cast<std::uint32_t>(value >> 32);
  e.kind = kind;
  ++peer_count_;
  at(count_) = kPeer;
  ++count_;
}

bool Events::pop(ControlEvent& out) noexcept {
  if (count_ == 0) return false;
  const std::uint16_t entry = ring_[head_];
  head_ = (head_ + 1) % ring_.size();
  --count_;
  if (entry == kPeer) {
    out.is_report = false;
    const StoredPeer& e = peers_[peer_head_];
    const std::uint64_t value = (std::uint64_t{e.value_hi} << 32) | e.value_lo;
    out.peer = PeerEvent{};
    out.peer.kind = e.kind;
    out.peer.endpoint = e.endpoint;
    out.peer.session_id = e.session;
    if (e.kind == PeerEvent::Kind::clock_skew) {
      out.peer.clock_offset_s = static_cast<std::int64_t>(value);
    } else {
      out.peer.failures = value;
    }
    peer_head_ = (peer_head_ + 1) % peers_.size();
    --peer_count_;
  } else {
    out.is_report = true;
    out.pending = entry;
  }
  return true;
}

}  // namespace nomq::detail
