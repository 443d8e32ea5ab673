// The library without sockets: engines pumped in memory, and the per-packet codec (seal/open).
// Together with the two-process figures they split a message's cost into crypto, engine and
// kernel/runtime. Also the scaling runs: 1..1000 subscribers, 10..10000 channels.
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include <memory>
#include <optional>
#include <unordered_map>

#include "nomq/engine.hpp"
#include "nomq/openssl_crypto.hpp"
#include "nomq/wire.hpp"
#include "perf/common.hpp"
#include "sim/same_clock.hpp"

namespace perf {
namespace {

using nomq::sim::wall_at;

nomq::Key key_of(std::uint8_t seed) {
  nomq::Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(seed + i);
  return k;
}

// A cheap timestamp for splitting time between engines: clock_gettime costs 70-80 ns on the
// VM this was written on (half of an engine call), the TSC read about 25 ns. Ticks; see
// ticks_per_ns().
inline std::int64_t ticks() noexcept {
#if defined(__x86_64__)
  return static_cast<std::int64_t>(__rdtsc());
#else
  return now_ns();
#endif
}

double ticks_per_ns() {
  static const double k = [] {
    const std::int64_t t0 = now_ns(), c0 = ticks();
    sleep_ms(50);
    return static_cast<double>(ticks() - c0) / static_cast<double>(now_ns() - t0);
  }();
  return k;
}

// The benchmark's one clock: engines are driven on it as both their monotonic and their wall
// clock (sim::wall_at), starting from the real time so that wire timestamps look real.
nomq::Instant wall_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return nomq::Instant{nomq::Duration{static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000}};
}

// A crypto backend that does no cryptography: CBC is a copy, MACs are zero, hashes are FNV-1a.
// It isolates the engine's own work (tables, queues, framing) from OpenSSL's. Never for use
// outside this benchmark.
class NullCrypto final : public nomq::CryptoRng {
 public:
  bool cbc_encrypt(const nomq::Iv&, nomq::Bytes in, nomq::MutableBytes out) noexcept override {
    std::memmove(out.data(), in.data(), in.size());
    return true;
  }
  bool cbc_decrypt(const nomq::Iv&, nomq::Bytes in, nomq::MutableBytes out) noexcept override {
    std::memmove(out.data(), in.data(), in.size());
    return true;
  }
  nomq::Digest hmac_sha256(nomq::Bytes) noexcept override { return {}; }
  nomq::Digest keyed_sha256(nomq::Bytes) noexcept override { return {}; }
  nomq::Digest sha256(nomq::Bytes data) noexcept override {
    std::uint64_t h = 1469598103934665603ull;
    for (auto b : data) h = (h ^ b) * 1099511628211ull;
    nomq::Digest d{};
    for (std::size_t i = 0; i < d.size(); ++i) {
      d[i] = static_cast<std::uint8_t>(h >> ((i % 8) * 8));
      if (i % 8 == 7) h = (h ^ i) * 1099511628211ull;
    }
    return d;
  }
  void random_bytes(nomq::MutableBytes out) noexcept override {
    for (auto& b : out) {
      state_ ^= state_ << 13;
      state_ ^= state_ >> 7;
      state_ ^= state_ << 17;
      b = static_cast<std::uint8_t>(state_);
    }
  }

