// The control events waiting for poll_event(): delivery reports and peer changes, in order
// (docs/engine.md §2, "control events"). A ring sized for one report per pending slot plus peer
// events: a report always fits (a peer event is dropped to make room), a peer event that would
// take a report's room is dropped (counted inbox_full).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/counters.hpp"
#include "core/fixed_map.hpp"
#include "nomq/engine.hpp"

namespace nomq::detail {

struct ControlEvent {
  bool is_report = false;
  std::uint32_t pending = kNoSlot;  // the publisher's pending slot whose report this is
  PeerEvent peer;
};

class Events {
 public:
  Events(Arena& arena, std::size_t max_reports, std::size_t max_peers, Counters& counters) noexcept;
  static constexpr std::size_t ring_size(std::size_t max_reports, std::size_t max_peers) noexcept {
    return max_reports + 2 * max_peers + 8;
  }
  static constexpr std::size_t bytes_for(std::size_t max_reports, std::size_t max_peers) noexcept {
    return arena_bytes<ControlEvent>(ring_size(max_reports, max_peers));
  }

  void push_report(std::uint32_t pending_slot) noexcept;
  void push_peer(PeerEvent::Kind kind, const Endpoint& from, std::uint32_t session,
                 std::int64_t clock_offset_s = 0, std::uint64_t failures = 0) noexcept;
  // The oldest waiting event. false: none.
  bool pop(ControlEvent& out) noexcept;
  std::size_t state_bytes() const noexcept { return ring_.state_bytes(); }

 private:
  ControlEvent& at(std::size_t k) noexcept { return ring_[(head_ + k) % ring_.size()]; }

  FixedArray<ControlEvent> ring_;
  std::size_t max_reports_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  Counters& counters_;
};

}  // namespace nomq::detail
