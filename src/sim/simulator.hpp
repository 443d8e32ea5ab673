// A deterministic discrete-event network simulator for NoMQ engines.
//
// N engines run in virtual time (no clock, no socket, no thread). now() is the monotonic
// instant every engine's timers see; each node also has a wall clock (wall_now(node)), which
// runs with virtual time from Options::wall_start and which a test can step per node, as NTP or
// a manual correction does to a real device's clock. Datagrams
// travel over links with a delay, jitter, loss, duplication and reordering drawn from one seeded
// PRNG; partitions cut chosen nodes off for a time window. Node i has the simulated unicast
// endpoint 192.0.2.(i+1):port (TEST-NET-1, RFC 5737: documentation only, never a real socket).
// A group transmit reaches every other node, each over its own link draw.
//
// How the engines are driven (what a runtime must do too): after every input (datagram, timer,
// API call) the simulator drains poll_transmit() into the network; events are polled after the
// input, except that datagrams arriving at one node at the same virtual instant are fed as one
// batch before the events are polled (as a runtime reading several datagrams per wakeup does),
// which is what lets the engine order a burst by priority. The timer is re-armed at
// next_deadline() after each drain.
//
// Same options, same calls -> the same run, datagram for datagram.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nomq/engine.hpp"
#include "sim/prng.hpp"
#include "sim/seeded_rng.hpp"

namespace nomq::sim {

// One direction of a link. Each copy of a datagram is lost with probability `loss`; a datagram
// is duplicated (a second, independently delayed copy) with probability `duplicate`; a copy is
// held back by an extra uniform [0, reorder_delay] with probability `reorder`, so that later
// datagrams overtake it. Delay of a copy: delay + uniform [0, jitter].
struct LinkModel {
  Duration delay = std::chrono::milliseconds(5);
  Duration jitter = Duration{0};
  double loss = 0.0;
  double duplicate = 0.0;
  double reorder = 0.0;
  Duration reorder_delay = std::chrono::milliseconds(50);
};

// During [start, end) the `nodes` are cut off from every node outside the set (in both
// directions; the set can still talk among itself). A datagram is dropped if the cut holds when
// it is sent or when it would arrive.
struct Partition {
  Instant start{};
  Instant end{};
  std::vector<std::size_t> nodes;
};

struct NetworkStats {
  std::uint64_t datagrams_sent = 0;      // Transmits polled from engines
  std::uint64_t bytes_sent = 0;
  std::uint64_t group_sends = 0;         // of which to the group
  std::uint64_t copies_delivered = 0;    // datagrams handed to an engine
  std::uint64_t dropped_loss = 0;
  std::uint64_t dropped_partition = 0;
  std::uint64_t dropped_no_route = 0;    // unicast to an endpoint no node has
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t timer_stalls = 0;        // next_deadline() still due right after handle_timeout()
  std::uint64_t timer_fires = 0;
};

// Called for each event an engine produces. `generation` counts the node's restarts (its
// sessions): 0 for the first engine.
struct SimHooks {
  std::function<void(std::size_t node, std::uint32_t generation, const MessageEvent&, Instant)> on_message;
  std::function<void(std::size_t node, std::uint32_t generation, const DeliveryReport&, Instant)> on_report;
  std::function<void(std::size_t node, std::uint32_t generation, const PeerEvent&, Instant)> on_peer;
  // Every datagram an engine transmits, before the links see it (what an eavesdropper on the
  // sender's segment captures).
  std::function<void(std::size_t node, const Transmit&, Bytes datagram, Instant)> on_transmit;
};

class Simulator {
 public:
  struct Options {
    std::uint64_t seed = 1;
    LinkModel link;                       // every directed link unless overridden
    // The monotonic origin and every node's wall clock at that moment (2026-01-01T00:00:00Z).
    // Equal by default, so a run's trace reads as wall-clock times.
    Instant start{std::chrono::seconds(1767225600)};
    WallTime wall_start{std::chrono::seconds(1767225600)};
    std::uint16_t port = 4700;            // every node's simulated unicast port
    bool group_loopback = false;          // a group transmit also reaches its sender
    Key encryption_key{};                 // shared network keys; derived from the seed if zero
    Key hmac_key{};
  };

  explicit Simulator(Options options);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Adds a node running a fresh engine built from `config` at now(). Returns its index.
  // Throws std::runtime_error if the crypto backend cannot be created or there are > 250 nodes.
  std::size_t add_node(const EngineConfig& config);
  std::size_t node_count() const noexcept { return nodes_.size(); }

  // The node's current engine (valid until restart()). Use the wrappers below for API calls
  // so that the simulator drains the engine afterwards.
  Engine& engine(std::size_t node);
  const Engine& engine(std::size_t node) const;
  std::uint32_t generation(std::size_t node) const;
  Endpoint endpoint(std::size_t node) const noexcept;
  std::optional<std::size_t> node_of(const Endpoint& e) const noexcept;

