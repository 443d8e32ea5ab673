// libFuzzer target: the engine driven by a script. The input is a wire-version byte followed by
// ops (op byte % kOpCount, then that op's argument bytes; reads past the end yield zero):
//
//   0 AUTH      a datagram built and sealed here with the fixed keys, from one of four peers:
//               type flags peer seq channel ttl ts_offset id_sel acked_sel len message... hold
//               (keyed mode: channel bit 6 seals with the channel key instead of the group's,
//               bit 5 puts the other set's channel id in the header)
//   1 RAW       raw bytes: len_hi len_lo bytes...
//   2 ADVANCE   time step: b<128: b*10 ms; b<200: (b-127) s; else (b-199) min; then timers
//   3 SUBSCRIBE channel priority
//   4 UNSUB     channel
//   5 PUBLISH   channel qos opts ttl priority len message...
//   6 POLL      drain datagrams to send, run timers
//   7 REPLAY    idx: re-deliver a datagram delivered earlier, byte for byte
//   8 ECHO      idx peer: feed a datagram the engine sent back to it, as if from a peer
//   9 RESTART   peer: the peer takes its other session id (at most 8 sessions in all)
//  10 TAMPER    idx pos_hi pos_lo xor: re-deliver an earlier datagram with one byte changed
//  11 CLOSE
//  12 RESPOND   peer: the peer answers the engine's last tracked datagram (ACK / PUBREC for a
//               QoS 1/2 PUBLISH, PUBCOMP for a PUBREL) as an honest peer would
//  13 IMPERSONATE peer type jump: a key holder at the peer's address sends a datagram under the
//               engine's own session id with a sequence number the engine never sent
//
// The first byte selects the mode: bits 0..2 == 7 is wire v1; otherwise v2, and bit 3 set gives
// the engine a channel key for "plant/#" (docs/protocol.md §14.4), so that kChannels[2] is a
// channel-keyed channel: its id is the keyed tag, the engine seals its own traffic on it with the
// channel key and refuses group-sealed datagrams on it.
//
// Authentic datagrams reach every engine state; the checks below are the invariants that hold
// whatever the script (see docs/security.md, "Fuzzing"):
//  - no crash, no sanitizer report, no exception;
//  - stats: dropped_total is the sum of the per-reason counters; pending_count() <= max_pending;
//  - a datagram that cannot be authentic (RAW, TAMPER with a non-zero xor) is counted as exactly
//    one drop and delivers nothing;
//  - channel keys (v2): a datagram carrying the channel-key mark but sealed with the group's
//    keys is dropped as no_channel_key; one sealed with the channel key but unmarked is one drop
//    (bad_mac); in keyed mode a group-sealed datagram delivers nothing on the keyed channel; every
//    datagram the engine emits decodes with the keys its mark names;
//  - v2: a byte-identical replay of a datagram that passed the replay check is dropped as
//    replayed / replay_window_old / stale_timestamp, and delivers nothing;
//  - a datagram stamped outside the timestamp window is dropped as stale_timestamp;
//  - every datagram the engine emits fits kMaxDatagram and decodes with the group keys;
//  - every message delivered is on a subscribable channel and within max_message_size;
//  - every accepted QoS 1/2 publish ends with exactly one DeliveryReport (its own id and QoS,
//    a documented reason) once its TTL has passed and timers ran, or at close(); no report for
//    anything else;
//  - amplification (v2, docs/engine.md §17): what the engine sends unicast to a peer's address
//    (every datagram but the authentication-failure probe, which has its own bound) stays
//    <= 3 x the bytes that address sent it, until the application addressed that peer itself
//    (a publish with a destination vouches for it) or the address answered a reachability
//    challenge; the harness counts every byte it handed over from the address, the engine only
//    the authentic ones, so this bound is the looser;
//  - verification (v2): the engine counts an endpoint verified only on a HEARTBEAT echo response
//    from that address carrying a token the engine sent to that same address in a challenge
//    (a peer can come by a valid response through ECHO/REPLAY: the engine, once it has renewed
//    its session, answers its own earlier challenge when a peer feeds it back);
//  - impersonation (v2, issue 13 M2): a datagram under the engine's own session id with a
//    sequence number it never sent is dropped as own_packet, delivers nothing, is counted in
//    impersonations_detected, raises PeerEvent::impersonation and renews the session at once
//    (unless closed).
//
// Limits: the engine runs with tiny tables (4 pending, 3 channels, 8 inbox, 16 outbox, 2+3
// retained, 16 v1 nonces, 3 sender windows for the 8 sessions the peers can use...), so that a
// short script fills them: full tables, eviction and queue_full / sender_table_full paths are
// reached often, and building an engine per input is cheap. The small sender table puts the
// replay invariant above to work across evictions: the engine evicts a sender's window only
// once its newest timestamp has left the window (docs/security.md, section 2), so a replay of
// an evicted sender's datagram must still be dropped, as stale_timestamp.
//
// Speed (every input builds a fresh engine, so that a run is a pure function of its input):
// the OpenSSL contexts, the channel ids and the harness's buffers live across inputs; the
// rings of earlier datagrams are fixed arrays and the tracked-publish list keeps its capacity,
// so the harness allocates nothing per op and the only per-input allocations are the engine's
// own tables, freed at the end of the input. The PRNG and the counter sums are not coverage
// instrumented (NOMQ_FUZZ_NO_COVERAGE). Before/after figures: docs/security.md, "Fuzzing".
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz_support.hpp"
#include "nomq/engine.hpp"
#include "nomq/wire.hpp"

