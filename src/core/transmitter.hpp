// poll_transmit(): takes the outbox's next descriptor, discards one whose purpose has gone
// (docs/engine.md §1), encodes the rest with this moment's sequence number, IV, timestamp and
// ttl, and tells the publisher what happened to its tracked items.
#pragma once

#include <optional>

#include "core/counters.hpp"
#include "core/message_pool.hpp"
#include "core/outbox.hpp"
#include "nomq/crypto.hpp"
#include "nomq/engine.hpp"

namespace nomq::detail {

class Publisher;
class Reachability;
class Session;
class Subscriptions;

class Transmitter {
 public:
  struct Links {
    Session& session;
    Outbox& outbox;
    const Subscriptions& subs;
    const MessagePool& pool;
    Publisher& publisher;
    Reachability& reach;
  };
  Transmitter(const Context& ctx, const Links& links);

  // `wall` stamps the datagram (the wire timestamp is that of the moment it leaves).
  std::optional<Transmit> poll(Instant now, WallTime wall, MutableBytes buffer) noexcept;

 private:
  // false: the item is not sent (its references are given back). `ttl`: the wire ttl.
  // v2: a unicast item to an endpoint not yet verified must fit its amplification budget.
  bool guarded(const OutItem& it) const noexcept;
  // The key index that seals `it` (v2; core/key_ring.hpp).
  std::uint8_t key_of(const OutItem& it) const noexcept;
  bool still_wanted(const OutItem& it, Instant now, std::uint16_t& ttl) noexcept;
  wire::Packet packet_for(const OutItem& it, std::uint16_t ttl, WallTime wall,
                          bool previous_epoch) noexcept;
  void fill_publish(wire::Packet& p, const OutItem& it) noexcept;
  void fill_announcement(wire::Packet& p, const OutItem& it) noexcept;
  void fill_reply(wire::Packet& p, const OutItem& it) noexcept;

  const Context& c_;  // Engine::Impl::ctx (outlives every component)
  Links l_;
  bool v2_;
};

}  // namespace nomq::detail
