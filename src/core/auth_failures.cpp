#include "core/auth_failures.hpp"

#include "core/events.hpp"
#include "core/outbox.hpp"

namespace nomq::detail {

AuthFailures::AuthFailures(const Context& ctx, Events& events, Outbox& outbox)
    : c_(ctx), events_(events), outbox_(outbox) {}

void AuthFailures::note(const Endpoint& from, Instant now, bool closed) noexcept {
  // Counted per host: a node's source port changes with every restart (ephemeral ports).
  Endpoint host = from;
  host.port = 0;
  std::size_t k = 0;
  while (k < used_ && !(table_[k].address == host)) ++k;
  bool first = false;
  if (k == used_) {
    if (used_ < table_.size()) {
      ++used_;
    } else {  // full: the source heard least recently makes room
      k = 0;
      for (std::size_t i = 1; i < used_; ++i) {
        if (table_[i].last < table_[k].last) k = i;
      }
    }
    table_[k] = AuthFailureSource{host, 0, now, now};
    probe_owed_[k] = false;
    first = true;
  }
  AuthFailureSource& s = table_[k];
  ++s.datagrams;
  s.last = now;
  if (first || now - reported_[k] >= c_.cfg.timers.auth_failure_report_interval) {
    reported_[k] = now;
    events_.push_peer(PeerEvent::Kind::auth_failed, from, 0, 0, s.datagrams);
    probe_owed_[k] = !closed && c_.cfg.wire == WireVersion::v2;
  }
  if (!probe_owed_[k] || closed) return;
  // The probe is ours, not the datagram's: the datagram is already counted once (bad_mac), so
  // an outbox with no room is not a second drop (docs/engine.md §13). The probe stays owed and
  // goes with the host's next failing datagram that finds room, still at most one per event.
  OutItem hb;
  hb.type = wire::PacketType::heartbeat;
  hb.to_group = false;
  hb.to = from;
  if (outbox_.push(0, hb)) probe_owed_[k] = false;
}

}  // namespace nomq::detail
