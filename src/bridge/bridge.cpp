#include "bridge/bridge.hpp"
#include "cli/key_reload.hpp"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include "bridge/bridge_store.hpp"
#include "cli/command.hpp"
#include "cli/node_setup.hpp"
#include "nomq/node.hpp"
#include "nomq/wire.hpp"

namespace nomq::bridge {

namespace {

using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string hex32(std::uint32_t v) {
  char b[12];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

// User properties the bridge writes (MQTT 5) and reads.
constexpr const char* kPropPriority = "nomq-priority";
constexpr const char* kPropSender = "nomq-sender";
constexpr const char* kPropId = "nomq-id";
constexpr const char* kPropOrigin = "nomq-origin";
constexpr const char* kPropQos = "nomq-qos";

void log_line(const char* fmt, const std::string& a, const std::string& b = {}) {
  std::fprintf(stderr, fmt, a.c_str(), b.c_str());
  std::fflush(stderr);
}

struct InItem {
  StoredMessage m;  // row 0: QoS 0, not stored
};

// A message from NoMQ for the store writer (Bridge::writer_thread): kept in the next batch,
// then acknowledged (ack_token) and published to the broker.
struct OutItem {
  StoredMessage m;
  AckToken token = 0;
  std::string channel;  // the NoMQ channel (for a refusal's log line)
};

class Bridge {
 public:
  Bridge(const BridgeConfig& c, const RunOptions& o) : c_(c), o_(o) {}
  int run();

 private:
  // --- MQTT
  void mqtt_thread();
  bool try_connect();
  void on_connect(int rc, const mosquitto_property* props);
  void on_disconnect(int rc);
  void on_publish(int mid, int reason);
  void on_message(const mosquitto_message* msg, const mosquitto_property* props);
  void publish_out(StoredMessage m);
  void flush_unsent();
  // --- NoMQ
  void subscribe_out();
  void in_thread();
  void forward_out(const Message& m);
  // Group commit (docs/bridge.md "Batched commits"): takes every message from NoMQ queued
  // since its last turn and every row to delete, commits them in one transaction, then
  // acknowledges the kept messages and hands them to the MQTT client.
  void writer_thread();
  // One turn of the writer: false if there was nothing to do (after waiting, if `wait`, until
  // there is something or the bridge stops).
  bool writer_turn(bool wait);
  // Deletes `row` in the writer's next transaction.
  // Queues the removal of `row` for the writer's next commit. `settles`: the row of a publish
  // into NoMQ whose report came in (it counts against nomq_inflight until the removal is
  // committed: in_settling_).
  void drop_row(std::int64_t row, bool settles = false);
  // Cuts the MQTT connection before anything more is written to it (docs/bridge.md "Store
  // full"): a PUBACK already queued for a message the store refused never leaves.
  void cut_connection();
  const Rule* out_rule(std::string_view channel) const;
  const Rule* in_rule(std::string_view topic) const;
  void print_stats();
  // Keeps the node's session durable (docs/bridge.md, "Exactly once across a restart"): the
  // session id, sequence numbers reserved ahead of those sent, the unicast port.
  void keep_session(bool force);

  static void cb_connect(mosquitto*, void* self, int rc, int, const mosquitto_property* p) {
    static_cast<Bridge*>(self)->on_connect(rc, p);
  }
  static void cb_disconnect(mosquitto*, void* self, int rc, const mosquitto_property*) {
    static_cast<Bridge*>(self)->on_disconnect(rc);
  }
  static void cb_publish(mosquitto*, void* self, int mid, int reason, const mosquitto_property*) {
    static_cast<Bridge*>(self)->on_publish(mid, reason);
  }
  static void cb_message(mosquitto*, void* self, const mosquitto_message* m,
                         const mosquitto_property* p) {
    static_cast<Bridge*>(self)->on_message(m, p);
  }

  const BridgeConfig& c_;
  RunOptions o_;
  Counters n_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Node> node_;
  mosquitto* mosq_ = nullptr;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::atomic<int> protocol_{MQTT_PROTOCOL_V5};
  bool got_connack_ = false;  // mqtt thread only
  std::mutex out_mu_;
  std::unordered_map<int, std::int64_t> inflight_out_;  // mid -> store row
  std::deque<StoredMessage> unsent_;  // QoS 1/2 taken while disconnected, sent on CONNACK
  std::mutex in_mu_;
  std::condition_variable in_cv_;
  std::deque<InItem> in_queue_;
  std::size_t in_open_ = 0;  // QoS 1/2 publishes into NoMQ awaiting their report
  std::mutex w_mu_;  // the store writer's queues
  std::condition_variable w_cv_;
  std::vector<OutItem> w_items_;
  std::vector<std::int64_t> w_removes_;
  std::size_t w_settling_ = 0;  // of w_removes_, rows drop_row() was told settle a publish
  // Publishes into NoMQ whose report came in but whose row's removal is not committed yet: a
  // crash now would republish them at the restart, so they count against nomq_inflight
  // (in_thread) until the writer has committed the removal.
  std::atomic<std::size_t> in_settling_{0};
  std::vector<OutItem> wb_items_;  // the writer's batch (writer thread, then run() at the end)
  std::vector<std::int64_t> wb_removes_;
  std::vector<const StoredMessage*> wb_adds_;
  // MQTT -> NoMQ paused: a message did not fit the store, the connection was cut so that
  // the broker keeps it; no reconnection until the store has room for in_paused_size_ bytes.
  std::atomic<bool> in_paused_{false};
  std::atomic<bool> in_cutting_{false};  // mqtt thread: cut in this loop turn, take nothing more
  std::atomic<std::uint64_t> in_paused_size_{0};
  std::uint32_t kept_session_ = 0;  // main thread: what the store holds
  std::int64_t kept_reserved_ = 0;
};

// Sequence numbers reserved ahead in the store: a restart continues above them. Renewed when
// half are used (checked every 200 ms: far more than a node sends meanwhile).
constexpr std::int64_t kSequenceReserve = std::int64_t{1} << 22;

// The NoMQ message id of a stored message published into NoMQ: its row, so that a republish
// after a restart (same session) carries the same id and receivers recognise it.
MessageId row_message_id(std::int64_t row) {
  const auto id = static_cast<MessageId>(row);
  return id != 0 ? id : 1;
}

// --- MQTT side -------------------------------------------------------------------------

bool Bridge::try_connect() {
  got_connack_ = false;
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, protocol_.load());
  mosquitto_property* props = nullptr;
  if (protocol_.load() == MQTT_PROTOCOL_V5) {
    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                 c_.broker.session_expiry_s);
  }
  const int rc = mosquitto_connect_bind_v5(mosq_, c_.broker.host.c_str(), c_.broker.port,
                                           c_.broker.keepalive_s, nullptr, props);
  mosquitto_property_free_all(&props);
  if (rc != MOSQ_ERR_SUCCESS) {
    ++n_.connect_failures;
    const std::string why = rc == MOSQ_ERR_ERRNO ? std::string{std::strerror(errno)}
                                                 : std::string{mosquitto_strerror(rc)};
    log_line("nomq bridge: cannot connect to %s: %s (retrying with backoff)\n",
             c_.broker.host + ":" + std::to_string(c_.broker.port), why);
    return false;
  }
  return true;
}

void Bridge::mqtt_thread() {
  // Reconnection: decorrelated-jitter exponential backoff (each delay drawn between the
  // initial delay and three times the previous one, capped), reset by a successful CONNACK.
  std::mt19937_64 rng{std::random_device{}()};
  const auto initial = std::chrono::milliseconds(c_.broker.reconnect_initial_ms);
  const auto cap = std::chrono::milliseconds(c_.broker.reconnect_max_ms);
  auto delay = initial;
  bool socket_up = false;
  auto next_attempt = SteadyClock::now();
  while (!stop_) {
    if (!socket_up) {
      if (in_paused_) {
        // Cut because the store was full: the broker keeps what it sent; reconnect once the
        // store has room for it (NoMQ delivery reports and expiry free rows meanwhile).
        // Rows for the broker need the connection to leave the store: with any, try anyway.
        if (!store_->has_room(in_paused_size_) && store_->count(Dir::to_mqtt) == 0) {
          std::this_thread::sleep_for(50ms);
          continue;
        }
        in_paused_ = false;
        log_line("nomq bridge: the store has room again (%s messages), reconnecting to take "
                 "what the broker kept%s\n", std::to_string(store_->count()));
      }
      if (SteadyClock::now() < next_attempt) {
        std::this_thread::sleep_for(std::min<SteadyClock::duration>(50ms, next_attempt - SteadyClock::now()));
        continue;
      }
      in_cutting_ = false;
      socket_up = try_connect();
      if (!socket_up) {
        std::uniform_int_distribution<long long> d(initial.count(),
                                                   std::max(initial.count(), 3 * delay.count()));
        delay = std::min(cap, std::chrono::milliseconds(d(rng)));
        next_attempt = SteadyClock::now() + delay;
        continue;
      }
    }
    // on_disconnect() clears connected_ inside mosquitto_loop(), so whether a connection was
    // up is read before the loop runs.
    const bool was_connected = connected_;
    const int rc = mosquitto_loop(mosq_, 100, 1);
    if (connected_ && delay != initial) delay = initial;
    if (rc != MOSQ_ERR_SUCCESS && !stop_) {
      // The connection ended (broker gone, refused us, or network). MQTT 5 refused or closed
      // before CONNACK with protocol "auto": try 3.1.1 next.
      if (!got_connack_ && c_.broker.protocol == "auto" && protocol_ == MQTT_PROTOCOL_V5 &&
          n_.connects == 0) {
        protocol_ = MQTT_PROTOCOL_V311;
        log_line("nomq bridge: %s: MQTT 5 not accepted, trying MQTT 3.1.1%s\n",
                 c_.broker.host + ":" + std::to_string(c_.broker.port));
        next_attempt = SteadyClock::now();
      } else {
        std::uniform_int_distribution<long long> d(initial.count(),
                                                   std::max(initial.count(), 3 * delay.count()));
        delay = std::min(cap, std::chrono::milliseconds(d(rng)));
        next_attempt = SteadyClock::now() + delay;
      }
      // A cut of our own (the store is full, in_paused_) has its own log line.
      if ((was_connected || connected_) && !in_paused_) {
        log_line("nomq bridge: connection to %s lost: %s (reconnecting with backoff)\n",
                 c_.broker.host + ":" + std::to_string(c_.broker.port),
                 rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc));
      }
      connected_ = false;
      socket_up = false;
    }
  }
}

