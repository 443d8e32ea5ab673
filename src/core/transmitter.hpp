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
  };
  Transmitter(const Context& ctx, const Links& links);

  std::optional<Transmit> poll(Time now, MutableBytes buffer) noexcept;

 private:
  // false: the item is not sent (its references are given back). `ttl`: the wire ttl.
  bool still_wanted(const OutItem& it, Time now, std::uint16_t& ttl) noexcept;
  wire::Packet packet_for(const OutItem& it, std::uint16_t ttl, Time now) noexcept;
  void fill_publish(wire::Packet& p, const OutItem& it) noexcept;
  void fill_announcement(wire::Packet& p, const OutItem& it) noexcept;
  void fill_reply(wire::Packet& p, const OutItem& it) noexcept;

  Context c_;
  Links l_;
  bool v2_;
};

}  // namespace nomq::detail
