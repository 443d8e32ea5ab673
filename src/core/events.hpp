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
// instead of 1 448.) Ring entries are 16 bits (pending slots are below kMaxSlot16), and a peer
// event is kept as 40 bytes (one 64-bit field: the clock offset of a clock_skew, the failures
// of an auth_failed, zero otherwise), not PeerEvent's 48.
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
  struct StoredPeer {
    Endpoint endpoint;
    std::uint32_t session = 0;
    std::uint32_t value_lo = 0;  // clock_offset_s (clock_skew) or failures (auth_failed)
    std::uint32_t value_hi = 0;
    PeerEvent::Kind kind = PeerEvent::Kind::joined;
  };

 public:
  // Room for `max_reports` reports and `peer_events` peer events (0: peer_slots(max_peers)).
  Events(Arena& arena, std::size_t max_reports, std::size_t max_peers, Counters& counters,
         std::size_t peer_events = 0) noexcept;
  static constexpr std::size_t peer_slots(std::size_t max_peers) noexcept {
    return 2 * max_peers + 8;
  }
  static constexpr std::size_t slots_of(std::size_t max_peers, std::size_t peer_events) noexcept {
    return peer_events != 0 ? peer_events : peer_slots(max_peers);
  }
  static constexpr std::size_t ring_size(std::size_t max_reports, std::size_t max_peers,
                                         std::size_t peer_events = 0) noexcept {
    return max_reports + slots_of(max_peers, peer_events);
  }
  static constexpr std::size_t bytes_for(std::size_t max_reports, std::size_t max_peers,
                                         std::size_t peer_events = 0) noexcept {
    return arena_bytes<std::uint16_t>(max_reports + slots_of(max_peers, peer_events)) +
           arena_bytes<StoredPeer>(slots_of(max_peers, peer_events));
  }

  void push_report(std::uint32_t pending_slot) noexcept;
  void push_peer(PeerEvent::Kind kind, const Endpoint& from, std::uint32_t session,
                 std::int64_t clock_offset_s = 0, std::uint64_t failures = 0) noexcept;
  // The oldest waiting event. false: none.
  bool pop(ControlEvent& out) noexcept;
  std::size_t state_bytes() const noexcept { return ring_.state_bytes() + peers_.state_bytes(); }

 private:
  static constexpr std::uint16_t kPeer = 0xFFFF;  // ring entry of a peer event (never a slot)
  std::uint16_t& at(std::size_t k) noexcept { return ring_[(head_ + k) % ring_.size()]; }
  StoredPeer& peer_at(std::size_t k) noexcept { return peers_[(peer_head_ + k) % peers_.size()]; }

  FixedArray<std::uint16_t> ring_;
  FixedArray<StoredPeer> peers_;
  std::size_t max_reports_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t peer_head_ = 0;
  std::size_t peer_count_ = 0;
  Counters& counters_;
};

}  // namespace nomq::detail