void Bridge::on_connect(int rc, const mosquitto_property*) {
  got_connack_ = true;
  if (rc != 0) {
    ++n_.connect_failures;
    const bool old_protocol = (protocol_ == MQTT_PROTOCOL_V5 && rc == MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION) ||
                              (protocol_ == MQTT_PROTOCOL_V311 && rc == CONNACK_REFUSED_PROTOCOL_VERSION);
    if (old_protocol && c_.broker.protocol == "auto" && protocol_ == MQTT_PROTOCOL_V5) {
      got_connack_ = false;  // makes the loop fall back to 3.1.1 at once
      return;
    }
    log_line("nomq bridge: broker %s refused the connection: %s (retrying with backoff)\n",
             c_.broker.host + ":" + std::to_string(c_.broker.port),
             protocol_ == MQTT_PROTOCOL_V5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc));
    return;
  }
  ++n_.connects;
  {
    std::lock_guard lk(out_mu_);
    connected_ = true;
  }
  const bool v5 = protocol_ == MQTT_PROTOCOL_V5;
  for (const Rule& r : c_.rules) {
    if (!r.in()) continue;
    // QoS 1 at most toward the broker: libmosquitto keeps an inbound QoS 2 message only in
    // memory between PUBREC and PUBREL, so a bridge killed there would lose it. The original
    // QoS travels in nomq-qos; duplicates are dropped by nomq-id (docs/bridge.md).
    const int opts = v5 ? MQTT_SUB_OPT_NO_LOCAL | MQTT_SUB_OPT_RETAIN_AS_PUBLISHED : 0;
    mosquitto_subscribe_v5(mosq_, nullptr, r.mqtt.filter.c_str(), std::min(r.max_qos, 1), opts,
                           nullptr);
  }
  log_line("nomq bridge: connected to %s (%s)\n",
           c_.broker.host + ":" + std::to_string(c_.broker.port), v5 ? "MQTT 5" : "MQTT 3.1.1");
  flush_unsent();
}