 private:
  static inline std::uint64_t instances_ = 0;
  // Distinct per instance: engines draw their session ids from here.
  std::uint64_t state_ = 0x9E3779B97F4A7C15ull * (++instances_ * 2 + 1);
};

std::unique_ptr<nomq::CryptoRng> make_crypto(const std::string& kind) {
  if (kind == "null") return std::make_unique<NullCrypto>();
  auto c = nomq::OpenSslCrypto::create(key_of(1), key_of(101));
  if (!c) die("OpenSslCrypto::create");
  return std::move(c).value();
}

// Engines exchanging datagrams through memory. Node 0 publishes; group datagrams from node 0
// reach every other node, group datagrams from the others reach node 0 only (subscribers'
// announcements to each other play no part here and would cost N^2 at set-up).
class World {
 public:
  World(std::size_t nodes, const nomq::EngineConfig& pub_cfg, const nomq::EngineConfig& sub_cfg,
        const std::string& crypto)
      : now_(wall_now()), buf_(nomq::wire::kMaxDatagram) {
    for (std::size_t i = 0; i < nodes; ++i) {
      Node n;
      n.crypto = make_crypto(crypto);
      n.engine = std::make_unique<nomq::Engine>(
          nomq::Engine::create(i == 0 ? pub_cfg : sub_cfg, *n.crypto, *n.crypto, now_).value());
      n.ep = nomq::Endpoint::v4(127, 0, static_cast<std::uint8_t>(i >> 8),
                                static_cast<std::uint8_t>(i & 0xFF), 20000);
      by_addr_[key(n.ep)] = i;
      nodes_.push_back(std::move(n));
    }
    dirty_flag_.assign(nodes, false);
    for (std::size_t i = 0; i < nodes; ++i) mark(i);
  }

  nomq::Engine& engine(std::size_t i) { return *nodes_[i].engine; }
  const nomq::Endpoint& endpoint(std::size_t i) const { return nodes_[i].ep; }
  nomq::Instant now() const { return now_; }
  void advance(nomq::Duration d) { now_ += d; }
  void mark(std::size_t i) {
    if (!dirty_flag_[i]) {
      dirty_flag_[i] = true;
      dirty_.push_back(i);
    }
  }

  // Moves every queued datagram and event until nothing is left. Time spent inside engine 0
  // (the publisher) and inside the others is accumulated apart: with hundreds of engines in one
  // process the subscribers' share is inflated by cache misses no real deployment has (each
  // of them is a separate device), while the publisher's share is what must stay flat.
  void pump() {
    while (!dirty_.empty()) {
      const std::size_t i = dirty_.back();
      dirty_.pop_back();
      dirty_flag_[i] = false;
      nomq::Engine& e = *nodes_[i].engine;
      for (;;) {
        const std::int64_t t0 = stamp();
        auto tx = e.poll_transmit(now_, wall_at(now_), buf_);
        charge(i, t0);
        if (!tx) break;
        const nomq::Bytes data{buf_.data(), tx->size};
        if (tx->to_group) {
          if (i == 0) {
            for (std::size_t j = 1; j < nodes_.size(); ++j) deliver(i, j, data);
          } else {
            deliver(i, 0, data);
          }
        } else if (auto it = by_addr_.find(key(tx->to)); it != by_addr_.end()) {
          deliver(i, it->second, data);
        }
      }
      for (;;) {
        const std::int64_t t0 = stamp();
        auto ev = e.poll_event();
        charge(i, t0);
        if (!ev) break;
        if (std::holds_alternative<nomq::MessageEvent>(*ev)) {
          ++delivered;
        } else if (auto* r = std::get_if<nomq::DeliveryReport>(&*ev)) {
          ++reports;
          if (!r->all_acknowledged()) ++failed_reports;
        }
      }
    }
  }

  // With split on, time inside engine calls is charged to the publisher (engine 0) or the
  // subscribers; off, nothing is read (the headline per-message figures).
  bool split = false;
  std::int64_t stamp() const noexcept { return split ? ticks() : 0; }
  // Lets simulated time pass (start-up discovery: a QoS 1/2 group publish made within
  // discovery_period is held until the period ends), running every engine's timers.
  void settle(nomq::Duration d) {
    const nomq::Instant end = now_ + d;
    while (now_ < end) {
      now_ += std::chrono::milliseconds{5};
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (auto dl = nodes_[i].engine->next_deadline(); dl && *dl <= now_) {
          nodes_[i].engine->handle_timeout(now_);
          mark(i);
        }
      }
      pump();
    }
  }

