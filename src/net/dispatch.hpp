// Dispatch of the engine's events to the application: received messages to listeners and the
// on_message callback, delivery reports to the PublishHandles that wait for them, peer events
// to on_peer. Callbacks run after the node's mutex is released (run_callbacks), so they may
// call the node. Everything else here is called with the node's mutex held.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nomq/engine.hpp"
#include "nomq/node.hpp"

namespace nomq::detail {

// What a PublishHandle waits for. A QoS 0 publish's state is complete at once and shared by
// consecutive QoS 0 publishes on one channel; the handle supplies its own message id.
struct DeliveryState {
  std::optional<Delivery> delivery;  // guarded by the node's mutex
};

// A listener's queue has its own lock, so that a reader popping messages does not wait for the
// loop's thread, which holds the node's mutex while it handles a whole batch of datagrams. Lock
// order: the node's mutex, then this one.
struct ListenerQueue {
  std::mutex mutex;
  std::condition_variable ready;  // a message was queued, or the node closed
  std::deque<Message> queue;      // guarded by mutex
  bool closed = false;            // guarded by mutex
  std::size_t capacity = 0;

  // Pops the oldest message, if any (takes mutex).
  std::optional<Message> pop();
};

// What a loop turn hands to the callbacks once the node's mutex is released.
struct Dispatch {
  std::vector<Message> messages;
  std::vector<PeerEvent> peers;
  void clear() noexcept {
    messages.clear();
    peers.clear();
  }
};

class Dispatcher {
 public:
  void add_listener(std::weak_ptr<ListenerQueue> queue) { listeners_.push_back(std::move(queue)); }
  void set_on_message(std::function<void(const Message&)> cb) { on_message_ = std::move(cb); }
  void set_before_ack(std::function<void(const Message&)> cb) { before_ack_ = std::move(cb); }
  void set_on_peer(std::function<void(const PeerEvent&)> cb) { on_peer_ = std::move(cb); }

  // The state a QoS 1/2 publish's handle waits on; drain() completes it with the report.
  std::shared_ptr<DeliveryState> track(MessageId id);
  // The completed state of a QoS 0 publish on `channel` (its Delivery's message_id is 0: the
  // handle has the id).
  std::shared_ptr<DeliveryState> qos0_state(std::string_view channel);

  // Takes every pending engine event. Returns true when a waiter (a handle, a listener) has
  // something new: the caller notifies its condition variable.
  bool drain(Engine& engine, Dispatch& out, NodeStats& stats);

  // At close, after Engine::close (which reports every pending publish): drops the callbacks,
  // takes the last events, ends every tracked publish and wakes the listeners' readers.
  // Returns the publishes not fully acknowledged, those the engine did not report marked
  // Errc::closed.
  std::vector<Delivery> close(Engine& engine, NodeStats& stats);

  // Without the node's mutex: runs the callbacks (read under `m`) for what `d` holds.
  void run_callbacks(const Dispatch& d, std::mutex& m) const;

 private:
  void deliver(const MessageEvent& msg, Dispatch& out, NodeStats& stats);
  void report(const DeliveryReport& rep, bool debug);

  std::unordered_map<MessageId, std::shared_ptr<DeliveryState>> in_flight_;
  std::shared_ptr<DeliveryState> qos0_;  // the last QoS 0 channel's completed state
  std::vector<std::weak_ptr<ListenerQueue>> listeners_;
  std::vector<std::shared_ptr<ListenerQueue>> live_;  // deliver()'s scratch, keeps its capacity
  std::function<void(const Message&)> on_message_;
  std::function<void(const Message&)> before_ack_;  // Node::on_message_before_ack
  std::function<void(const PeerEvent&)> on_peer_;
};

}  // namespace nomq::detail