void Bridge::on_disconnect(int) { connected_ = false; }

void Bridge::on_publish(int mid, int reason) {
  std::int64_t row = 0;
  {
    std::lock_guard lk(out_mu_);
    auto it = inflight_out_.find(mid);
    if (it == inflight_out_.end()) return;  // QoS 0
    row = it->second;
    inflight_out_.erase(it);
  }
  if (reason >= 128) {
    ++n_.out_rejected;
    log_line("nomq bridge: broker refused a message: %s%s\n", mosquitto_reason_string(reason));
  } else {
    ++n_.out_acked;
  }
  drop_row(row);
}

void Bridge::publish_out(StoredMessage m) {
  mosquitto_property* props = nullptr;
  const bool v5 = protocol_ == MQTT_PROTOCOL_V5;
  if (v5) {
    if (m.expires_us != 0) {
      const std::int64_t left = (m.expires_us - wall_us() + 999'999) / 1'000'000;
      if (left <= 0) {
        ++n_.expired;
        if (m.row != 0) drop_row(m.row);
        return;
      }
      mosquitto_property_add_int32(&props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
                                   static_cast<std::uint32_t>(left));
    }
    mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, kPropPriority,
                                       std::to_string(m.priority).c_str());
    if (!m.sender.empty()) {
      mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, kPropSender, m.sender.c_str());
    }
    if (!m.origin_id.empty()) {
      mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, kPropId, m.origin_id.c_str());
    }
    mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, kPropOrigin,
                                       c_.bridge_id.c_str());
    mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, kPropQos,
                                       std::to_string(m.qos).c_str());
  }
  int mid = 0;
  std::lock_guard lk(out_mu_);  // before the broker's answer can be handled
  // Not connected: QoS 1/2 waits in memory (and in the store) for the next CONNACK; QoS 0 is
  // not queued (MQTT's at-most-once; counted in received, not published).
  int rc = MOSQ_ERR_NO_CONN;
  if (connected_) {
    rc = mosquitto_publish_v5(mosq_, &mid, m.topic.c_str(), static_cast<int>(m.payload.size()),
                              m.payload.data(), m.qos, m.retain, props);
  }
  mosquitto_property_free_all(&props);
  if (rc == MOSQ_ERR_NO_CONN) {
    if (m.qos > 0) unsent_.push_back(std::move(m));
    return;
  }
  if (rc != MOSQ_ERR_SUCCESS) {
    // A message the client or the broker's limits refuse (too large ...): said and counted; a
    // stored QoS 1/2 message stays in the store for the next start.
    ++n_.out_rejected;
    log_line("nomq bridge: cannot publish on %s: %s\n", m.topic, mosquitto_strerror(rc));
    return;
  }
  ++n_.out_published;
  if (m.qos > 0) inflight_out_[mid] = m.row;
}