  void charge(std::size_t node, std::int64_t since) noexcept {
    if (split) (node == 0 ? ticks_pub : ticks_sub) += ticks() - since;
  }
  double pub_ns() const { return static_cast<double>(ticks_pub) / ticks_per_ns(); }
  double sub_ns() const { return static_cast<double>(ticks_sub) / ticks_per_ns(); }

  std::int64_t ticks_pub = 0, ticks_sub = 0;
  std::int64_t delivered = 0, reports = 0, failed_reports = 0;

 private:
  struct Node {
    std::unique_ptr<nomq::CryptoRng> crypto;
    std::unique_ptr<nomq::Engine> engine;
    nomq::Endpoint ep;
  };
  static std::uint32_t key(const nomq::Endpoint& ep) {
    return static_cast<std::uint32_t>(ep.address[2]) << 8 | ep.address[3];
  }
  void deliver(std::size_t from, std::size_t to, nomq::Bytes data) {
    const std::int64_t t0 = stamp();
    nodes_[to].engine->handle_datagram(nodes_[from].ep, data, now_, wall_at(now_));
    charge(to, t0);
    mark(to);
  }

  nomq::Instant now_;
  std::vector<std::uint8_t> buf_;
  std::vector<Node> nodes_;
  std::unordered_map<std::uint32_t, std::size_t> by_addr_;
  std::vector<std::size_t> dirty_;
  std::vector<bool> dirty_flag_;
};

nomq::EngineConfig config_of(const Args& a) {
  nomq::EngineConfig c;
  c.wire = a.str("wire", "v2") == "v1" ? nomq::WireVersion::v1 : nomq::WireVersion::v2;
  return c;
}

// Publishes `count` messages one by one, pumping each to completion; returns ns per message.
double run_publishes(World& w, std::int64_t count, const std::vector<std::string>& channels,
                     const std::string& payload, const nomq::PublishOptions& po) {
  const std::int64_t t0 = now_ns();
  for (std::int64_t i = 0; i < count; ++i) {
    const std::string& ch = channels[static_cast<std::size_t>(i) % channels.size()];
    const std::int64_t p0 = w.stamp();
    auto r = w.engine(0).publish(ch, nomq::as_bytes(payload), po, w.now());
    w.charge(0, p0);
    if (!r) die(std::string{"engine publish: "} + std::string{r.error().message()});
    w.mark(0);
    w.pump();
    w.advance(std::chrono::microseconds{1});
  }
  return static_cast<double>(now_ns() - t0) / static_cast<double>(count);
}

}  // namespace

// One publisher engine, one subscriber engine: per-message cost of the whole exchange
// (publish, its acks/handshake, delivery, report), crypto included or not (--crypto null).
void engine_pair(const Args& a) {
  nomq::EngineConfig cfg = config_of(a);
  const auto qos = static_cast<nomq::Qos>(a.num("qos", 0));
  const auto size = static_cast<std::size_t>(a.num("size", 64));
  const std::int64_t count = a.num("count", 100000);
  const std::string crypto = a.str("crypto", "openssl");
  World w(2, cfg, cfg, crypto);
  const std::vector<std::string> channels{"bench/throughput"};
  if (!w.engine(1).subscribe(channels[0], 0, w.now())) die("subscribe");
  w.mark(1);
  w.pump();
  nomq::PublishOptions po;
  po.qos = qos;
  po.destination = w.endpoint(1);
  std::string payload;
  fill_payload(payload, size);
  run_publishes(w, count / 10, channels, payload, po);  // warm-up
  w.delivered = 0;
  const double ns = run_publishes(w, count, channels, payload, po);
  if (w.delivered != count || w.failed_reports != 0) die("engine pair lost messages");
  Result{}
      .set("bench", "engine_pair")
      .set("wire", a.str("wire", "v2"))
      .set("crypto", crypto)
      .set("qos", static_cast<double>(qos))
      .set("size", static_cast<double>(size))
      .set("ns_per_msg", ns)
      .set("msgs_per_s", 1e9 / ns)
      .set("state_bytes_default", static_cast<double>(w.engine(0).state_bytes()))
      .print();
}