namespace {

using namespace nomq;
using wire::PacketType;
using fuzz::wall_at;

constexpr int kOpCount = 14;
constexpr std::size_t kPeers = 4;
constexpr std::array<std::string_view, 5> kChannels = {"a", "sensors/temp", "plant/line1/t",
                                                       "x/y/z", "never/subscribed"};
constexpr std::size_t kSubscribable = 4;  // kChannels[4] is never subscribed
constexpr std::size_t kRing = 16;
constexpr std::size_t kKeyedChannel = 2;  // "plant/line1/t", under "plant/#" in keyed mode
constexpr std::string_view kChannelKeyPattern = "plant/#";

struct Record {
  std::array<std::uint8_t, wire::kMaxDatagram> bytes;
  std::size_t size = 0;
  bool passed_replay_check = false;  // v2: its first delivery got past the replay window
  Bytes view() const noexcept { return Bytes{bytes.data(), size}; }
};

// The last kRing datagrams, oldest first; pushing onto a full ring drops the oldest.
class Ring {
 public:
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  void clear() noexcept { head_ = count_ = 0; }
  const Record& operator[](std::size_t i) const noexcept { return slots_[(head_ + i) % kRing]; }
  const Record& newest(std::size_t back) const noexcept { return (*this)[count_ - 1 - back]; }
  Record& push(Bytes d) noexcept {
    if (count_ == kRing) {
      head_ = (head_ + 1) % kRing;
      --count_;
    }
    Record& r = slots_[(head_ + count_) % kRing];
    ++count_;
    std::memcpy(r.bytes.data(), d.data(), d.size());
    r.size = d.size();
    r.passed_replay_check = false;
    return r;
  }

 private:
  std::array<Record, kRing> slots_{};
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

struct Tracked {
  MessageId id = 0;
  Qos qos = Qos::at_least_once;
  Instant deadline{};  // publish time + TTL
  int reports = 0;
};

// The Errc values that mean "rejected before the replay window accepted it".
bool pre_accept(Errc e) {
  const auto v = static_cast<std::uint8_t>(e);
  return (v >= static_cast<std::uint8_t>(Errc::too_short) &&
          v <= static_cast<std::uint8_t>(Errc::bad_body)) ||
         e == Errc::replayed || e == Errc::replay_window_old || e == Errc::own_packet ||
         e == Errc::sender_table_full || e == Errc::wrong_wire_version ||
         e == Errc::future_timestamp || e == Errc::sender_quota || e == Errc::old_key_epoch ||
         e == Errc::unknown_key_epoch || e == Errc::sender_unverified || e == Errc::no_channel_key ||
         e == Errc::wrong_channel_key;
}

// The drops counted under a pre-accept reason between two snapshots. The reasons are listed
// once: testing every Errc per datagram was a hot spot.
NOMQ_FUZZ_NO_COVERAGE std::uint64_t pre_accept_delta(const EngineStats& before,
                                                     const EngineStats& after) {
  static const auto reasons = [] {
    std::array<std::uint8_t, kErrcCount> list{};
    std::size_t n = 0;
    for (std::size_t e = 0; e < kErrcCount; ++e) {
      if (pre_accept(static_cast<Errc>(e))) list[n++] = static_cast<std::uint8_t>(e);
    }
    return std::pair{list, n};
  }();
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < reasons.second; ++i) {
    const std::size_t e = reasons.first[i];
    sum += after.dropped[e] - before.dropped[e];
  }
  return sum;
}

NOMQ_FUZZ_NO_COVERAGE std::uint64_t sum_dropped(const EngineStats& s) {
  std::uint64_t sum = 0;
  for (const auto v : s.dropped) sum += v;
  return sum;
}

class Harness {
 public:
  // One harness lives across inputs (its buffers are reused); reset() starts an input from
  // scratch: a fresh engine, fresh peers, empty rings. `crypto` is shared across inputs
  // (setting up OpenSSL contexts per input would dominate the run time); it is reseeded here,
  // so each input still sees the same random stream. `ids`: channel_id() of kChannels under
  // `crypto`'s keys.
  // `chan`: the channel key set and `chan_ids` the channel ids under it, when the input runs in
  // keyed mode (v2 only), else null.
  void reset(WireVersion version, fuzz::FuzzCrypto& crypto,
             const std::array<wire::ChannelId, kChannels.size()>& ids, std::uint64_t seed,
             fuzz::FuzzCrypto* chan, const std::array<wire::ChannelId, kChannels.size()>* chan_ids) {
    version_ = version;
    crypto_ = &crypto;
    chan_ = chan;
    if (chan_ids != nullptr) chan_ids_ = *chan_ids;
    now_ = Instant{std::chrono::seconds(fuzz::kCorpusTime)};
    crypto_->reseed(seed);
    cfg_ = EngineConfig{};
    cfg_.wire = version;
    cfg_.default_ttl_s = 60;
    cfg_.v1_nonce_cache = 16;
    auto& l = cfg_.limits;
    l.max_pending = 4;
    l.max_channels = 3;
    l.max_message_size = 64;
    l.max_retained_per_channel = 2;
    l.max_retained_channels = 3;
    l.max_peers = 4;
    l.max_peer_subscriptions = 8;
    l.max_senders = 6;  // fewer than the 2 * kPeers sessions: eviction and sender_table_full;
                        // 3 of them for unverified endpoints (sender_unverified)
    l.max_inbound_qos = 8;
    l.max_inbox = 8;
    l.max_outbox = 16;
    l.max_queued_messages = 4;
    engine_.emplace(Engine::create(cfg_, crypto_->crypto(), crypto_->rng(), now_).value());
    if (chan_ != nullptr) {
      NOMQ_FUZZ_CHECK(engine_->add_channel_key(kChannelKeyPattern, chan_->crypto(), now_).ok());
    }
    for (std::size_t i = 0; i < kPeers; ++i) {
      peers_[i] = Peer{};
      peers_[i].ep = Endpoint::v4(127, 0, 0, static_cast<std::uint8_t>(2 + i),
                                  static_cast<std::uint16_t>(40000 + i));
      peers_[i].session[0] = 0x51000000u + static_cast<std::uint32_t>(i);
      peers_[i].session[1] = 0x52000000u + static_cast<std::uint32_t>(i);
    }
    ids_ = ids;
    bytes_in_.fill(0);
    bytes_out_.fill(0);
    vouched_.fill(false);
    verified_.fill(false);
    tokens_ = {};
    token_count_.fill(0);
    impersonation_events_ = 0;
    closed_ = false;
    sent_.clear();
    emitted_.clear();
    our_ids_.clear();
    peer_ids_.clear();
    tracked_.clear();
    delivered_ = 0;
    keyed_delivered_ = 0;
    reports_.fill(0);
    // Zeroed as a fresh harness's were, so that a run never depends on the input before it.
    scratch_.fill(0);
    seal_buf_.fill(0);
    copy_buf_.fill(0);
    tx_buf_.fill(0);
  }