void Bridge::flush_unsent() {
  std::deque<StoredMessage> batch;
  {
    std::lock_guard lk(out_mu_);
    batch.swap(unsent_);
  }
  for (StoredMessage& m : batch) publish_out(std::move(m));
}

void Bridge::on_message(const mosquitto_message* msg, const mosquitto_property* props) {
  const Rule* r = in_rule(msg->topic);
  if (r == nullptr) return;
  std::string origin, id, priority_text, qos_text;
  char* k = nullptr;
  char* v = nullptr;
  for (const mosquitto_property* p =
           mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY, &k, &v, false);
       p != nullptr; p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &k, &v, true)) {
    const std::string key{k}, value{v};
    if (key == kPropOrigin) origin = value;
    if (key == kPropId) id = value;
    if (key == kPropPriority) priority_text = value;
    if (key == kPropQos) qos_text = value;
    std::free(k);
    std::free(v);
    k = v = nullptr;
  }
  if (origin == c_.bridge_id) {  // our own message back (3.1.1 has no no-local)
    ++n_.loops_dropped;
    return;
  }
  // The connection is being cut (the store was full): a QoS 1/2 message read after that is
  // not taken; its PUBACK cannot leave either, so the broker sends it again.
  if (in_cutting_ && msg->qos > 0) return;
  ++n_.in_received;
  StoredMessage m;
  m.dir = Dir::to_nomq;
  m.topic = rewrite(r->mqtt, r->nomq, msg->topic);
  m.payload.assign(static_cast<const char*>(msg->payload ? msg->payload : ""),
                   static_cast<std::size_t>(msg->payloadlen));
  int qos = msg->qos;
  if (qos_text.size() == 1 && qos_text[0] >= '0' && qos_text[0] <= '2') qos = qos_text[0] - '0';
  m.qos = std::min(qos, r->max_qos);
  m.retain = r->retain && msg->retain;
  if (!priority_text.empty()) m.priority = std::clamp(std::atoi(priority_text.c_str()), 0, 15);
  std::uint32_t expiry = 0;
  if (mosquitto_property_read_int32(props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, &expiry, false)) {
    m.expires_us = wall_us() + static_cast<std::int64_t>(std::max<std::uint32_t>(expiry, 1)) * 1'000'000;
  }
  m.origin_id = id;
  if (m.qos == 0) {
    if (!id.empty() && store_->seen_before(id)) {
      ++n_.in_duplicates;
      return;
    }
  } else {
    // Kept before this callback returns: the PUBACK leaves after it (the loop is threaded).
    auto row = store_->add(m, id);
    if (!row) {
      if (row.error() == Errc::duplicate) {
        ++n_.in_duplicates;
        return;
      }
      // Not kept (the store is full, or cannot be written): it must not be acknowledged.
      // libmosquitto queues the PUBACK whatever this callback does, and writes it after the
      // callback returns: the connection is cut first, so the broker keeps the message and
      // sends it again when the bridge reconnects, which it does once the store has room.
      --n_.in_received;
      ++n_.in_store_full;
      in_paused_size_ = m.topic.size() + m.payload.size();
      in_paused_ = true;
      log_line("nomq bridge: message on %s not acknowledged to the broker: %s; disconnecting "
               "until the store has room (the broker keeps it and sends it again)\n",
               msg->topic, std::string{row.error().message()});
      cut_connection();
      return;
    }
    m.row = *row;
  }
  {
    std::lock_guard lk(in_mu_);
    in_queue_.push_back(InItem{std::move(m)});
  }
  in_cv_.notify_one();
}

// --- NoMQ side -------------------------------------------------------------------------

const Rule* Bridge::out_rule(std::string_view channel) const {
  for (const Rule& r : c_.rules) {
    if (r.out() && wire::filter_matches(r.nomq.filter, channel)) return &r;
  }
  return nullptr;
}

const Rule* Bridge::in_rule(std::string_view topic) const {
  for (const Rule& r : c_.rules) {
    if (r.in() && wire::filter_matches(r.mqtt.filter, topic)) return &r;
  }
  return nullptr;
}