  Result<void> subscribe(std::size_t node, std::string_view channel, std::uint8_t priority = 0);
  Result<void> unsubscribe(std::size_t node, std::string_view channel);
  Result<MessageId> publish(std::size_t node, std::string_view channel, Bytes message,
                            const PublishOptions& options);
  // Engine::rotate_keys on the node now (the new session's announcements leave at once).
  Result<void> rotate_keys(std::size_t node, Crypto& next, std::uint32_t epoch,
                           const KeyRotation& when);
  // Engine::add_channel_key on the node now (re-announced subscriptions leave at once).
  Result<void> add_channel_key(std::size_t node, std::string_view pattern, Crypto& keys);
  // Crash and restart: the engine is destroyed without close() (its pending publishes vanish
  // with it, as in a power cut) and a new one, a new session, starts with the same config and
  // endpoint. Datagrams in flight to the endpoint reach the new engine.
  void restart(std::size_t node);
  // Graceful stop of the current engine: close() (reports for pending publishes, unsubscribes).
  void close(std::size_t node);

  // Hands `datagram` to `node` now, as if it came from `from`: any address, one no node has
  // included (a spoofed source, or a key holder's own crafted traffic). The node's answers to
  // an address no node has are counted in bytes_sent_to() and go nowhere (dropped_no_route).
  void inject(std::size_t node, const Endpoint& from, Bytes datagram);
  // Unicast bytes and datagrams the engines sent to `to` so far (routed or not).
  std::uint64_t bytes_sent_to(const Endpoint& to) const noexcept;
  std::uint64_t datagrams_sent_to(const Endpoint& to) const noexcept;
  // The options in use (the network keys included, so a test can seal its own datagrams).
  const Options& options() const noexcept { return options_; }

  void set_link(std::size_t from, std::size_t to, const LinkModel& model);
  void add_partition(Partition p);

  // Runs `action` at virtual time t (>= now()). Actions at the same instant run in the order
  // they were scheduled.
  void at(Instant t, std::function<void()> action);

  // Processes every event up to and including time t, then sets now() = t.
  void run_until(Instant t);
  // Runs until `done()` holds (checked after each instant) or time `limit`. Returns done().
  bool run_until(const std::function<bool()>& done, Instant limit);

  Instant now() const noexcept { return now_; }
  // Node's wall clock: wall_start + (now() - start) + every step applied to it so far.
  WallTime wall_now(std::size_t node) const;
  // Steps the node's wall clock by `by` (negative: backwards) from now on; its monotonic clock
  // and every timer are unaffected. Persists across restart() (it is the device's clock).
  void step_wall_clock(std::size_t node, Duration by);
  // Sets the node's wall clock to `to` (e.g. 2000-01-01, an ESP32 before NTP).
  void set_wall_clock(std::size_t node, WallTime to);
  bool datagrams_in_flight() const noexcept { return in_flight_ > 0; }
  const NetworkStats& network_stats() const noexcept { return net_; }
  // Sum over every engine this simulator ran, retired sessions included.
  EngineStats engine_stats_total() const;
  void set_hooks(SimHooks hooks) { hooks_ = std::move(hooks); }
  // FNV-1a (64-bit) over the run so far, in order: every datagram an engine transmitted (the
  // virtual time, the sender, the destination, the bytes) and every event an engine produced
  // (node, session generation, and the event's fields). Two runs with the same digest sent the
  // same bytes at the same instants and told their applications the same things: how the run on
  // a microcontroller (tests/mcu/sim_compare.cpp, under qemu) is compared with the host's.
  std::uint64_t trace_digest() const noexcept { return digest_; }

 private:
  struct Node;
  struct Event;
  void push(Event ev);
  void send(std::size_t from, const Transmit& tx, const std::uint8_t* data);
  void send_copy(std::size_t from, std::size_t to, const std::uint8_t* data, std::size_t size);
  bool cut(std::size_t a, std::size_t b, Instant t) const noexcept;
  void drain_transmits(std::size_t node);
  void drain_events(std::size_t node);
  void rearm(std::size_t node, bool after_timeout);
  void flush(std::size_t node, bool after_timeout = false);
  void process_instant(Instant t);
  const LinkModel& link(std::size_t from, std::size_t to) const;
  static void add_stats(EngineStats& into, const EngineStats& s);
  std::unique_ptr<Engine> make_engine(Node& n);

  Options options_;
  Prng link_rng_;
  Instant now_;
  std::uint64_t next_seq_ = 0;
  std::uint64_t in_flight_ = 0;
  std::vector<Event> queue_;  // binary heap ordered by (time, seq)
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<std::pair<std::size_t, std::size_t>, LinkModel> link_overrides_;
  std::vector<Partition> partitions_;
  NetworkStats net_;
  EngineStats retired_;
  SimHooks hooks_;
  std::vector<std::uint8_t> tx_buffer_;
  std::uint64_t digest_ = 0xcbf29ce484222325ull;  // FNV-1a offset basis
  void mix(const void* data, std::size_t size) noexcept;
  void mix_u64(std::uint64_t v) noexcept;
  void mix_endpoint(const Endpoint& e) noexcept;
  void mix_event(std::size_t node, std::uint32_t generation, const nomq::Event& ev) noexcept;
  struct UnicastCount {
    Endpoint to;
    std::uint64_t bytes = 0;
    std::uint64_t datagrams = 0;
  };
  std::vector<UnicastCount> unicast_;
};

}  // namespace nomq::sim
