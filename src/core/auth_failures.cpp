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
    first = true;
  }
  AuthFailureSource& s = table_[k];
  ++s.datagrams;
  s.last = now;
  if (!first && now - reported_[k] < c_.cfg.timers.auth_failure_report_interval) return;
  reported_[k] = now;
  events_.push_peer(PeerEvent::Kind::auth_failed, from, 0, 0, s.datagrams);
  if (closed || c_.cfg.wire != WireVersion::v2) return;
  OutItem hb;
  hb.type = wire::PacketType::heartbeat;
  hb.to_group = false;
  hb.to = from;
  outbox_.push_or_count(0, hb);
}

}  // namespace nomq::detail