void Bridge::forward_out(const Message& msg) {
  // The node defers the acknowledgement of every QoS 1/2 message (deferred_ack): the writer
  // sends it once the message is committed to the store, and never for a message the store
  // refused, so that its publisher retransmits it and, if the store stays full, reports this
  // bridge's node as failed (docs/bridge.md, "Store full"). A message no rule takes is
  // acknowledged at once.
  const auto accept = [&] {
    if (msg.ack_token == 0) return;
    if (auto a = node_->accept(msg.ack_token); !a) {
      log_line("nomq bridge: cannot acknowledge a message on %s: %s\n", msg.channel,
               std::string{a.error().message()});
    }
  };
  const Rule* r = out_rule(msg.channel);
  if (r == nullptr) return accept();
  ++n_.out_received;
  StoredMessage m;
  m.dir = Dir::to_mqtt;
  m.topic = rewrite(r->nomq, r->mqtt, msg.channel);
  m.payload = msg.message;
  m.qos = std::min(static_cast<int>(msg.qos), r->max_qos);
  m.retain = r->retain && msg.retain;
  m.priority = msg.priority;
  if (msg.ttl_s != 0) m.expires_us = wall_us() + std::int64_t{msg.ttl_s} * 1'000'000;
  m.origin_id = hex32(msg.sender_session) + "-" + hex32(msg.message_id);
  m.sender = cli::endpoint_text(msg.from);
  // Kept, acknowledged and published by the writer, in this order (QoS 0 too, so that the
  // broker sees them in the order they came).
  bool wake = false;
  {
    std::lock_guard lk(w_mu_);
    wake = w_items_.empty() && w_removes_.empty();
    w_items_.push_back(OutItem{std::move(m), msg.ack_token, msg.channel});
  }
  if (wake) w_cv_.notify_one();
}

void Bridge::drop_row(std::int64_t row, bool settles) {
  bool wake = false;
  {
    std::lock_guard lk(w_mu_);
    wake = w_items_.empty() && w_removes_.empty();
    w_removes_.push_back(row);
    if (settles) {
      ++w_settling_;
      ++in_settling_;
    }
  }
  if (wake) w_cv_.notify_one();
}

void Bridge::writer_thread() {
  while (writer_turn(true)) {
  }
}

bool Bridge::writer_turn(bool wait) {
  // The writer's own vectors, swapped with the queues: their capacity is kept across turns.
  std::vector<OutItem>& items = wb_items_;
  std::vector<std::int64_t>& removes = wb_removes_;
  std::vector<const StoredMessage*>& adds = wb_adds_;
  std::size_t settling = 0;
  items.clear();
  removes.clear();
  adds.clear();
  {
    std::unique_lock lk(w_mu_);
    if (wait) {
      w_cv_.wait(lk, [&] { return !w_items_.empty() || !w_removes_.empty() || stop_.load(); });
    }
    if (w_items_.empty() && w_removes_.empty()) return false;  // stopping, nothing left
    items.swap(w_items_);
    removes.swap(w_removes_);
    settling = std::exchange(w_settling_, 0);
  }
  {
    for (const OutItem& it : items) {
      if (it.m.qos > 0) adds.push_back(&it.m);
    }
    // One transaction for the batch: what arrived while the previous one committed.
    auto rows = store_->commit(adds, removes);
    if (settling > 0) {
      // Those publishes leave the in-flight window: in_thread may publish more.
      {
        std::lock_guard lk(in_mu_);
        in_settling_ -= settling;
      }
      in_cv_.notify_one();
    }
    {
      // The acknowledgements leave in sendmmsg() batches, after the commit.
      Node::Batch acks = node_->batch();
      std::size_t k = 0;
      for (OutItem& it : items) {
        if (it.m.qos == 0) continue;
        auto& row = rows[k++];
        if (!row) {
          // Never acknowledged: its publisher retransmits and, if it never fits, reports
          // this bridge as failed (docs/bridge.md "Store full").
          ++n_.out_store_full;
          if (it.token != 0) (void)node_->refuse(it.token);
          log_line("nomq bridge: message from %s refused, not acknowledged (its publisher "
                   "retransmits, and reports this bridge as failed if it never fits): %s\n",
                   it.m.sender + " on " + it.channel, std::string{row.error().message()});
          it.m.qos = -1;  // not published
          continue;
        }
        it.m.row = *row;
        if (it.token != 0) {
          if (auto a = node_->accept(it.token); !a) {
            log_line("nomq bridge: cannot acknowledge a message on %s: %s\n", it.channel,
                     std::string{a.error().message()});
          }
        }
      }
    }
    for (OutItem& it : items) {
      if (it.m.qos >= 0) publish_out(std::move(it.m));
    }
  }
  return true;
}

