#include "net/dispatch.hpp"

#include "net/log.hpp"
#include "nomq/endpoint_io.hpp"

namespace nomq::detail {
namespace {

Delivery to_delivery(const DeliveryReport& r) {
  Delivery d;
  d.message_id = r.message_id;
  d.channel = std::string{r.channel};
  d.qos = r.qos;
  d.reason = r.reason;
  d.recipients.assign(r.recipients.begin(), r.recipients.end());
  return d;
}

Message to_message(const MessageEvent& e) {
  Message m;
  m.channel = std::string{e.channel};
  m.message = std::string{as_string_view(e.message)};
  m.qos = e.qos;
  m.retain = e.retain;
  m.priority = e.priority;
  m.from = e.from;
  m.sender_session = e.sender_session;
  m.message_id = e.message_id;
  m.ttl_s = e.ttl_s;
  m.ack_token = e.ack_token;
  return m;
}

}  // namespace

std::optional<Message> ListenerQueue::pop() {
  std::lock_guard lk(mutex);
  if (queue.empty()) return std::nullopt;
  Message m = std::move(queue.front());
  queue.pop_front();
  return m;
}

std::shared_ptr<DeliveryState> Dispatcher::track(MessageId id) {
  auto state = std::make_shared<DeliveryState>();
  in_flight_[id] = state;
  return state;
}

std::shared_ptr<DeliveryState> Dispatcher::qos0_state(std::string_view channel) {
  // A publisher mostly publishes on one channel: one allocation per channel change instead of
  // a state and a channel copy per publish.
  if (!qos0_ || qos0_->delivery->channel != channel) {
    auto state = std::make_shared<DeliveryState>();
    Delivery d;
    d.channel = std::string{channel};
    d.qos = Qos::at_most_once;
    state->delivery = std::move(d);
    qos0_ = std::move(state);
  }
  return qos0_;
}

void Dispatcher::deliver(const MessageEvent& msg, Dispatch& out, NodeStats& stats) {
  // Runs before the loop flushes the engine's outbox, which holds this message's ACK/PUBREC.
  if (before_ack_) before_ack_(to_message(msg));
  // Built only when someone receives it (two string copies and their allocations).
  if (listeners_.empty() && !on_message_) return;
  live_.clear();
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (auto q = it->lock()) {
      live_.push_back(std::move(q));
      ++it;
    } else {
      it = listeners_.erase(it);
    }
  }
  if (live_.empty() && !on_message_) return;
  Message m = to_message(msg);
  for (std::size_t i = 0; i < live_.size(); ++i) {
    ListenerQueue& q = *live_[i];
    {
      std::lock_guard lk(q.mutex);
      if (q.queue.size() >= q.capacity) {
        q.queue.pop_front();
        ++stats.listener_overflows;
        log().warn("listener full: oldest message dropped (capacity {})", q.capacity);
      }
      // The last receiver takes the message itself, the others a copy.
      if (i + 1 == live_.size() && !on_message_) {
        q.queue.push_back(std::move(m));
      } else {
        q.queue.push_back(m);
      }
    }
    q.ready.notify_one();  // no system call unless a reader waits
  }
  live_.clear();
  if (on_message_) out.messages.push_back(std::move(m));
}

void Dispatcher::report(const DeliveryReport& rep, bool debug) {
  if (rep.reason == Errc::ok) {  // Delivery::all_acknowledged()
    if (debug)
      log().debug("message {} on '{}' acknowledged by {} recipient(s)", rep.message_id,
                  rep.channel, rep.recipients.size());
  } else {
    log().info("message {} on '{}' not fully delivered: {}", rep.message_id, rep.channel,
               to_string(rep.reason));
  }
  // The owned copy is made only for a handle that waits for it.
  auto it = in_flight_.find(rep.message_id);
  if (it == in_flight_.end()) return;
  it->second->delivery = to_delivery(rep);
  in_flight_.erase(it);
}

