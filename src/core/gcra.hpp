// GCRA (the generic cell rate algorithm) over a FixedMap of theoretical arrival times: a burst
// of `burst` events per key, then one per `interval`. Used by the solicitation answers (per
// solicitor session) and the retained replays (per session and channel), docs/engine.md §17.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/fixed_map.hpp"
#include "nomq/time.hpp"

namespace nomq::detail {

// True: the event for `key` may happen now (and is counted). A full table reuses only an entry
// whose time has passed (it carries no debt), so minting keys cannot buy events without bound;
// when none has, the event is refused.
template <class Map, class Key>
bool gcra_admit(Map& limiter, Key key, Instant now, Duration interval, std::int64_t burst) noexcept {
  std::uint32_t s = limiter.find(key);
  if (s == kNoSlot) {
    if (limiter.full()) {
      std::uint32_t spent = kNoSlot;
      limiter.for_each([&](std::uint32_t k) {
        if (spent == kNoSlot && limiter.value(k) <= now) spent = k;
      });
      if (spent == kNoSlot) return false;
      limiter.erase_slot(spent);
    }
    s = limiter.insert(key);
    if (s == kNoSlot) return false;
    limiter.value(s) = now;
  }
  const Instant tat = std::max(limiter.value(s), now);
  if (tat - now > interval * (burst - 1)) return false;
  limiter.value(s) = tat + interval;
  return true;
}

}  // namespace nomq::detail