  // Ends the input: the engine's tables are freed within the run, as libFuzzer's leak check
  // expects of an input that leaks nothing.
  void release() { engine_.reset(); }

  void run(fuzz::Reader& in) {
    int steps = 0;
    while (!in.empty() && steps++ < 2000) {
      const int op = in.u8() % kOpCount;
      switch (op) {
        case 0: op_auth(in); break;
        case 1: op_raw(in); break;
        case 2: op_advance(in); break;
        case 3: {
          const auto& ch = kChannels[in.u8() % kSubscribable];
          (void)engine_->subscribe(ch, static_cast<std::uint8_t>(in.u8() % 16), now_);
          drain_events();
          break;
        }
        case 4:
          (void)engine_->unsubscribe(kChannels[in.u8() % kSubscribable], now_);
          drain_events();
          break;
        case 5: op_publish(in); break;
        case 6:
          drain_transmits();
          run_timers();
          break;
        case 7: op_replay(in); break;
        case 8: op_echo(in); break;
        case 9: {
          Peer& p = peers_[in.u8() % kPeers];
          p.current ^= 1;
          p.seq = 0;
          break;
        }
        case 10: op_tamper(in); break;
        case 11:
          closed_ = true;
          engine_->close(now_);
          drain_events();
          for (const Tracked& t : tracked_) NOMQ_FUZZ_CHECK(t.reports == 1);
          break;
        case 12: op_respond(in); break;
        case 13: op_impersonate(in); break;
        default: break;
      }
      check_stats();
    }
    finish();
  }

 private:
  struct Peer {
    Endpoint ep;
    std::array<std::uint32_t, 2> session{};
    int current = 0;
    std::uint32_t seq = 0;
    std::uint32_t sid() const { return session[static_cast<std::size_t>(current)]; }
  };

  // --- building authentic datagrams

  // Encodes into seal_buf_ with the group's keys, or the channel key's when `with_channel_key`;
  // an empty view if encode refused the packet.
  Bytes seal(const wire::Packet& p, bool with_channel_key = false) {
    Crypto& keys = with_channel_key ? chan_->crypto() : crypto_->crypto();
    const Result<std::size_t> n = wire::encode(p, keys, seal_buf_);
    if (!n.ok()) return {};
    return Bytes{seal_buf_.data(), *n};
  }

  wire::Packet header(PacketType type, Peer& peer) {
    wire::Packet p;
    p.version = version_;
    p.type = type;
    p.session_id = peer.sid();
    p.packet_id = ++peer.seq;
    p.ttl = 60;
    crypto_->rng().random_bytes(p.iv);
    p.timestamp = wire_seconds(wall_at(now_), cfg_.epoch_offset);
    return p;
  }

