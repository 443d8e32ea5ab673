// Discovery (v2, docs/engine.md §3): the peers heard announcing and their subscriptions
// (DiscoveryTable), what an announcement sets off (peer events, recipients joining publishes in
// flight, solicitation answers, retained replays), and peer/tentative-subscription expiry.
#pragma once

#include <optional>

#include "core/counters.hpp"
#include "core/discovery_table.hpp"
#include "nomq/engine.hpp"

namespace nomq::detail {

class Events;
class Publisher;
class RetainedReplay;
class Solicitation;

class Discovery {
 public:
  struct Links {
    Events& events;
    Publisher& publisher;
    Solicitation& solicitation;
    RetainedReplay& retained;
  };
  Discovery(const Context& ctx, const Links& links);

  // Any authenticated packet from `session` is a sign of life.
  void heard(std::uint32_t session, Instant now) noexcept { table_.heard(session, now); }
  // SUBSCRIBE, UNSUBSCRIBE or HEARTBEAT.
  void on_announce(const wire::Packet& p, const Endpoint& from, Instant now) noexcept;
  // Peers silent past session_timeout leave; unconfirmed inherited subscriptions end.
  void handle_timeout(Instant now) noexcept;
  std::optional<Instant> next_deadline() const noexcept;

  template <class F>
  void for_each_subscriber(const wire::ChannelId& channel, F&& f) const {
    table_.for_each_subscriber(channel, static_cast<F&&>(f));
  }
  // Every live subscriber of the channel `channel` named `name`, exact or by filter, once each.
  template <class F>
  void for_each_matching(const wire::ChannelId& channel, std::string_view name, F&& f) const {
    table_.for_each_matching(channel, name, static_cast<F&&>(f));
  }
  bool subscribes(std::uint32_t session, const wire::ChannelId& channel,
                  std::string_view name) const noexcept {
    return table_.subscribes(session, channel, name);
  }
  std::uint32_t slot_of(std::uint32_t session) const noexcept { return table_.slot_of(session); }
  std::size_t peer_count() const noexcept { return table_.peer_count(); }
  // `session` answered a group publish on `channel`: it subscribes there, which confirms a
  // subscription inherited from its previous session.
  void confirm_if_tentative(std::uint32_t session, const wire::ChannelId& channel) noexcept;
  // `to` echoed our reachability challenge after a retained replay to it was refused for lack
  // of budget (docs/engine.md §17): replay now for every subscription of the sessions there.
  void replay_owed(const Endpoint& to, Instant now) noexcept;
  static constexpr std::size_t bytes_for(const EngineLimits& l) noexcept {
    return DiscoveryTable::bytes_for(at_least_one(l.max_peers), at_least_one(l.max_peer_subscriptions),
                                     at_least_one(l.max_peer_filters), l.max_channel_name);
  }
  std::size_t state_bytes() const noexcept { return table_.state_bytes(); }

 private:
  // How long subscriptions inherited by a restarted/renewed session stay without its own
  // SUBSCRIBE: two re-announcement rounds (one may be lost) plus half a round for jitter and
  // transit.
  Duration tentative_bound() const noexcept {
    return 2 * c_.cfg.timers.heartbeat_interval + c_.cfg.timers.heartbeat_interval / 2;
  }
  bool note_peer(const wire::Packet& p, const Endpoint& from, Instant now) noexcept;
  void on_subscribe(const wire::Packet& p, const Endpoint& from, Instant now) noexcept;

  const Context& c_;  // Engine::Impl::ctx (outlives every component)
  Links l_;
  DiscoveryTable table_;
};

}  // namespace nomq::detail
