// Datagrams that failed authentication (bad_mac), counted by source address (docs/engine.md
// §13): the most common deployment mistake, two nodes with different keys, otherwise looks like
// silence. A fixed table (kMaxAuthFailureSources entries inside the engine, the least recently
// heard source replaced when full); a PeerEvent auth_failed for a source's first
// failure and then at most once per auth_failure_report_interval while failures go on; and (v2)
// one authenticated HEARTBEAT unicast back to the source with each event, so that a NoMQ node
// holding other keys hears a datagram it cannot authenticate too and can say so (a publisher
// with wrong keys otherwise hears nothing from subscribers, which never answer it).
#pragma once

#include <array>
#include <cstddef>
#include <span>

#include "core/counters.hpp"
#include "nomq/engine.hpp"

namespace nomq::detail {

class Events;
class Outbox;

class AuthFailures {
 public:
  AuthFailures(const Context& ctx, Events& events, Outbox& outbox);

  // A datagram from `from` failed authentication. Allocates nothing.
  void note(const Endpoint& from, Instant now, bool closed) noexcept;
  std::span<const AuthFailureSource> sources() const noexcept { return {table_.data(), used_}; }

 private:
  const Context& c_;  // Engine::Impl::ctx (outlives every component)
  Events& events_;
  Outbox& outbox_;
  std::array<AuthFailureSource, kMaxAuthFailureSources> table_{};
  std::array<Instant, kMaxAuthFailureSources> reported_{};  // per entry: its last event
  // per entry: its last event's HEARTBEAT probe did not fit the outbox yet
  std::array<bool, kMaxAuthFailureSources> probe_owed_{};
  std::size_t used_ = 0;
};

}  // namespace nomq::detail