  void op_auth(fuzz::Reader& in) {
    const auto type = static_cast<PacketType>(1 + in.u8() % 8);
    const std::uint8_t flags = in.u8();
    Peer& peer = peers_[in.u8() % kPeers];
    const std::uint8_t seq_sel = in.u8();
    const std::uint8_t chan = in.u8();
    const std::uint8_t ttl = in.u8();
    const auto ts_off = static_cast<std::int8_t>(in.u8());
    const std::uint8_t id_sel = in.u8();
    const std::uint8_t acked_sel = in.u8();
    const std::uint32_t acked_raw = acked_sel % 3 == 2 ? in.u32() : 0;
    const Bytes raw_msg = in.take(in.u8() % 65);
    const bool hold = (in.u8() & 1) != 0;

    wire::Packet p = header(type, peer);
    if (seq_sel >= 240) {
      peer.seq += static_cast<std::uint32_t>(seq_sel - 239) * 600;  // jump past the window
      p.packet_id = peer.seq;
    } else if (seq_sel >= 200) {
      p.packet_id = peer.seq - static_cast<std::uint32_t>(seq_sel - 200);  // old or repeated
    }
    p.flags = flags;
    p.ttl = ttl;
    const int off = std::clamp<int>(ts_off, -60, 60);
    p.timestamp = static_cast<std::uint32_t>(static_cast<std::int64_t>(p.timestamp) + off);
    const std::size_t c = (chan & 0x1F) % kChannels.size();
    const bool with_channel_key = chan_ != nullptr && (chan & 0x40) != 0;
    // Bit 5 swaps the id: a group-sealed datagram under the keyed id (captured off the air by a
    // member without the channel key), or a channel-sealed one under the group's id.
    const bool keyed_id = with_channel_key != (chan_ != nullptr && (chan & 0x20) != 0);
    if (type != PacketType::heartbeat) p.channel_id = keyed_id ? chan_ids_[c] : ids_[c];
    if ((chan & 0x80) != 0) p.channel_id[0] ^= 0x01;  // name and id disagree: bad_body (v2)
    p.body.channel = kChannels[c];
    p.body.message_id = id_sel >= 240 && !our_ids_.empty()
                            ? our_ids_[id_sel % our_ids_.size()]
                            : 1u + id_sel % 16;
    p.body.inner_timestamp = p.timestamp;
    p.body.v1_layout = (flags & 0x08) != 0 ? wire::V1Layout::device16 : wire::V1Layout::gap20;
    if (acked_sel % 3 == 0 && !our_ids_.empty()) {
      p.body.acked_id = our_ids_[(acked_sel / 3) % our_ids_.size()];
    } else if (acked_sel % 3 == 1 && !peer_ids_.empty()) {
      p.body.acked_id = peer_ids_[(acked_sel / 3) % peer_ids_.size()];
    } else {
      p.body.acked_id = acked_raw;
    }
    std::array<std::uint8_t, 64> msg{};
    for (std::size_t i = 0; i < raw_msg.size(); ++i) {
      // v1 encode refuses non-UTF-8 (no original receiver accepts it): keep it ASCII there.
      msg[i] = version_ == WireVersion::v1 ? static_cast<std::uint8_t>(0x20 + raw_msg[i] % 0x5F)
                                           : raw_msg[i];
    }
    p.body.message = Bytes{msg.data(), raw_msg.size()};
    if (type == PacketType::publish) {
      remember(peer_ids_, version_ == WireVersion::v2 ? p.body.message_id : p.packet_id);
    }
    const Bytes d = seal(p, with_channel_key);
    if (d.empty()) return;
    const bool stale = std::abs(off) > static_cast<int>(cfg_.timestamp_window_s);
    const bool marked = version_ == WireVersion::v2 && wire::flags_channel_key(type, p.flags);
    if (with_channel_key && !marked) {
      deliver_forged(peer.ep, d);  // the group's MAC check fails: bad_mac
      return;
    }
    drain_events();  // what earlier held datagrams delivered is not this one's
    const int keyed_before = keyed_delivered_;
    deliver_new(peer.ep, d, hold, stale, marked && !with_channel_key);
    // Nothing sealed with the group's keys is delivered on the channel-keyed channel.
    if (chan_ != nullptr && !with_channel_key && !hold) {
      NOMQ_FUZZ_CHECK(keyed_delivered_ == keyed_before);
    }
  }

  // The last four ids (oldest first).
  struct Ids {
    std::array<MessageId, 4> v{};
    std::size_t n = 0;
    bool empty() const noexcept { return n == 0; }
    std::size_t size() const noexcept { return n; }
    void clear() noexcept { n = 0; }
    MessageId operator[](std::size_t i) const noexcept { return v[i]; }
  };
  static void remember(Ids& ids, MessageId id) {
    if (ids.n == ids.v.size()) {
      std::copy(ids.v.begin() + 1, ids.v.end(), ids.v.begin());
      --ids.n;
    }
    ids.v[ids.n++] = id;
  }

  // --- delivering

  struct Outcome {
    std::uint64_t dropped = 0;
    std::uint64_t pre_accept_drops = 0;
    std::uint64_t replay_drops = 0;
    std::uint64_t stale_drops = 0;
    std::uint64_t no_key_drops = 0;
    int messages = 0;
  };