bool Dispatcher::drain(Engine& engine, Dispatch& out, NodeStats& stats) {
  bool notify = false;
  // Formatting arguments (to_string of an endpoint: inet_ntop + sprintf, about 2000
  // instructions) are evaluated before spdlog checks the level: check it once here.
  const bool debug = log_enabled(Severity::debug);
  while (auto ev = engine.poll_event()) {
    if (const auto* msg = std::get_if<MessageEvent>(&*ev)) {
      notify = true;
      if (debug) {
        log().debug("message on '{}' from {} (qos {}, retain {}, priority {}, {} bytes)",
                    msg->channel, to_string(msg->from), static_cast<int>(msg->qos), msg->retain,
                    msg->priority, msg->message.size());
      }
      deliver(*msg, out, stats);
    } else if (const auto* rep = std::get_if<DeliveryReport>(&*ev)) {
      notify = true;
      report(*rep, debug);
    } else if (const auto* peer = std::get_if<PeerEvent>(&*ev)) {
      if (peer->kind == PeerEvent::Kind::clock_skew) {
        log().warn("clock of {} (session {:08x}) differs from ours by {} s, beyond the "
                   "timestamp window: its datagrams are refused until the clocks agree",
                   to_string(peer->endpoint), peer->session_id, peer->clock_offset_s);
      } else if (peer->kind == PeerEvent::Kind::auth_failed) {
        log().warn("{}", auth_failure_text(peer->endpoint, peer->failures));
      } else if (peer->kind == PeerEvent::Kind::impersonation) {
        // The alarm of M2 (docs/security.md): only a key holder can have made the datagram.
        log().error("ALARM: a datagram under this node's own session {:08x} with a sequence "
                    "number it never sent arrived (from {}): another key holder impersonates "
                    "this node; the session was renewed",
                    peer->session_id, to_string(peer->endpoint));
      } else if (debug) {
        log().debug("peer {} {} (session {:08x})", to_string(peer->endpoint),
                    to_string(peer->kind), peer->session_id);
      }
      if (on_peer_) out.peers.push_back(*peer);
    }
  }
  return notify;
}

std::vector<Delivery> Dispatcher::close(Engine& engine, NodeStats& stats) {
  std::vector<Delivery> undelivered;
  std::vector<std::shared_ptr<DeliveryState>> ended;
  for (auto& [id, state] : in_flight_) ended.push_back(state);
  on_message_ = nullptr;
  on_peer_ = nullptr;
  Dispatch ignored;
  drain(engine, ignored, stats);
  // Every pending publish ended with a report; keep the ones not fully acknowledged.
  for (auto& s : ended)
    if (s->delivery && !s->delivery->all_acknowledged()) undelivered.push_back(*s->delivery);
  for (auto& [id, state] : in_flight_) {
    // An engine that ended a publish without a report would leave a waiter hanging: end it.
    Delivery d;
    d.message_id = id;
    d.reason = Errc::closed;
    state->delivery = d;
    undelivered.push_back(std::move(d));
  }
  in_flight_.clear();
  for (const auto& weak : listeners_) {
    if (auto q = weak.lock()) {
      {
        std::lock_guard lk(q->mutex);
        q->closed = true;
      }
      q->ready.notify_all();
    }
  }
  return undelivered;
}

void Dispatcher::run_callbacks(const Dispatch& d, std::mutex& m) const {
  // Copying the std::functions may allocate: only when there is something to call.
  if (d.messages.empty() && d.peers.empty()) return;
  std::function<void(const Message&)> mcb;
  std::function<void(const PeerEvent&)> pcb;
  {
    std::lock_guard lk(m);
    mcb = on_message_;
    pcb = on_peer_;
  }
  if (mcb)
    for (const auto& msg : d.messages) mcb(msg);
  if (pcb)
    for (const auto& p : d.peers) pcb(p);
}

}  // namespace nomq::detail

namespace nomq {

std::string auth_failure_text(const Endpoint& host, std::uint64_t datagrams) {
  return "heard " + std::to_string(datagrams) + (datagrams == 1 ? " datagram" : " datagrams") +
         " from " + address_to_string(host) +
         " that failed authentication: different keys or key epoch?";
}

}  // namespace nomq