void Bridge::cut_connection() {
  in_cutting_ = true;
  const int fd = mosquitto_socket(mosq_);
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

void Bridge::subscribe_out() {
  // Stored (and handed to the MQTT client) on the node's loop thread; the node's deferred
  // acknowledgement sends the ACK/PUBREC only after the commit (forward_out).
  node_->on_message([this](const Message& m) { forward_out(m); });
  for (const Rule& r : c_.rules) {
    if (!r.out()) continue;
    if (auto s = node_->subscribe(r.nomq.filter); !s && s.error() != Errc::already_subscribed) {
      log_line("nomq bridge: cannot subscribe to %s: %s\n", r.nomq.filter,
               std::string{s.error().message()});
    }
  }
}

void Bridge::in_thread() {
  struct Open {
    std::int64_t row;
    PublishHandle handle;
  };
  std::deque<Open> open;
  while (!stop_) {
    // Reports first: they free pending slots.
    for (auto it = open.begin(); it != open.end();) {
      if (!it->handle.ready()) {
        ++it;
        continue;
      }
      const Delivery d = it->handle.wait();
      if (d.reason == Errc::ok) {
        ++n_.in_delivered;
      } else {
        ++n_.in_failed;
        if (d.reason == Errc::expired) ++n_.expired;
      }
      drop_row(it->row, /*settles=*/true);
      it = open.erase(it);
    }
    std::optional<InItem> item;
    // At most nomq_inflight publishes whose row a crash would republish: reports outstanding,
    // and reported ones whose row's removal is not committed yet (config; docs/bridge.md,
    // "Exactly once into NoMQ across a bridge crash").
    const auto room = [&] {
      return open.size() + in_settling_.load() < static_cast<std::size_t>(c_.nomq_inflight);
    };
    {
      std::unique_lock lk(in_mu_);
      in_cv_.wait_for(lk, open.empty() ? 200ms : 2ms,
                      [&] { return (room() && !in_queue_.empty()) || stop_.load(); });
      if (room() && !in_queue_.empty()) {
        item = std::move(in_queue_.front());
        in_queue_.pop_front();
      }
      in_open_ = open.size();
    }
    if (!item) continue;
    StoredMessage& m = item->m;
    PublishOptions po;
    po.qos = static_cast<Qos>(m.qos);
    po.retain = m.retain;
    po.priority = static_cast<std::uint8_t>(m.priority);
    if (m.expires_us != 0) {
      const std::int64_t left = (m.expires_us - wall_us() + 999'999) / 1'000'000;
      if (left <= 0) {
        ++n_.expired;
        if (m.row != 0) drop_row(m.row);
        continue;
      }
      po.ttl_s = static_cast<std::uint16_t>(std::min<std::int64_t>(left, 65535));
    }
    if (m.row != 0) po.message_id = row_message_id(m.row);
    auto h = node_->publish(m.topic, m.payload, po);
    if (!h) {
      if (h.error() == Errc::too_many_pending || h.error() == Errc::queue_full) {
        {
          std::lock_guard lk(in_mu_);
          in_queue_.push_front(std::move(*item));  // retried once a report frees a slot
        }
        std::this_thread::sleep_for(1ms);
        continue;
      }
      ++n_.in_failed;
      log_line("nomq bridge: cannot publish on %s: %s\n", m.topic, std::string{h.error().message()});
      if (m.row != 0) drop_row(m.row);
      continue;
    }
    ++n_.in_published;
    if (m.qos > 0) open.push_back(Open{m.row, std::move(*h)});
  }
}

void Bridge::keep_session(bool force) {
  const SessionResume s = node_->session_state();
  if (s.session_id == 0) return;  // wire v1: no session to continue
  if (!force && s.session_id == kept_session_ &&
      std::int64_t{s.next_sequence} + kSequenceReserve / 2 < kept_reserved_) {
    return;
  }
  const std::int64_t reserved =
      std::min<std::int64_t>(std::int64_t{s.next_sequence} + kSequenceReserve, 0xFFFFFFFF);
  auto r = store_->set_meta({{"session_id", s.session_id},
                             {"sequence_reserved", reserved},
                             {"unicast_port", node_->local_endpoint().port}});
  if (!r) {
    log_line("nomq bridge: cannot keep the session in the store: %s%s\n",
             std::string{r.error().message()});
    return;
  }
  kept_session_ = s.session_id;
  kept_reserved_ = reserved;
}

void Bridge::print_stats() {
  nlohmann::json j;
  j["connected"] = connected_.load();
  j["protocol"] = protocol_ == MQTT_PROTOCOL_V5 ? "5" : "3.1.1";
  j["out"] = {{"received", n_.out_received.load()}, {"published", n_.out_published.load()},
              {"acked", n_.out_acked.load()}, {"rejected", n_.out_rejected.load()},
              {"store_full", n_.out_store_full.load()}};
  j["in"] = {{"received", n_.in_received.load()}, {"published", n_.in_published.load()},
             {"delivered", n_.in_delivered.load()}, {"failed", n_.in_failed.load()},
             {"duplicates", n_.in_duplicates.load()}, {"store_full", n_.in_store_full.load()},
             {"paused", in_paused_.load()}};
  j["loops_dropped"] = n_.loops_dropped.load();
  j["expired"] = n_.expired.load() + store_->expired_dropped();
  j["backlog"] = {{"messages", store_->count()}, {"bytes", store_->bytes()}};
  j["connects"] = n_.connects.load();
  j["connect_failures"] = n_.connect_failures.load();
  if (o_.json_stats) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf(
        "bridge %s: %s | out recv %llu pub %llu acked %llu full %llu | in recv %llu pub %llu "
        "delivered %llu failed %llu dup %llu full %llu | loops %llu expired %llu | backlog %llu "
        "msgs %llu bytes\n",
        c_.bridge_id.c_str(),
        connected_ ? (protocol_ == MQTT_PROTOCOL_V5 ? "mqtt5" : "mqtt3.1.1")
                   : (in_paused_ ? "disconnected (store full: in paused)" : "disconnected"),
        (unsigned long long)n_.out_received, (unsigned long long)n_.out_published,
        (unsigned long long)n_.out_acked, (unsigned long long)n_.out_store_full,
        (unsigned long long)n_.in_received, (unsigned long long)n_.in_published,
        (unsigned long long)n_.in_delivered, (unsigned long long)n_.in_failed,
        (unsigned long long)n_.in_duplicates, (unsigned long long)n_.in_store_full,
        (unsigned long long)n_.loops_dropped, (unsigned long long)j["expired"].get<std::uint64_t>(),
        (unsigned long long)store_->count(), (unsigned long long)store_->bytes());
  }
  std::fflush(stdout);
}

int Bridge::run() {
  // Signals are taken by the main thread only (sigtimedwait): block them before any thread.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);  // reload the NoMQ config's key epoch (docs/security.md §4)
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  // A write to a connection cut on purpose (cut_connection) or closed by the broker is an
  // error return (EPIPE), not a signal that ends the process.
  ::signal(SIGPIPE, SIG_IGN);

  auto store = Store::open(c_.store.path, c_.store.max_messages, c_.store.max_bytes,
                           c_.store.dedup_entries);
  if (!store) {
    std::fprintf(stderr, "Error: %s\n", cli::error_text(store.error()).c_str());
    return cli::kExitFailure;
  }
  store_ = std::move(*store);

  cli::NodeArgs args;
  args.config_path = c_.nomq_config;
  args.debug = o_.debug;
  NodeConfig node_config;
  int code = 0;
  // The previous run's NoMQ session, continued (docs/bridge.md): its id, above the sequence
  // numbers it reserved (reserved further before anything is sent), and its unicast port,
  // so that receivers recognise a message republished after a crash as the same one, and
  // publishers find the bridge where its session was.
  SessionResume resume;
  std::uint16_t port = 0;
  if (const auto sid = store_->meta("session_id"), seq = store_->meta("sequence_reserved");
      sid && seq && *sid > 0 && *sid <= 0xFFFFFFFF && *seq > 0 &&
      *seq + kSequenceReserve <= 0xFFFFFFFF) {
    if (auto r = store_->set_meta({{"sequence_reserved", *seq + kSequenceReserve}}); r) {
      resume.session_id = static_cast<std::uint32_t>(*sid);
      resume.next_sequence = static_cast<std::uint32_t>(*seq);
      if (const auto p = store_->meta("unicast_port"); p && *p > 0 && *p <= 65535) {
        port = static_cast<std::uint16_t>(*p);
      }
    }
  }
  const auto adjust = [&resume, &port](NodeOptions& no) {
    no.engine.resume = resume;
    if (port != 0 && no.network.unicast_bind && no.network.unicast_bind->port == 0) {
      no.network.unicast_bind->port = port;
    }
    // A bridge carries many channels: raise the tables a single-purpose node keeps small.
    EngineLimits& l = no.engine.limits;
    l.max_pending = std::max<std::size_t>(l.max_pending, 1024);
    l.max_queued_messages = std::max<std::size_t>(l.max_queued_messages, 1024);
    l.max_outbox = std::max<std::size_t>(l.max_outbox, 4096);
    l.max_retained_channels = std::max<std::size_t>(l.max_retained_channels, 1024);
    l.max_inbox = std::max<std::size_t>(l.max_inbox, 4096);
    l.max_channels = std::max<std::size_t>(l.max_channels, 256);
    // QoS 1/2 messages are acknowledged once stored (forward_out): deferred acknowledgement.
    no.engine.deferred_ack = true;
    l.max_deferred_acks = std::max<std::size_t>(l.max_deferred_acks, 4096);
    no.network.listener_capacity = std::max<std::size_t>(no.network.listener_capacity, 65536);
    return std::string{};
  };
  node_ = cli::make_node("bridge", args, node_config, code, adjust);
  if (!node_ && port != 0) {
    // The previous unicast port is taken: continue the session elsewhere.
    log_line("nomq bridge: unicast port %s of the previous run is not free, taking another%s\n",
             std::to_string(port));
    port = 0;
    node_ = cli::make_node("bridge", args, node_config, code, adjust);
  }
  if (!node_) return code;
  keep_session(true);

  mosquitto_lib_init();
  mosq_ = mosquitto_new(c_.broker.client_id.c_str(), /*clean_session=*/false, this);
  if (mosq_ == nullptr) {
    std::fprintf(stderr, "Error: cannot create the MQTT client: %s\n", std::strerror(errno));
    return cli::kExitFailure;
  }
  if (c_.broker.protocol == "3.1.1") protocol_ = MQTT_PROTOCOL_V311;
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, protocol_.load());
  mosquitto_threaded_set(mosq_, true);  // our thread drives the loop; replies leave after callbacks
  mosquitto_connect_v5_callback_set(mosq_, cb_connect);
  mosquitto_disconnect_v5_callback_set(mosq_, cb_disconnect);
  mosquitto_publish_v5_callback_set(mosq_, cb_publish);
  mosquitto_message_v5_callback_set(mosq_, cb_message);
  mosquitto_int_option(mosq_, MOSQ_OPT_SEND_MAXIMUM, 1000);
  mosquitto_max_inflight_messages_set(mosq_, 1000);
  if (c_.broker.protocol == "3.1.1") protocol_ = MQTT_PROTOCOL_V311;
  if (!c_.broker.username.empty()) {
    mosquitto_username_pw_set(mosq_, c_.broker.username.c_str(),
                              c_.broker.password.empty() ? nullptr : c_.broker.password.c_str());
  }
  const TlsOptions& t = c_.broker.tls;
  if (t.enabled()) {
    int rc = MOSQ_ERR_SUCCESS;
    if (!t.psk_hex.empty()) {
      rc = mosquitto_tls_psk_set(mosq_, t.psk_hex.c_str(), t.psk_identity.c_str(), nullptr);
    } else {
      const auto opt = [](const std::string& s) { return s.empty() ? nullptr : s.c_str(); };
      rc = mosquitto_tls_set(mosq_, opt(t.ca_file), opt(t.ca_path), opt(t.cert_file),
                             opt(t.key_file), nullptr);
      if (rc == MOSQ_ERR_SUCCESS && t.insecure) rc = mosquitto_tls_insecure_set(mosq_, true);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
      std::fprintf(stderr, "Error: broker.tls: %s\n", mosquitto_strerror(rc));
      return cli::kExitUsage;
    }
  }

  if (auto r = node_->start(); !r) {
    std::fprintf(stderr, "Error: cannot start the node: %s\n", cli::error_text(r.error()).c_str());
    return cli::kExitFailure;
  }
  // What the last run left in the store goes out again (new MQTT packet ids; the other side's
  // bridge drops repeats by nomq-id).
  for (StoredMessage& m : store_->load(Dir::to_mqtt, wall_us())) publish_out(std::move(m));
  for (StoredMessage& m : store_->load(Dir::to_nomq, wall_us())) {
    std::lock_guard lk(in_mu_);
    in_queue_.push_back(InItem{std::move(m)});
  }

  std::thread writer([this] { writer_thread(); });
  std::thread mqtt([this] { mqtt_thread(); });
  std::thread in([this] { in_thread(); });
  subscribe_out();
  std::fprintf(stderr,
               "nomq bridge: ready, bridge %s, node %s, %zu rules, store %s (%llu messages kept)\n",
               c_.bridge_id.c_str(), cli::endpoint_text(node_->local_endpoint()).c_str(),
               c_.rules.size(), c_.store.path.c_str(),
               static_cast<unsigned long long>(store_->count()));
  std::fflush(stderr);

  const auto interval = std::chrono::seconds(std::max(1, c_.stats_interval_s));
  auto next_stats = SteadyClock::now() + interval;
  int sig = 0;
  while (sig == 0) {
    keep_session(false);
    const auto wait = std::min<std::chrono::milliseconds>(
        200ms, std::chrono::duration_cast<std::chrono::milliseconds>(next_stats - SteadyClock::now()));
    timespec ts{};
    const auto ms = std::max<long long>(0, wait.count());
    ts.tv_sec = static_cast<time_t>(ms / 1000);
    ts.tv_nsec = static_cast<long>(ms % 1000) * 1'000'000;
    const int got = sigtimedwait(&sigs, nullptr, &ts);
    if (got == SIGHUP) {
      cli::reload_keys(*node_, "bridge", c_.nomq_config, false);
    } else if (got > 0) {
      sig = got;
    }
    if (SteadyClock::now() >= next_stats) {
      if (c_.stats_interval_s > 0) print_stats();
      next_stats += interval;
    }
  }
  std::fprintf(stderr, "nomq bridge: %s, stopping (%llu messages kept for the next start)\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", static_cast<unsigned long long>(store_->count()));
  node_->on_message({});
  stop_ = true;
  in_cv_.notify_all();
  in.join();
  mqtt.join();
  {
    std::lock_guard lk(w_mu_);  // the writer commits what is queued, then ends
  }
  w_cv_.notify_all();
  writer.join();
  if (connected_) {
    // Acknowledgements already received are applied; what is unacknowledged stays stored.
    mosquitto_disconnect_v5(mosq_, MQTT_RC_NORMAL_DISCONNECTION, nullptr);
    for (int i = 0; i < 5 && connected_; ++i) mosquitto_loop(mosq_, 20, 1);
  }
  // What the threads queued after the writer ended (deletes on the last PUBACKs and reports).
  while (writer_turn(false)) {
  }
  print_stats();
  node_->close();
  mosquitto_destroy(mosq_);
  mosquitto_lib_cleanup();
  return cli::kExitOk;
}

}  // namespace

int run_bridge(const BridgeConfig& config, const RunOptions& options) {
  Bridge b{config, options};
  return b.run();
}

}  // namespace nomq::bridge
