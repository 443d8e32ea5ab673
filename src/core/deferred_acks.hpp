// Deferred acknowledgements (EngineConfig::deferred_ack, docs/engine.md §6): QoS 1/2 messages
// delivered to the application whose ACK/PUBREC waits for Engine::accept(token). One entry per
// such message, holding what the answer needs (the id it acknowledges, the channel id, where it
// goes, its priority) and when it lapses. A fixed table (max_deferred_acks entries, none when
// the feature is off) in the engine's block; the token names the slot and a generation, so a
// token answered, refused or lapsed is recognised as such and never answers a later message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/arena.hpp"
#include "nomq/endpoint.hpp"
#include "nomq/engine.hpp"
#include "nomq/time.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail {

struct DeferredAck {
  std::uint32_t session = 0;  // the publisher's session: with `id`, the inbound QoS key
  std::uint32_t id = 0;       // v2 message id / v1 packet id: what the answer acknowledges
  wire::ChannelId channel_id{};
  Endpoint from;              // where the answer goes (the datagram's source)
  Instant expires{};
  std::uint16_t generation = 0;
  std::uint8_t qos = 0;  // 0: free slot; 1: answer ACK; 2: answer PUBREC
  std::uint8_t priority = 0;
  std::uint8_t key = 0;  // the key index the publish was sealed with (its answer's)
};

class DeferredAcks {
 public:
  // Tokens carry 16 bits of slot (+1, so that no token is 0) and 16 of generation.
  static constexpr std::size_t kMaxCapacity = 0xFFFE;

  DeferredAcks(Arena& arena, std::size_t capacity) noexcept : slots_(arena.make<DeferredAck>(capacity)) {}
  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return arena_bytes<DeferredAck>(capacity);
  }

  bool enabled() const noexcept { return !slots_.empty(); }
  bool full() const noexcept { return used_ == slots_.size(); }
  std::size_t size() const noexcept { return used_; }

  // Takes a free slot for `a` (its generation is set here). 0: the table is full.
  AckToken add(DeferredAck a) noexcept {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const std::size_t s = (next_ + i) % slots_.size();
      if (slots_[s].qos != 0) continue;
      a.generation = static_cast<std::uint16_t>(slots_[s].generation + 1);
      slots_[s] = a;
      next_ = (s + 1) % slots_.size();
      if (used_ == 0 || a.expires < earliest_) earliest_ = a.expires;
      ++used_;
      return (AckToken{a.generation} << 16) | static_cast<AckToken>(s + 1);
    }
    return 0;
  }

  // The live entry `token` names, removed from the table; nullopt if it was answered, refused,
  // lapsed or never given.
  std::optional<DeferredAck> take(AckToken token) noexcept {
    const std::size_t s = (token & 0xFFFF) - 1;
    if ((token & 0xFFFF) == 0 || s >= slots_.size()) return std::nullopt;
    DeferredAck& e = slots_[s];
    if (e.qos == 0 || e.generation != static_cast<std::uint16_t>(token >> 16)) return std::nullopt;
    const DeferredAck out = e;
    e.qos = 0;
    --used_;
    return out;
  }

  // Removes the entries lapsed at `now`, calling on_lapsed(entry) for each. Scans the table
  // only once the earliest lapse has come.
  template <class F>
  void expire(Instant now, F&& on_lapsed) {
    if (used_ == 0 || now < earliest_) return;
    Instant next = Instant::max();
    for (DeferredAck& e : slots_) {
      if (e.qos == 0) continue;
      if (e.expires > now) {
        if (e.expires < next) next = e.expires;
        continue;
      }
      const DeferredAck gone = e;
      e.qos = 0;
      --used_;
      on_lapsed(gone);
    }
    earliest_ = next;
  }

  // No later than the earliest lapse (an entry answered meanwhile may have been it: a wake-up
  // then finds nothing to do), if any entry is live.
  std::optional<Instant> next_deadline() const noexcept {
    if (used_ == 0) return std::nullopt;
    return earliest_;
  }

  std::size_t state_bytes() const noexcept { return slots_.state_bytes(); }

 private:
  FixedArray<DeferredAck> slots_;
  std::size_t next_ = 0;
  std::size_t used_ = 0;
  Instant earliest_ = Instant::max();  // a lower bound on the live entries' lapses
};

}  // namespace nomq::detail
