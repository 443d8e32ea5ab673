// Receiver-side QoS state, keyed by (sender session, message id):
//   delivered        QoS 1 (or a retained message): seen and delivered; a repeat is a duplicate
//                    (re-acknowledged, not delivered again).
//   awaiting_pubrel  QoS 2: delivered, PUBREC sent; a repeat gets PUBREC again.
//   released         QoS 2 after PUBREL: kept as a dedup record so that a retransmission that
//                    was overtaken by the PUBREL is still not delivered twice.
// Bounded (max_inbound_qos). Entries expire (awaiting_pubrel after inbound_state_lifetime;
// dedup records after min(message TTL, inbound_state_lifetime)). When full, the oldest entry
// that is not awaiting_pubrel is evicted; if every entry awaits PUBREL, the new message is
// refused (the caller drops it unacknowledged, so the publisher retransmits later).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/fixed_map.hpp"
#include "nomq/time.hpp"

namespace nomq::detail {

enum class InboundState : std::uint8_t { delivered, awaiting_pubrel, released };

struct InboundEntry {
  InboundState state = InboundState::delivered;
  Time created{0};
  Time expires{0};
};

class InboundQosTable {
 public:
  explicit InboundQosTable(std::size_t capacity) : map_(capacity) {}

  static std::uint64_t key(std::uint32_t session, std::uint32_t id) noexcept {
    return (std::uint64_t{session} << 32) | id;
  }

  // The live entry for (session, id), or nullptr (an expired entry is removed and not found).
  InboundEntry* find(std::uint32_t session, std::uint32_t id, Time now) noexcept;

  // Inserts a new entry. Returns nullptr when the table is full of awaiting_pubrel states.
  // `evicted_awaiting_session` is not touched: awaiting states are never evicted.
  InboundEntry* insert(std::uint32_t session, std::uint32_t id, InboundState state, Time now,
                       Time expires) noexcept;

  void erase(std::uint32_t session, std::uint32_t id) noexcept { map_.erase(key(session, id)); }

  // Removes expired entries; calls on_expired_awaiting(session) for each awaiting_pubrel state
  // that expired (the sender table keeps a count of those per session).
  template <class F>
  void expire(Time now, F&& on_expired_awaiting) {
    map_.for_each([&](std::uint32_t s) {
      const InboundEntry& e = map_.value(s);
      if (e.expires > now) return;
      if (e.state == InboundState::awaiting_pubrel) {
        on_expired_awaiting(static_cast<std::uint32_t>(map_.key(s) >> 32));
      }
      map_.erase_slot(s);
    });
  }

  std::size_t size() const noexcept { return map_.size(); }
  std::size_t capacity() const noexcept { return map_.capacity(); }
  std::size_t state_bytes() const noexcept { return map_.state_bytes(); }

 private:
  FixedMap<std::uint64_t, InboundEntry, U64Hash, U64Eq> map_;
};

}  // namespace nomq::detail
