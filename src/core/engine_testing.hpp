// Test hooks of the engine (tests only; no application turns them on). Per engine instance:
// nothing here is global, so engines on different threads do not share them.
#pragma once

#include "core/publisher.hpp"
#include "nomq/engine.hpp"

namespace nomq::detail {

struct EngineTesting {
  // When on, e.next_deadline() also computes the earliest retransmission deadline of every open
  // publish by a full scan of its recipients and counts how often the publisher's cached value
  // disagrees (debug builds assert the same on every call, without counting).
  static void check_deadline_cache(Engine& e, bool on) noexcept;
  static DeadlineCacheCounts deadline_cache_counts(const Engine& e) noexcept;
  // Bytes of the state block construction took (the Impl and every table), and the block's size.
  static std::size_t state_bytes_used(const Engine& e) noexcept;
  // Moves the v2 sequence counter of the current session to `seq` (the renewal before the
  // 32-bit wrap, docs/engine.md §12, without sending four billion datagrams first).
  static void set_next_sequence(Engine& e, std::uint32_t seq) noexcept;
};

}  // namespace nomq::detail