  Outcome deliver(const Endpoint& from, Bytes d, bool hold) {
    drain_events();
    if (const auto i = peer_index(from)) bytes_in_[*i] += d.size();
    const EngineStats before = engine_->stats();
    engine_->handle_datagram(from, d, now_, wall_at(now_));
    const EngineStats& after = engine_->stats();
    Outcome o;
    o.dropped = after.dropped_total - before.dropped_total;
    o.pre_accept_drops = pre_accept_delta(before, after);
    o.replay_drops = (after.dropped_by(Errc::replayed) - before.dropped_by(Errc::replayed)) +
                     (after.dropped_by(Errc::replay_window_old) -
                      before.dropped_by(Errc::replay_window_old));
    o.stale_drops = after.dropped_by(Errc::stale_timestamp) - before.dropped_by(Errc::stale_timestamp);
    o.no_key_drops = after.dropped_by(Errc::no_channel_key) - before.dropped_by(Errc::no_channel_key);
    NOMQ_FUZZ_CHECK(after.datagrams_received == before.datagrams_received + 1);
    if (after.endpoints_verified != before.endpoints_verified) {
      // Only an echo of a token sent to this very address verifies it.
      NOMQ_FUZZ_CHECK(after.endpoints_verified == before.endpoints_verified + 1);
      const auto i = peer_index(from);
      NOMQ_FUZZ_CHECK(i.has_value());
      const auto h = wire::peek_header(d);
      NOMQ_FUZZ_CHECK(h && h->type == static_cast<std::uint8_t>(PacketType::heartbeat) &&
                      wire::flags_echo_response(h->flags));
      NOMQ_FUZZ_CHECK(token_sent(*i, h->channel_id));
      verified_[*i] = true;
    }
    if (!hold) o.messages = drain_events();
    return o;
  }

  // `marked`: a v2 datagram whose flags carry the channel-key mark (wire::channel_key_flag) but
  // that is sealed with the group's keys: no channel key the engine holds (none, or the
  // "plant/#" key in keyed mode) verifies its MAC, so the engine must drop it as no_channel_key
  // before anything else about it.
  void deliver_new(const Endpoint& from, Bytes d, bool hold, bool stale, bool marked) {
    const Outcome o = deliver(from, d, hold);
    if (marked) {
      NOMQ_FUZZ_CHECK(o.no_key_drops == 1 && o.messages == 0);
    } else if (stale) {
      NOMQ_FUZZ_CHECK(o.stale_drops == 1 && o.messages == 0);
    }
    sent_.push(d).passed_replay_check = o.pre_accept_drops == 0;
  }

  void deliver_forged(const Endpoint& from, Bytes d) {
    const Outcome o = deliver(from, d, false);
    NOMQ_FUZZ_CHECK(o.dropped == 1);
    NOMQ_FUZZ_CHECK(o.messages == 0);
  }

  void op_raw(fuzz::Reader& in) {
    const std::size_t len = in.u16() % 2200;
    const Bytes b = in.take(len);
    deliver_forged(peers_[0].ep, b);
  }

  void op_replay(fuzz::Reader& in) {
    const std::uint8_t idx = in.u8();
    if (sent_.empty()) return;
    // A copy, so that the engine sees a buffer of its own (as from a socket), byte for byte.
    const Record& r = sent_[idx % sent_.size()];
    std::memcpy(copy_buf_.data(), r.bytes.data(), r.size);
    const bool passed = r.passed_replay_check;
    const Outcome o = deliver(peers_[idx % kPeers].ep, Bytes{copy_buf_.data(), r.size}, false);
    if (version_ == WireVersion::v2 && passed) {
      NOMQ_FUZZ_CHECK(o.dropped == 1 && o.replay_drops + o.stale_drops == 1);
      NOMQ_FUZZ_CHECK(o.messages == 0);
    }
  }

  void op_tamper(fuzz::Reader& in) {
    const std::uint8_t idx = in.u8();
    const std::uint16_t pos = in.u16();
    const std::uint8_t x = in.u8();
    if (sent_.empty()) return;
    const Record& r = sent_[idx % sent_.size()];
    std::memcpy(copy_buf_.data(), r.bytes.data(), r.size);
    copy_buf_[pos % r.size] ^= x;
    const Bytes copy{copy_buf_.data(), r.size};
    if (x == 0) {
      (void)deliver(peers_[idx % kPeers].ep, copy, false);
    } else {
      deliver_forged(peers_[idx % kPeers].ep, copy);
    }
  }

  void op_echo(fuzz::Reader& in) {
    const std::uint8_t idx = in.u8();
    const std::uint8_t peer = in.u8();
    if (emitted_.empty()) return;
    const Record& r = emitted_[idx % emitted_.size()];
    std::memcpy(copy_buf_.data(), r.bytes.data(), r.size);
    (void)deliver(peers_[peer % kPeers].ep, Bytes{copy_buf_.data(), r.size}, false);
  }

  void op_respond(fuzz::Reader& in) {
    Peer& peer = peers_[in.u8() % kPeers];
    // The newest tracked datagram the engine emitted.
    for (std::size_t back = 0; back < emitted_.size(); ++back) {
      wire::DecodeOptions opt;
      opt.version = version_;
      opt.check_timestamp = false;
      const Bytes e = emitted_.newest(back).view();
      const bool keyed = sealed_with_channel_key(e);
      const Result<wire::Packet> r = wire::decode(e, keys(keyed), opt, scratch_);
      if (!r.ok()) continue;
      PacketType reply{};
      std::uint32_t acked = 0;
      if (r->type == PacketType::publish && r->qos() != 0) {
        reply = r->qos() == 1 ? PacketType::ack : PacketType::pubrec;
        acked = version_ == WireVersion::v2 ? r->body.message_id : r->packet_id;
      } else if (r->type == PacketType::pubrel) {
        reply = PacketType::pubcomp;
        acked = r->body.acked_id;
      } else {
        continue;
      }
      wire::Packet p = header(reply, peer);
      p.channel_id = r->channel_id;
      p.flags = r->flags;
      p.body.acked_id = acked;
      const Bytes d = seal(p, keyed);  // an answer is sealed with its publish's keys
      if (!d.empty()) deliver_new(peer.ep, d, false, false, false);
      return;
    }
  }