// One publisher, --subs subscribers, all on one channel; the publisher learns them through
// discovery. Group publishes (QoS 0: one datagram for all; QoS 1/2: one per subscriber).
void engine_subscribers(const Args& a) {
  const auto subs = static_cast<std::size_t>(a.num("subs", 10));
  const auto qos = static_cast<nomq::Qos>(a.num("qos", 0));
  const std::int64_t count = a.num("count", 2000);
  nomq::EngineConfig pub = config_of(a), sub = config_of(a);
  pub.limits.max_peers = std::max(pub.limits.max_peers, subs + 8);
  pub.limits.max_peer_subscriptions = std::max(pub.limits.max_peer_subscriptions, subs + 8);
  pub.limits.max_senders = std::max(pub.limits.max_senders, subs + 8);
  pub.limits.max_outbox = std::max<std::size_t>(512, 2 * subs + 8);
  World w(subs + 1, pub, sub, a.str("crypto", "openssl"));
  const std::vector<std::string> channels{"bench/fanout"};
  for (std::size_t i = 1; i <= subs; ++i) {
    if (!w.engine(i).subscribe(channels[0], 0, w.now())) die("subscribe");
    w.mark(i);
  }
  w.pump();
  w.settle(pub.timers.discovery_period + std::chrono::milliseconds{500});
  nomq::PublishOptions po;
  po.qos = qos;
  std::string payload;
  fill_payload(payload, 64);
  run_publishes(w, std::max<std::int64_t>(1, count / 10), channels, payload, po);
  w.delivered = 0;
  w.ticks_pub = w.ticks_sub = 0;
  w.split = true;
  const double ns = run_publishes(w, count, channels, payload, po);
  const auto expected = count * static_cast<std::int64_t>(subs);
  if (w.delivered != expected || w.failed_reports != 0) die("fan-out lost messages");
  Result{}
      .set("bench", "engine_subs")
      .set("qos", static_cast<double>(qos))
      .set("subs", static_cast<double>(subs))
      .set("ns_per_msg", ns)
      .set("ns_per_delivery", ns / static_cast<double>(subs))
      .set("pub_ns_per_msg", w.pub_ns() / static_cast<double>(count))
      .set("pub_ns_per_delivery", w.pub_ns() / static_cast<double>(expected))
      .set("sub_ns_per_delivery", w.sub_ns() / static_cast<double>(expected))
      .set("deliveries_per_s", 1e9 / ns * static_cast<double>(subs))
      .set("pub_state_bytes", static_cast<double>(w.engine(0).state_bytes()))
      .set("sub_state_bytes", static_cast<double>(w.engine(1).state_bytes()))
      .set("process_peak_rss_kib", static_cast<double>(peak_rss_kib()))
      .print();
}

