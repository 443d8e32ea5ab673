// Anti-amplification (docs/engine.md §17, issue 13 M1). The source address of a datagram is not
// covered by its MAC: anyone can make this node answer "to" another address. So, per endpoint,
// this table counts the bytes received (authenticated datagrams) and the bytes sent unicast; an
// endpoint that has not proved it receives our traffic gets at most kFactor times what it sent
// (RFC 9000 §8.1's limit before address validation). It proves it by echoing a random token we
// sent it in a HEARTBEAT (kFlagEchoRequest; the answer carries kFlagEchoResponse: RFC 9175's
// Echo idea). Work refused for lack of budget (a retained replay, a solicitation answer) is
// remembered per endpoint and done once it is verified; replies and retransmissions are simply
// sent again by their own timers.
//
// A fixed table of max_endpoints entries (FixedMap, carved from the engine's block). When it is
// full a new endpoint takes the least recently heard unverified entry, so a flood from spoofed
// addresses churns only unverified entries and cannot push out verified peers; only with every
// entry verified is the least recently heard verified one replaced (it re-verifies in one round
// trip). A replaced entry's budget is gone: a new entry starts from 0 bytes, never from credit.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/counters.hpp"
#include "core/fixed_map.hpp"
#include "nomq/endpoint.hpp"
#include "nomq/engine.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail {

class Outbox;

struct EndpointHash {
  std::size_t operator()(const Endpoint& e) const noexcept { return static_cast<std::size_t>(hash(e)); }
};
struct EndpointEq {
  bool operator()(const Endpoint& a, const Endpoint& b) const noexcept { return a == b; }
};

class Reachability {
 public:
  static constexpr std::uint64_t kFactor = 3;
  // Room kept in every unverified budget for one challenge (a HEARTBEAT).
  static constexpr std::uint64_t kChallengeBytes = wire::kV2MinDatagram;

  struct Entry {
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    Instant last_heard{};
    Instant verified_until{};
    Instant challenged_at{};
    wire::ChannelId token{};
    bool verified = false;
    bool challenged = false;    // a token is out
    bool replay_owed = false;   // a retained replay was refused for lack of budget
    bool answer_owed = false;   // a solicitation answer was refused for lack of budget
  };
  using Map = FixedMap<Endpoint, Entry, EndpointHash, EndpointEq, std::uint16_t>;

  // What a verification makes due.
  struct Owed {
    bool verified = false;  // the token was ours: the endpoint is verified now
    bool replay = false;
    bool answer = false;
  };

  Reachability(const Context& ctx, Outbox& outbox);
  static constexpr std::size_t bytes_for(const EngineLimits& l) noexcept {
    return Map::bytes_for(at_least_one(l.max_endpoints));
  }
  std::size_t state_bytes() const noexcept { return map_.state_bytes(); }

  // An authenticated datagram of `bytes` bytes from `from` (v2).
  void received(const Endpoint& from, std::size_t bytes, Instant now) noexcept;
  // The application addressed `to` itself (PublishOptions::destination): trusted as verified.
  void vouch(const Endpoint& to, Instant now) noexcept;
  bool verified(const Endpoint& to, Instant now) const noexcept;

  // Before queuing `bytes` of optional work (a retained replay, a solicitation answer) to
  // `to`: true if it is verified or the bytes fit its budget (keeping room for a challenge).
  // false: the work is marked owed (`replay` or answer), a challenge is queued if none is out,
  // and the refusal is counted (amplification_limited).
  bool admit_work(const Endpoint& to, std::uint64_t bytes, bool replay, Instant now) noexcept;
  // At transmit: `bytes` to `to`; true: send (counted against the budget). false: not sent
  // (counted), a challenge queued if none is out. `challenge`: the item is our challenge
  // (it may use the reserved room).
  bool permit(const Endpoint& to, std::size_t bytes, bool challenge, Instant now) noexcept;
  // A HEARTBEAT with kFlagEchoResponse from `from` carrying `token`: verifies the endpoint if
  // the token is the one we sent there. Returns what is now due.
  Owed on_echo(const Endpoint& from, const wire::ChannelId& token, Instant now) noexcept;
  // Sends `to` a challenge even if it is verified (the receiver's freshness check after a
  // restart, issue 13 M4, needs a fresh answer from the session there), unless one went out
  // there less than retransmit_initial ago.
  void request_echo(const Endpoint& to, Instant now) noexcept;

 private:
  Entry* find(const Endpoint& e) noexcept;
  Entry* find_or_insert(const Endpoint& e, Instant now) noexcept;
  bool is_verified(const Entry& e, Instant now) const noexcept {
    return e.verified && now < e.verified_until;
  }
  void challenge(const Endpoint& to, Entry& e, Instant now) noexcept;

  const Context& c_;  // Engine::Impl::ctx (outlives every component)
  Outbox& outbox_;
  Map map_;
};

}  // namespace nomq::detail