  void op_impersonate(fuzz::Reader& in) {
    const std::size_t peer = in.u8() % kPeers;
    const auto type = static_cast<PacketType>(1 + in.u8() % 8);
    const std::uint32_t jump = 1u + in.u16();
    if (version_ != WireVersion::v2) return;
    drain_events();
    // Whatever the engine sent before is in emitted_; the forgery's sequence number lies beyond
    // the newest of them by `jump` (at least one), so the engine never sent it.
    std::uint32_t newest = 0;
    const std::uint32_t own = engine_->session_id();
    for (std::size_t i = 0; i < emitted_.size(); ++i) {
      const auto h = wire::peek_header(emitted_[i].view());
      if (h && h->session_id == own) newest = std::max(newest, h->packet_id);
    }
    wire::Packet p = header(type, peers_[peer]);
    p.session_id = own;
    p.packet_id = newest + jump + 1'000'000u;  // past anything sent since, too
    p.channel_id = type == PacketType::heartbeat ? wire::ChannelId{} : ids_[0];
    p.body.channel = kChannels[0];
    p.body.message_id = 1;
    const Bytes d = seal(p);
    if (d.empty()) return;
    const std::uint64_t seen = engine_->stats().impersonations_detected;
    const std::uint64_t own_drops = engine_->stats().dropped_by(Errc::own_packet);
    const Outcome o = deliver(peers_[peer].ep, d, false);
    // The renewal may queue announcements that a full outbox refuses (queue_full): only the
    // forgery's own drop is asserted.
    NOMQ_FUZZ_CHECK(engine_->stats().dropped_by(Errc::own_packet) == own_drops + 1);
    NOMQ_FUZZ_CHECK(o.messages == 0);
    NOMQ_FUZZ_CHECK(engine_->stats().impersonations_detected == seen + 1);
    NOMQ_FUZZ_CHECK(closed_ || engine_->session_id() != own);
    NOMQ_FUZZ_CHECK(impersonation_events_ >= 1);
    impersonation_events_ = 0;
  }

  // Whether an emitted v2 datagram carries the channel-key mark (the engine holds one key at
  // most here, "plant/#"), and the keys that open a datagram so marked (or not).
  bool sealed_with_channel_key(Bytes d) const noexcept {
    if (version_ != WireVersion::v2) return false;
    const auto h = wire::peek_header(d);
    return h && wire::flags_channel_key(static_cast<PacketType>(h->type), h->flags);
  }
  Crypto& keys(bool keyed) noexcept {
    NOMQ_FUZZ_CHECK(!keyed || chan_ != nullptr);  // no mark without a channel key held
    return keyed ? chan_->crypto() : crypto_->crypto();
  }

  // The challenge tokens sent to each peer's address (the last kTokens of them; the engine
  // keeps only its newest per endpoint, so an older one verifying would fail the check above).
  void remember_token(std::size_t peer, const wire::ChannelId& token) noexcept {
    auto& n = token_count_[peer];
    tokens_[peer][n % kTokens] = token;
    ++n;
  }
  bool token_sent(std::size_t peer, const wire::ChannelId& token) const noexcept {
    const std::size_t n = std::min<std::size_t>(token_count_[peer], kTokens);
    for (std::size_t k = 0; k < n; ++k) {
      if (tokens_[peer][k] == token) return true;
    }
    return false;
  }

  std::optional<std::size_t> peer_index(const Endpoint& e) const noexcept {
    for (std::size_t i = 0; i < kPeers; ++i) {
      if (peers_[i].ep == e) return i;
    }
    return std::nullopt;
  }

  // --- API calls

  void op_publish(fuzz::Reader& in) {
    const auto& ch = kChannels[in.u8() % kChannels.size()];
    const auto qos = static_cast<Qos>(in.u8() % 3);
    const std::uint8_t opts = in.u8();
    const std::uint8_t ttl = in.u8();
    const std::uint8_t prio = in.u8();
    const Bytes raw_msg = in.take(in.u8() % 80);  // > max_message_size sometimes
    std::array<std::uint8_t, 80> msg{};
    for (std::size_t i = 0; i < raw_msg.size(); ++i) {
      msg[i] = version_ == WireVersion::v1 ? static_cast<std::uint8_t>(0x20 + raw_msg[i] % 0x5F)
                                           : raw_msg[i];
    }
    PublishOptions o;
    o.qos = qos;
    o.retain = (opts & 1) != 0;
    o.ttl_s = static_cast<std::uint16_t>(ttl % 120);
    o.priority = static_cast<std::uint8_t>(prio % 17);  // 16: invalid_argument
    const int dest = (opts >> 1) & 7;
    if (dest >= 4) o.destination = peers_[static_cast<std::size_t>(dest - 4)].ep;
    if ((opts & 0x10) != 0) o.wait_for_subscribers = std::chrono::seconds(1 + (opts >> 5));
    const Result<MessageId> r = engine_->publish(ch, Bytes{msg.data(), raw_msg.size()}, o, now_);
    if (r.ok()) {
      if (dest >= 4) vouched_[static_cast<std::size_t>(dest - 4)] = true;
      remember(our_ids_, *r);
      if (qos != Qos::at_most_once) {
        Tracked t;
        t.id = *r;
        t.qos = qos;
        t.deadline = now_ + std::chrono::seconds(o.ttl_s == 0 ? cfg_.default_ttl_s : o.ttl_s);
        tracked_.push_back(t);
      }
    }
    drain_events();
  }