// One publisher, one subscriber following --channels channels; messages go round robin over
// all of them (each lookup lands on a different table entry).
void engine_channels(const Args& a) {
  const auto nch = static_cast<std::size_t>(a.num("channels", 10));
  const auto qos = static_cast<nomq::Qos>(a.num("qos", 0));
  const std::int64_t count = a.num("count", 50000);
  nomq::EngineConfig pub = config_of(a), sub = config_of(a);
  sub.limits.max_channels = std::max(sub.limits.max_channels, nch);
  sub.limits.max_outbox = std::max<std::size_t>(512, nch + 8);
  pub.limits.max_peer_subscriptions = std::max(pub.limits.max_peer_subscriptions, nch + 8);
  World w(2, pub, sub, a.str("crypto", "openssl"));
  std::vector<std::string> channels;
  for (std::size_t i = 0; i < nch; ++i) {
    channels.push_back("plant/line" + std::to_string(i % 97) + "/sensor" + std::to_string(i));
    if (!w.engine(1).subscribe(channels.back(), 0, w.now())) die("subscribe");
  }
  w.mark(1);
  w.pump();
  w.settle(pub.timers.discovery_period + std::chrono::milliseconds{500});
  nomq::PublishOptions po;
  po.qos = qos;
  std::string payload;
  fill_payload(payload, 64);
  run_publishes(w, count / 10, channels, payload, po);
  w.delivered = 0;
  w.ticks_pub = w.ticks_sub = 0;
  w.split = true;
  const double ns = run_publishes(w, count, channels, payload, po);
  if (w.delivered != count || w.failed_reports != 0) die("channel run lost messages");
  Result{}
      .set("bench", "engine_channels")
      .set("qos", static_cast<double>(qos))
      .set("channels", static_cast<double>(nch))
      .set("ns_per_msg", ns)
      .set("pub_ns_per_msg", w.pub_ns() / static_cast<double>(count))
      .set("sub_ns_per_msg", w.sub_ns() / static_cast<double>(count))
      .set("pub_state_bytes", static_cast<double>(w.engine(0).state_bytes()))
      .set("sub_state_bytes", static_cast<double>(w.engine(1).state_bytes()))
      .set("process_peak_rss_kib", static_cast<double>(peak_rss_kib()))
      .print();
}

// The codec alone with OpenSSL: encode (pad, encrypt, MAC, random IV drawn by the caller as
// the engine does) and decode (MAC check, decrypt, unpad, parse) of one PUBLISH.
void crypto_packet(const Args& a) {
  const auto size = static_cast<std::size_t>(a.num("size", 64));
  const std::int64_t count = a.num("count", 200000);
  const bool v1 = a.str("wire", "v2") == "v1";
  auto crypto = make_crypto(a.str("crypto", "openssl"));
  std::string payload;
  fill_payload(payload, size);
  const std::string channel = "bench/throughput";
  const nomq::Instant now = wall_now();
  nomq::wire::Packet p;
  p.version = v1 ? nomq::WireVersion::v1 : nomq::WireVersion::v2;
  p.type = nomq::wire::PacketType::publish;
  p.flags = nomq::wire::publish_flags(1, false, 0);
  p.session_id = 0x12345678;
  p.ttl = 3600;
  p.timestamp = nomq::wire_seconds(wall_at(now), 0);
  p.channel_id = nomq::wire::channel_id(*crypto, channel);
  p.body.channel = channel;
  p.body.message = nomq::as_bytes(payload);
  p.body.message_id = 7;
  if (v1) {
    p.packet_id = 7;
    p.body.inner_timestamp = p.timestamp;
  }
  std::vector<std::uint8_t> out(nomq::wire::kMaxDatagram), scratch(nomq::wire::kMaxDatagram);
  std::size_t len = 0;
  const std::int64_t t0 = now_ns();
  for (std::int64_t i = 0; i < count; ++i) {
    crypto->random_bytes(p.iv);
    if (!v1) p.packet_id = static_cast<std::uint32_t>(i);
    auto r = nomq::wire::encode(p, *crypto, out);
    if (!r) die("encode");
    len = *r;
  }
  const std::int64_t t1 = now_ns();
  nomq::wire::DecodeOptions opt;
  opt.version = p.version;
  opt.wall = wall_at(now);
  for (std::int64_t i = 0; i < count; ++i) {
    auto r = nomq::wire::decode(nomq::Bytes{out.data(), len}, *crypto, opt, scratch);
    if (!r) die(std::string{"decode: "} + std::string{r.error().message()});
  }
  const std::int64_t t2 = now_ns();
  Result{}
      .set("bench", "codec")
      .set("wire", v1 ? "v1" : "v2")
      .set("size", static_cast<double>(size))
      .set("datagram_bytes", static_cast<double>(len))
      .set("seal_ns", static_cast<double>(t1 - t0) / static_cast<double>(count))
      .set("open_ns", static_cast<double>(t2 - t1) / static_cast<double>(count))
      .print();
}

}  // namespace perf
