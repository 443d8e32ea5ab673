#include "sim/simulator.hpp"

#include <algorithm>
#include <string>

#include "nomq/crypto_backend.hpp"
#include "sim/fail.hpp"

namespace nomq::sim {

namespace {
constexpr std::uint64_t kLinkStream = 0x4c494e4bull;  // "LINK"
constexpr std::uint64_t kKeyStream = 0x4b455953ull;   // "KEYS"
// An engine that keeps producing datagrams in one drain is broken; stop rather than hang.
constexpr std::size_t kMaxTransmitsPerDrain = 1'000'000;
constexpr std::size_t kMaxEventsPerDrain = 1'000'000;
}  // namespace

struct Simulator::Node {
  EngineConfig config;
  std::unique_ptr<Crypto> crypto;
  std::unique_ptr<SeededRng> rng;
  std::unique_ptr<Engine> engine;
  std::uint32_t generation = 0;
  std::optional<Instant> timer_at;
  Duration wall_offset{0};  // step_wall_clock() and set_wall_clock()
  bool dirty = false;  // fed datagrams in the current instant, events not polled yet
};

struct Simulator::Event {
  enum class Kind : std::uint8_t { arrival, timer, action };
  Instant time{};
  std::uint64_t seq = 0;
  Kind kind = Kind::arrival;
  std::size_t node = 0;  // arrival: destination; timer: the node
  std::size_t from = 0;  // arrival: source node
  std::uint32_t generation = 0;
  std::vector<std::uint8_t> data;
  std::function<void()> action;
};

namespace {
struct Later {
  template <class E>
  bool operator()(const E& a, const E& b) const noexcept {
    return a.time != b.time ? a.time > b.time : a.seq > b.seq;
  }
};
}  // namespace

Simulator::Simulator(Options options)
    : options_(std::move(options)),
      link_rng_(derive_seed(options_.seed, kLinkStream)),
      now_(options_.start),
      tx_buffer_(wire::kMaxDatagram * 2) {
  const Key zero{};
  if (options_.encryption_key == zero || options_.hmac_key == zero) {
    Prng k{derive_seed(options_.seed, kKeyStream)};
    for (auto& b : options_.encryption_key) b = static_cast<std::uint8_t>(k.next());
    for (auto& b : options_.hmac_key) b = static_cast<std::uint8_t>(k.next());
  }
}

Simulator::~Simulator() = default;

std::unique_ptr<Engine> Simulator::make_engine(Node& n) {
  auto made = Engine::create(n.config, *n.crypto, *n.rng, now_);
  if (!made) fail_runtime("engine config: " + std::string(made.error().message()));
  return std::make_unique<Engine>(std::move(made).value());
}

std::size_t Simulator::add_node(const EngineConfig& config) {
  if (nodes_.size() >= 250) fail_runtime("the simulator supports at most 250 nodes");
  const std::size_t index = nodes_.size();
  auto node = std::make_unique<Node>();
  node->config = config;
  auto crypto = make_crypto(options_.encryption_key, options_.hmac_key);
  if (!crypto) fail_runtime("cannot create the crypto backend");
  node->crypto = std::move(crypto).value();
  node->rng = std::make_unique<SeededRng>(derive_seed(options_.seed, index + 1, 0));
  node->engine = make_engine(*node);
  nodes_.push_back(std::move(node));
  flush(index);
  return index;
}

WallTime Simulator::wall_now(std::size_t node) const {
  return options_.wall_start + (now_ - options_.start) + nodes_.at(node)->wall_offset;
}

void Simulator::step_wall_clock(std::size_t node, Duration by) { nodes_.at(node)->wall_offset += by; }

void Simulator::set_wall_clock(std::size_t node, WallTime to) {
  step_wall_clock(node, to - wall_now(node));
}

Engine& Simulator::engine(std::size_t node) { return *nodes_.at(node)->engine; }
const Engine& Simulator::engine(std::size_t node) const { return *nodes_.at(node)->engine; }
std::uint32_t Simulator::generation(std::size_t node) const { return nodes_.at(node)->generation; }

Endpoint Simulator::endpoint(std::size_t node) const noexcept {
  return Endpoint::v4(192, 0, 2, static_cast<std::uint8_t>(node + 1), options_.port);
}

std::optional<std::size_t> Simulator::node_of(const Endpoint& e) const noexcept {
  if (e.family != Endpoint::Family::ipv4 || e.port != options_.port) return std::nullopt;
  if (e.address[0] != 192 || e.address[1] != 0 || e.address[2] != 2 || e.address[3] == 0)
    return std::nullopt;
  const std::size_t index = e.address[3] - 1u;
  if (index >= nodes_.size()) return std::nullopt;
  for (std::size_t i = 4; i < e.address.size(); ++i)
    if (e.address[i] != 0) return std::nullopt;
  return index;
}

Result<void> Simulator::subscribe(std::size_t node, std::string_view channel,
                                  std::uint8_t priority) {
  auto r = engine(node).subscribe(channel, priority, now_);
  flush(node);
  return r;
}

Result<void> Simulator::unsubscribe(std::size_t node, std::string_view channel) {
  auto r = engine(node).unsubscribe(channel, now_);
  flush(node);
  return r;
}

Result<MessageId> Simulator::publish(std::size_t node, std::string_view channel, Bytes message,
                                     const PublishOptions& options) {
  auto r = engine(node).publish(channel, message, options, now_);
  flush(node);
  return r;
}

void Simulator::restart(std::size_t node) {
  Node& n = *nodes_.at(node);
  drain_events(node);  // what the old session had already produced still reaches the hooks
  add_stats(retired_, n.engine->stats());
  n.engine.reset();
  ++n.generation;
  n.rng->reseed(derive_seed(options_.seed, node + 1, n.generation));
  n.timer_at.reset();
  n.dirty = false;
  n.engine = make_engine(n);
  flush(node);
}

Result<void> Simulator::rotate_keys(std::size_t node, Crypto& next, std::uint32_t epoch,
                                    const KeyRotation& when) {
  Result<void> r = engine(node).rotate_keys(next, epoch, when, now_);
  flush(node);
  return r;
}

Result<void> Simulator::add_channel_key(std::size_t node, std::string_view pattern, Crypto& keys) {
  Result<void> r = engine(node).add_channel_key(pattern, keys, now_);
  flush(node);
  return r;
}

void Simulator::close(std::size_t node) {
  engine(node).close(now_);
  flush(node);
}

void Simulator::inject(std::size_t node, const Endpoint& from, Bytes datagram) {
  engine(node).handle_datagram(from, datagram, now_, wall_now(node));
  flush(node);
}

std::uint64_t Simulator::bytes_sent_to(const Endpoint& to) const noexcept {
  for (const UnicastCount& u : unicast_)
    if (u.to == to) return u.bytes;
  return 0;
}

std::uint64_t Simulator::datagrams_sent_to(const Endpoint& to) const noexcept {
  for (const UnicastCount& u : unicast_)
    if (u.to == to) return u.datagrams;
  return 0;
}

void Simulator::set_link(std::size_t from, std::size_t to, const LinkModel& model) {
  link_overrides_[{from, to}] = model;
}

void Simulator::add_partition(Partition p) { partitions_.push_back(std::move(p)); }

void Simulator::at(Instant t, std::function<void()> action) {
  Event ev;
  ev.time = std::max(t, now_);
  ev.kind = Event::Kind::action;
  ev.action = std::move(action);
  push(std::move(ev));
}

void Simulator::push(Event ev) {
  ev.seq = next_seq_++;
  queue_.push_back(std::move(ev));
  std::push_heap(queue_.begin(), queue_.end(), Later{});
}

const LinkModel& Simulator::link(std::size_t from, std::size_t to) const {
  if (!link_overrides_.empty()) {
    auto it = link_overrides_.find({from, to});
    if (it != link_overrides_.end()) return it->second;
  }
  return options_.link;
}

bool Simulator::cut(std::size_t a, std::size_t b, Instant t) const noexcept {
  for (const auto& p : partitions_) {
    if (t < p.start || t >= p.end) continue;
    const bool a_in = std::find(p.nodes.begin(), p.nodes.end(), a) != p.nodes.end();
    const bool b_in = std::find(p.nodes.begin(), p.nodes.end(), b) != p.nodes.end();
    if (a_in != b_in) return true;
  }
  return false;
}

void Simulator::mix(const void* data, std::size_t size) noexcept {
  const auto* p = static_cast<const std::uint8_t*>(data);
  for (std::size_t i = 0; i < size; ++i) {
    digest_ ^= p[i];
    digest_ *= 0x100000001b3ull;  // FNV-1a 64 prime
  }
}

// Integers are mixed as 8 little-endian bytes whatever their type, so that the digest is the
// same where size_t has 32 bits (the microcontroller) and 64 (the host).
void Simulator::mix_u64(std::uint64_t v) noexcept {
  std::uint8_t b[8];
  for (auto& x : b) {
    x = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
  mix(b, sizeof b);
}

void Simulator::mix_endpoint(const Endpoint& e) noexcept {
  mix_u64(static_cast<std::uint64_t>(e.family));
  mix(e.address.data(), e.address.size());
  mix_u64(e.port);
}

void Simulator::mix_event(std::size_t node, std::uint32_t generation,
                          const nomq::Event& ev) noexcept {
  mix_u64(static_cast<std::uint64_t>((now_ - options_.start).count()));
  mix_u64(node);
  mix_u64(generation);
  mix_u64(ev.index());
  if (const auto* m = std::get_if<MessageEvent>(&ev)) {
    mix_u64(m->channel.size());
    mix(m->channel.data(), m->channel.size());
    mix_u64(m->message.size());
    mix(m->message.data(), m->message.size());
    mix_u64(static_cast<std::uint64_t>(m->qos));
    mix_u64(m->retain ? 1 : 0);
    mix_u64(m->priority);
    mix_endpoint(m->from);
    mix_u64(m->sender_session);
    mix_u64(m->message_id);
    mix_u64(m->ttl_s);
  } else if (const auto* r = std::get_if<DeliveryReport>(&ev)) {
    mix_u64(r->message_id);
    mix_u64(r->channel.size());
    mix(r->channel.data(), r->channel.size());
    mix_u64(static_cast<std::uint64_t>(r->qos));
    mix_u64(static_cast<std::uint64_t>(r->reason));
    mix_u64(r->recipients.size());
    for (const Recipient& rc : r->recipients) {
      mix_endpoint(rc.endpoint);
      mix_u64(rc.session_id);
      mix_u64(static_cast<std::uint64_t>(rc.state));
      mix_u64(rc.transmissions);
    }
  } else if (const auto* pe = std::get_if<PeerEvent>(&ev)) {
    mix_u64(static_cast<std::uint64_t>(pe->kind));
    mix_endpoint(pe->endpoint);
    mix_u64(pe->session_id);
    mix_u64(static_cast<std::uint64_t>(pe->clock_offset_s));
    mix_u64(pe->failures);
  }
}

void Simulator::send(std::size_t from, const Transmit& tx, const std::uint8_t* data) {
  mix_u64(static_cast<std::uint64_t>((now_ - options_.start).count()));
  mix_u64(from);
  mix_u64(tx.to_group ? 1 : 0);
  if (!tx.to_group) mix_endpoint(tx.to);
  mix_u64(tx.size);
  mix(data, tx.size);
  ++net_.datagrams_sent;
  net_.bytes_sent += tx.size;
  if (hooks_.on_transmit) hooks_.on_transmit(from, tx, Bytes{data, tx.size}, now_);
  if (tx.to_group) {
    ++net_.group_sends;
    for (std::size_t to = 0; to < nodes_.size(); ++to) {
      if (to == from && !options_.group_loopback) continue;
      send_copy(from, to, data, tx.size);
    }
    return;
  }
  auto counted = std::find_if(unicast_.begin(), unicast_.end(),
                              [&](const UnicastCount& u) { return u.to == tx.to; });
  if (counted == unicast_.end()) counted = unicast_.insert(unicast_.end(), UnicastCount{tx.to});
  counted->bytes += tx.size;
  ++counted->datagrams;
  const auto to = node_of(tx.to);
  if (!to) {
    ++net_.dropped_no_route;
    return;
  }
  send_copy(from, *to, data, tx.size);
}

void Simulator::send_copy(std::size_t from, std::size_t to, const std::uint8_t* data,
                          std::size_t size) {
  const LinkModel& l = link(from, to);
  // Every copy draws its duplication, loss and reorder decisions whatever the outcome, so a
  // partition (decided without drawing) does not shift the draws of later datagrams.
  const bool duplicated = link_rng_.chance(l.duplicate);
  const int copies = duplicated ? 2 : 1;
  if (duplicated) ++net_.duplicated;
  const bool partitioned = cut(from, to, now_);
  for (int c = 0; c < copies; ++c) {
    const bool lost = link_rng_.chance(l.loss);
    Duration delay = l.delay + Duration{link_rng_.between(0, l.jitter.count())};
    if (link_rng_.chance(l.reorder)) {
      ++net_.reordered;
      delay += Duration{link_rng_.between(0, l.reorder_delay.count())};
    }
    if (partitioned) {
      ++net_.dropped_partition;
      continue;
    }
    if (lost) {
      ++net_.dropped_loss;
      continue;
    }
    Event ev;
    ev.time = now_ + delay;
    ev.kind = Event::Kind::arrival;
    ev.node = to;
    ev.from = from;
    ev.data.assign(data, data + size);
    ++in_flight_;
    push(std::move(ev));
  }
}

void Simulator::drain_transmits(std::size_t node) {
  Node& n = *nodes_[node];
  for (std::size_t i = 0;; ++i) {
    if (i == kMaxTransmitsPerDrain)
      fail_runtime("engine keeps producing datagrams (node " + std::to_string(node) +
                               ")");
    auto tx = n.engine->poll_transmit(now_, wall_now(node), tx_buffer_);
    if (!tx) break;
    if (tx->size > tx_buffer_.size())
      fail_runtime("engine reported a datagram larger than the buffer");
    send(node, *tx, tx_buffer_.data());
  }
}

void Simulator::drain_events(std::size_t node) {
  Node& n = *nodes_[node];
  n.dirty = false;
  for (std::size_t i = 0;; ++i) {
    if (i == kMaxEventsPerDrain)
      fail_runtime("engine keeps producing events (node " + std::to_string(node) + ")");
    auto ev = n.engine->poll_event();
    if (!ev) break;
    const std::uint32_t gen = n.generation;
    mix_event(node, gen, *ev);
    if (auto* m = std::get_if<MessageEvent>(&*ev)) {
      if (hooks_.on_message) hooks_.on_message(node, gen, *m, now_);
    } else if (auto* r = std::get_if<DeliveryReport>(&*ev)) {
      if (hooks_.on_report) hooks_.on_report(node, gen, *r, now_);
    } else if (auto* p = std::get_if<PeerEvent>(&*ev)) {
      if (hooks_.on_peer) hooks_.on_peer(node, gen, *p, now_);
    }
  }
}

void Simulator::rearm(std::size_t node, bool after_timeout) {
  Node& n = *nodes_[node];
  const auto d = n.engine->next_deadline();
  if (!d) {
    n.timer_at.reset();
    return;
  }
  Instant t = *d;
  if (t <= now_) {
    if (after_timeout) {
      // The engine says it is still due right after running its timers: step forward rather
      // than spin, and count it (a well-behaved engine never does this).
      ++net_.timer_stalls;
      t = now_ + Duration{1};
    } else {
      t = now_;
    }
  }
  if (n.timer_at && *n.timer_at == t) return;
  n.timer_at = t;
  Event ev;
  ev.time = t;
  ev.kind = Event::Kind::timer;
  ev.node = node;
  ev.generation = n.generation;
  push(std::move(ev));
}

void Simulator::flush(std::size_t node, bool after_timeout) {
  drain_transmits(node);
  drain_events(node);
  // Events handlers may have called the API; pick up what that produced.
  drain_transmits(node);
  rearm(node, after_timeout);
}

void Simulator::process_instant(Instant t) {
  now_ = t;
  std::vector<Event> batch;
  while (!queue_.empty() && queue_.front().time == t) {
    std::pop_heap(queue_.begin(), queue_.end(), Later{});
    batch.push_back(std::move(queue_.back()));
    queue_.pop_back();
  }
  std::vector<std::size_t> dirty;
  for (auto& ev : batch) {
    switch (ev.kind) {
      case Event::Kind::arrival: {
        --in_flight_;
        if (cut(ev.from, ev.node, now_)) {
          ++net_.dropped_partition;
          break;
        }
        Node& n = *nodes_[ev.node];
        ++net_.copies_delivered;
        n.engine->handle_datagram(endpoint(ev.from), ev.data, now_, wall_now(ev.node));
        drain_transmits(ev.node);
        if (!n.dirty) {
          n.dirty = true;
          dirty.push_back(ev.node);
        }
        break;
      }
      case Event::Kind::timer: {
        Node& n = *nodes_[ev.node];
        if (n.generation != ev.generation || !n.timer_at || *n.timer_at != t) break;
        n.timer_at.reset();
        ++net_.timer_fires;
        n.engine->handle_timeout(now_);
        flush(ev.node, true);
        break;
      }
      case Event::Kind::action:
        ev.action();
        break;
    }
  }
  for (std::size_t node : dirty) {
    if (!nodes_[node]->dirty) {  // already drained by a timer or action in this instant
      rearm(node, false);
      continue;
    }
    flush(node);
  }
}

void Simulator::run_until(Instant t) {
  while (!queue_.empty() && queue_.front().time <= t) process_instant(queue_.front().time);
  if (t > now_) now_ = t;
}

bool Simulator::run_until(const std::function<bool()>& done, Instant limit) {
  while (!done()) {
    if (queue_.empty() || queue_.front().time > limit) {
      if (limit > now_) now_ = limit;
      return done();
    }
    process_instant(queue_.front().time);
  }
  return true;
}

void Simulator::add_stats(EngineStats& into, const EngineStats& s) {
  into.datagrams_received += s.datagrams_received;
  into.datagrams_sent += s.datagrams_sent;
  into.messages_published += s.messages_published;
  into.messages_delivered += s.messages_delivered;
  into.retransmissions += s.retransmissions;
  into.duplicates_suppressed += s.duplicates_suppressed;
  into.dropped_total += s.dropped_total;
  for (std::size_t i = 0; i < into.dropped.size(); ++i) into.dropped[i] += s.dropped[i];
}

EngineStats Simulator::engine_stats_total() const {
  EngineStats total = retired_;
  for (const auto& n : nodes_) add_stats(total, n->engine->stats());
  return total;
}

}  // namespace nomq::sim