  // --- time

  void op_advance(fuzz::Reader& in) {
    const std::uint8_t b = in.u8();
    Duration step{0};
    if (b < 128) {
      step = std::chrono::milliseconds(10 * b);
    } else if (b < 200) {
      step = std::chrono::seconds(b - 127);
    } else {
      step = std::chrono::minutes(b - 199);
    }
    now_ += step;
    run_timers();
  }

  void run_timers() {
    engine_->handle_timeout(now_);
    drain_events();
    // Every tracked publish whose TTL has passed (with a second's slack for whole-second
    // arithmetic) has had its report by now.
    for (const Tracked& t : tracked_) {
      if (now_ > t.deadline + std::chrono::seconds(1)) NOMQ_FUZZ_CHECK(t.reports == 1);
    }
  }

  // --- outputs

  void drain_transmits() {
    MutableBytes buf{tx_buf_};
    int n = 0;
    while (auto tx = engine_->poll_transmit(now_, wall_at(now_), buf)) {
      NOMQ_FUZZ_CHECK(tx->size > 0 && tx->size <= wire::kMaxDatagram);
      NOMQ_FUZZ_CHECK(tx->to_group || tx->to.valid());
      const Bytes d{buf.data(), tx->size};
      wire::DecodeOptions opt;
      opt.version = version_;
      opt.wall = wall_at(now_);
      const bool keyed = sealed_with_channel_key(d);
      const Result<wire::Packet> r = wire::decode(d, keys(keyed), opt, scratch_);
      NOMQ_FUZZ_CHECK(r.ok());
      // On the channel-keyed channel, everything but HEARTBEAT is sealed with its key.
      if (chan_ != nullptr && r->type != PacketType::heartbeat && r->body.channel == kChannels[kKeyedChannel]) {
        NOMQ_FUZZ_CHECK(keyed);
      }
      if (version_ == WireVersion::v2 && !tx->to_group &&
          !(r->type == PacketType::heartbeat && r->flags == 0)) {
        if (const auto i = peer_index(tx->to)) {
          bytes_out_[*i] += tx->size;
          NOMQ_FUZZ_CHECK(vouched_[*i] || verified_[*i] || bytes_out_[*i] <= 3 * bytes_in_[*i]);
        }
      }
      if (version_ == WireVersion::v2 && !tx->to_group && r->type == PacketType::heartbeat &&
          wire::flags_echo_request(r->flags)) {
        if (const auto i = peer_index(tx->to)) remember_token(*i, r->channel_id);
      }
      emitted_.push(d);
      NOMQ_FUZZ_CHECK(++n <= 100000);
    }
  }

  // Returns the number of MessageEvents polled.
  int drain_events() {
    int messages = 0;
    while (auto ev = engine_->poll_event()) {
      if (const auto* m = std::get_if<MessageEvent>(&*ev)) {
        ++messages;
        ++delivered_;
        if (m->channel == kChannels[kKeyedChannel]) ++keyed_delivered_;
        NOMQ_FUZZ_CHECK(m->message.size() <= cfg_.limits.max_message_size);
        NOMQ_FUZZ_CHECK(std::find(kChannels.begin(), kChannels.begin() + kSubscribable,
                                  m->channel) != kChannels.begin() + kSubscribable);
      } else if (const auto* pe = std::get_if<PeerEvent>(&*ev)) {
        if (pe->kind == PeerEvent::Kind::impersonation) ++impersonation_events_;
      } else if (const auto* r = std::get_if<DeliveryReport>(&*ev)) {
        auto it = std::find_if(tracked_.begin(), tracked_.end(),
                               [&](const Tracked& t) { return t.id == r->message_id; });
        NOMQ_FUZZ_CHECK(it != tracked_.end());
        NOMQ_FUZZ_CHECK(it->reports == 0);
        NOMQ_FUZZ_CHECK(it->qos == r->qos);
        ++it->reports;
        ++reports_[static_cast<std::size_t>(r->reason)];
        NOMQ_FUZZ_CHECK(r->reason == Errc::ok || r->reason == Errc::expired ||
                        r->reason == Errc::timed_out || r->reason == Errc::no_subscribers ||
                        r->reason == Errc::closed);
        if (r->reason == Errc::ok) {
          for (const Recipient& rc : r->recipients) {
            NOMQ_FUZZ_CHECK(rc.state == RecipientState::acknowledged);
          }
        }
      }
    }
    return messages;
  }

  void check_stats() {
    const EngineStats& s = engine_->stats();
    NOMQ_FUZZ_CHECK(sum_dropped(s) == s.dropped_total);
    NOMQ_FUZZ_CHECK(engine_->pending_count() <= cfg_.limits.max_pending);
  }

