// The bounded table of remote sender sessions (v2): one replay window per session id, plus what
// the eviction policy needs. Full-table policy (docs/engine.md, "Sender table"): a new session
// may evict the least recently heard session that (a) holds no QoS 2 receiver state and (b) has
// sent nothing whose timestamp is still inside the receiver's timestamp window, so every packet
// the evicted window could have caught is already rejected as stale_timestamp. If no session
// qualifies, the new session's datagram is dropped as sender_table_full.
//
// Verified share (issue 13 M3, the spoofed-source residual): sessions first heard from an
// endpoint that has not answered a reachability challenge (Reachability, docs/engine.md §17)
// may hold at most half of the table. A key holder spoofing many source addresses can fill that
// half with sessions it keeps fresh, but cannot answer the challenges sent to the addresses it
// spoofs, so the other half stays for senders that can: an honest newcomer refused for the share
// (sender_unverified) is challenged, answers within one round trip, and is admitted when it
// retransmits. Nothing is evicted early for this (evicting a live window would reopen replays).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/fixed_map.hpp"
#include "core/replay_window.hpp"
#include "nomq/endpoint.hpp"
#include "nomq/error.hpp"
#include "nomq/time.hpp"

namespace nomq::detail {

struct SenderInfo {
  ReplayWindow window;
  Instant last_heard{};
  std::uint32_t max_timestamp = 0;   // newest wire timestamp accepted from this session
  std::uint32_t qos2_states = 0;     // inbound QoS 2 states awaiting PUBREL
  Endpoint endpoint;                 // where the session was first heard (per-endpoint quota)
  bool verified_source = false;      // that endpoint answered a challenge (the verified share)
  // Freshness after a restart (issue 13 M4): the session is known to be live since this
  // receiver started, and its PUBLISHes with a sequence number >= live_from are delivered.
  std::uint32_t live_from = 0;
  bool live = false;
};

class SenderTable {
 public:
  using Map = FixedMap<std::uint32_t, SenderInfo, U32Hash, U32Eq, std::uint16_t>;
  SenderTable(Arena& arena, std::size_t capacity, std::uint32_t window_width,
              std::uint32_t timestamp_window_s) noexcept;
  // The 64-bit blocks of one sender's replay window.
  static constexpr std::size_t blocks_for(std::uint32_t window_width) noexcept {
    return ReplayWindow::blocks_for(window_width < 64 ? 64 : window_width);
  }
  static constexpr std::size_t bytes_for(std::size_t capacity, std::uint32_t window_width) noexcept {
    return Map::bytes_for(capacity) + arena_bytes<std::uint64_t>(capacity * blocks_for(window_width));
  }

  // The entry of `session`, or nullptr.
  SenderInfo* find(std::uint32_t session) noexcept;
  const SenderInfo* find(std::uint32_t session) const noexcept {
    const std::uint32_t s = map_.find(session);
    return s == kNoSlot ? nullptr : &map_.value(s);
  }

  // The entry of `session`, inserting (and evicting per the policy) if needed. nullptr: the
  // table is full and nothing may be evicted (`*why` = sender_table_full), or `from` already
  // holds `per_endpoint` sessions none of which may be evicted (`*why` = sender_quota; 0: no
  // quota), or `from` is not verified and unverified sessions hold their share with none
  // evictable (`*why` = sender_unverified, or sender_table_full if no slot is free at all).
  // `now_wire`: the receiver's clock in wire seconds.
  SenderInfo* find_or_insert(std::uint32_t session, std::uint32_t now_wire,
                             const Endpoint& from = {}, std::size_t per_endpoint = 0,
                             Errc* why = nullptr, bool from_verified = true) noexcept;
  // `from` answered a challenge: its sessions count in the verified share from now on.
  void endpoint_verified(const Endpoint& from) noexcept;
  // The most sessions from unverified endpoints the table holds (half, at least 1).
  std::size_t unverified_share() const noexcept { return map_.capacity() / 2 > 0 ? map_.capacity() / 2 : 1; }

  // Replay verdict and update in one place: check, and on ok record `seq` and the timestamp.
  Errc accept(SenderInfo& s, std::uint32_t seq, std::uint32_t timestamp, Instant now) noexcept;

  void erase(std::uint32_t session) noexcept { map_.erase(session); }
  std::size_t size() const noexcept { return map_.size(); }
  std::size_t capacity() const noexcept { return map_.capacity(); }
  std::uint64_t evictions() const noexcept { return evictions_; }
  std::size_t state_bytes() const noexcept;

 private:
  // Eviction may take only a session that holds no QoS 2 state and whose newest timestamp is
  // already outside the window (so every datagram its window could catch is stale).
  bool evictable(const SenderInfo& e, std::uint32_t now_wire) const noexcept {
    return e.qos2_states == 0 && static_cast<std::int64_t>(now_wire) >
                                     static_cast<std::int64_t>(e.max_timestamp) + timestamp_window_s_;
  }
  Map map_;
  FixedArray<std::uint64_t> bits_;
  std::size_t blocks_per_window_;
  std::uint32_t timestamp_window_s_;
  std::uint64_t evictions_ = 0;
};

}  // namespace nomq::detail
