// The control events waiting for poll_event(): delivery reports and peer changes, in order
// (docs/engine.md §2, "control events"). Room for one report per pending slot plus peer
// events: a report always fits (a peer event is dropped to make room), a peer event that would
// take a report's room is dropped (counted inbox_full).
//
// Stored compactly: the order is a ring of 4-byte entries (a report's pending slot, or kPeer),
// and the peer events themselves a FIFO of their own, sized for peer events only. Both keep
// arrival order, so the n-th kPeer entry of the ring is the n-th peer event of the FIFO. (A ring
// of whole events, one PeerEvent wide for every report slot too, took 56 bytes per slot on a
// Cortex-M4: 1 792 bytes of the small profile instead of 1 280, 4 144 of the seed profile
// instead of 1 448.)
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/counters.hpp"
#include "core/fixed_map.hpp"
#include "nomq/engine.hpp"

namespace nomq::detail {

// What pop() hands out.
struct ControlEvent {
  bool is_report = false;
  std::uint32_t pending = kNoSlot;  // the publisher's pending slot whose report this is
  PeerEvent peer;
};

class Events {
 public:
  Events(Arena& arena, std::size_t max_reports, std::size_t max_peers, Counters& counters) noexcept;
  static constexpr std::size_t peer_slots(std::size_t max_peers) noexcept {
    return 2 * max_peers + 8;
  }
  static constexpr std::size_t ring_size(std::size_t max_reports, std::size_t max_peers) noexcept {
    return max_reports + peer_slots(max_peers);
  }
  static constexpr std::size_t bytes_for(std::size_t max_reports, std::size_t max_peers) noexcept {
    return arena_bytes<std::uint32_t>(ring_size(max_reports, max_peers)) +
           arena_bytes<PeerEvent>(peer_slots(max_peers));
  }

  void push_report(std::uint32_t pending_slot) noexcept;
  void push_peer(PeerEvent::Kind kind, const Endpoint& from, std::uint32_t session,
                 std::int64_t clock_offset_s = 0, std::uint64_t failures = 0) noexcept;
  // The oldest waiting event. false: none.
  bool pop(ControlEvent& out) noexcept;
  std::size_t state_bytes() const noexcept { return ring_.state_bytes() + peers_.state_bytes(); }

 private:
  static constexpr std::uint32_t kPeer = kNoSlot;  // ring entry of a peer event (never a slot)
  std::uint32_t& at(std::size_t k) noexcept { return ring_[(head_ + k) % ring_.size()]; }
  PeerEvent& peer_at(std::size_t k) noexcept { return peers_[(peer_head_ + k) % peers_.size()]; }

  FixedArray<std::uint32_t> ring_;
  FixedArray<PeerEvent> peers_;
  std::size_t max_reports_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t peer_head_ = 0;
  std::size_t peer_count_ = 0;
  Counters& counters_;
};

}  // namespace nomq::detail