  // Lets every timer run until all TTLs have passed; then each tracked publish has its report.
  void finish() {
    drain_transmits();
    drain_events();
    Instant end = now_;
    for (const Tracked& t : tracked_) end = std::max(end, t.deadline + std::chrono::seconds(2));
    int iterations = 0;
    while (auto d = engine_->next_deadline()) {
      if (*d > end) break;
      NOMQ_FUZZ_CHECK(++iterations < 100000);  // a deadline that never moves on: a livelock
      now_ = std::max(now_, *d);
      engine_->handle_timeout(now_);
      drain_transmits();
      drain_events();
    }
    now_ = end;
    run_timers();
    drain_transmits();
    drain_events();
    for (const Tracked& t : tracked_) NOMQ_FUZZ_CHECK(t.reports == 1);
    check_stats();
    if (trace()) print_trace();
  }

  // NOMQ_FUZZ_TRACE=1 (replay binary): one line per script saying how deep it went.
  static bool trace() {
    static const bool on = std::getenv("NOMQ_FUZZ_TRACE") != nullptr;
    return on;
  }
  void print_trace() const {
    const EngineStats& s = engine_->stats();
    std::fprintf(stderr, "engine %s: delivered %d, reports", std::string(to_string(version_)).c_str(),
                 delivered_);
    for (std::size_t e = 0; e < kErrcCount; ++e) {
      if (reports_[e] != 0) {
        std::fprintf(stderr, " %s=%d", std::string(to_string(static_cast<Errc>(e))).c_str(),
                     reports_[e]);
      }
    }
    std::fprintf(stderr, ", sent %llu, drops",
                 static_cast<unsigned long long>(s.datagrams_sent));
    for (std::size_t e = 0; e < kErrcCount; ++e) {
      if (s.dropped[e] != 0) {
        std::fprintf(stderr, " %s=%llu", std::string(to_string(static_cast<Errc>(e))).c_str(),
                     static_cast<unsigned long long>(s.dropped[e]));
      }
    }
    std::fprintf(stderr, "\n");
  }

  WireVersion version_ = WireVersion::v2;
  fuzz::FuzzCrypto* crypto_ = nullptr;
  fuzz::FuzzCrypto* chan_ = nullptr;  // keyed mode: the "plant/#" channel key set
  std::array<wire::ChannelId, kChannels.size()> chan_ids_{};
  Instant now_{};
  EngineConfig cfg_;
  std::optional<Engine> engine_;
  std::array<Peer, kPeers> peers_{};
  std::array<wire::ChannelId, kChannels.size()> ids_{};
  Ring sent_;
  Ring emitted_;
  Ids our_ids_;
  Ids peer_ids_;
  std::vector<Tracked> tracked_;  // keeps its capacity across inputs
  std::array<std::uint8_t, wire::kMaxDatagram> scratch_{};
  std::array<std::uint8_t, wire::kMaxDatagram> seal_buf_{};
  std::array<std::uint8_t, wire::kMaxDatagram> copy_buf_{};
  std::array<std::uint8_t, wire::kMaxDatagram> tx_buf_{};
  int delivered_ = 0;
  int keyed_delivered_ = 0;  // messages delivered on kChannels[kKeyedChannel]
  std::array<int, kErrcCount> reports_{};
  std::array<std::uint64_t, kPeers> bytes_in_{};   // every byte handed over from the address
  std::array<std::uint64_t, kPeers> bytes_out_{};  // guarded unicast bytes sent to it
  std::array<bool, kPeers> vouched_{};
  std::array<bool, kPeers> verified_{};  // answered a challenge sent to it (engine counted it)
  static constexpr std::size_t kTokens = 8;
  std::array<std::array<wire::ChannelId, kTokens>, kPeers> tokens_{};
  std::array<std::size_t, kPeers> token_count_{};
  int impersonation_events_ = 0;
  bool closed_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Reader in{data, size};
  // Byte 0: bit 0..2 == 7 selects wire v1 (one script in eight); otherwise bit 3 selects keyed
  // mode (a channel key for "plant/#"); the whole byte seeds the RNG.
  const std::uint8_t mode = in.u8();
  const WireVersion v = (mode & 7) == 7 ? WireVersion::v1 : WireVersion::v2;
  const bool keyed = v == WireVersion::v2 && (mode & 0x08) != 0;
  static fuzz::FuzzCrypto v1_crypto{fuzz::kV1EncKey, fuzz::kV1HmacKey};
  static fuzz::FuzzCrypto v2_crypto{fuzz::kV2EncKey, fuzz::kV2HmacKey};
  using Ids = std::array<wire::ChannelId, kChannels.size()>;
  const auto ids_for = [](fuzz::FuzzCrypto& c) {
    Ids ids{};
    for (std::size_t i = 0; i < kChannels.size(); ++i) ids[i] = wire::channel_id(c.crypto(), kChannels[i]);
    return ids;
  };
  static const Ids v1_ids = ids_for(v1_crypto);
  static const Ids v2_ids = ids_for(v2_crypto);
  static fuzz::FuzzCrypto chan_crypto = fuzz::FuzzCrypto::channel_key_set();
  static const Ids chan_ids = ids_for(chan_crypto);
  static Harness h;  // ~72 KiB of buffers, reused
  const bool v1 = v == WireVersion::v1;
  h.reset(v, v1 ? v1_crypto : v2_crypto, v1 ? v1_ids : v2_ids, mode, keyed ? &chan_crypto : nullptr,
          keyed ? &chan_ids : nullptr);
  h.run(in);
  h.release();
  return 0;
}
