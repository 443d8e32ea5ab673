// Instruction counts on the Cortex-M4 under qemu (issue 12 §5), run by scripts/mcu.sh as
//   qemu-system-arm -M mps2-an386 -icount shift=0 ... -kernel mcu_icount.elf
// With `-icount shift=0` qemu advances its virtual clock by exactly 1 ns per guest instruction
// executed, and the board's CMSDK APB timer 0 (0x40000000) counts down at the 25 MHz system
// clock of that virtual time: one timer tick = 40 ns = 40 instructions. Reading the timer around
// N repetitions of an operation gives its instructions: (ticks x 40) / N, to within 40 / N
// instructions of quantisation. qemu counts instructions, not cycles: no wait states, no
// pipeline, no flash accelerator (a real Cortex-M4 takes more cycles than instructions).
//
// The method is checked first: hand-written loops of a known instruction count (2 and 10
// instructions per iteration) must come out within 0.1 % of their count, and the program fails
// otherwise (as it does when an exchange does not complete). Measured, all with the mbedTLS
// backend and the small profile (EngineConfig::small_profile()):
//   seal_64   wire::encode of a v2 PUBLISH carrying a 64-byte message (encrypt, MAC; the IV and
//             the channel id given, as the engine passes them);
//   open_64   wire::decode of it: MAC check (constant time), decryption, decoding, the channel
//             name among the known channels (as the engine decodes for its subscriptions);
//   qosN_exchange  two engines after discovery: publish() on one, then every datagram either
//             sends handed to the other (poll_transmit / handle_datagram) and every event taken
//             (poll_event), until neither has anything to send: QoS 0 one PUBLISH; QoS 1 PUBLISH
//             and ACK with the delivery report; QoS 2 PUBLISH, PUBREC, PUBREL, PUBCOMP. Counted
//             per exchange: both engines, their crypto (IV draws from the CTR_DRBG included) and
//             the few instructions of this loop that move the datagrams.
#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <variant>

#include "mcu/target_crypto.hpp"
#include "nomq/engine.hpp"
#include "nomq/wire.hpp"
#include "sim/same_clock.hpp"

namespace nomq {
namespace {

// --- the virtual clock: CMSDK APB timer 0 of the MPS2 (CTRL, VALUE, RELOAD registers).
volatile std::uint32_t* const kTimer = reinterpret_cast<volatile std::uint32_t*>(0x40000000u);
constexpr std::uint32_t kInsnsPerTick = 40;  // 1 ns per instruction, 25 MHz timer clock

void timer_start() {
  kTimer[0] = 0;            // CTRL: stop
  kTimer[2] = 0xFFFFFFFFu;  // RELOAD
  kTimer[1] = 0xFFFFFFFFu;  // VALUE
  kTimer[0] = 1;            // CTRL: enable, no interrupt
}
inline std::uint32_t timer_now() { return kTimer[1]; }
// Instructions between two readings (the timer counts down; 2^32 ticks = 171 s of virtual time).
inline std::uint64_t insns_between(std::uint32_t start, std::uint32_t end) {
  return std::uint64_t{static_cast<std::uint32_t>(start - end)} * kInsnsPerTick;
}

// --- calibration loops of a known count: 2 and 10 instructions per iteration.
__attribute__((noinline)) void spin2(std::uint32_t n) {
  asm volatile(
      "1: subs %0, %0, #1\n"
      "   bne 1b\n"
      : "+r"(n)
      :
      : "cc");
}
__attribute__((noinline)) void spin10(std::uint32_t n) {
  asm volatile(
      "1: nop\n nop\n nop\n nop\n nop\n nop\n nop\n nop\n"
      "   subs %0, %0, #1\n"
      "   bne 1b\n"
      : "+r"(n)
      :
      : "cc");
}

int g_failures = 0;

bool check_calibration(const char* name, void (*spin)(std::uint32_t), std::uint32_t per_iter) {
  constexpr std::uint32_t kShort = 1000, kLong = 1'001'000;
  std::uint32_t t0 = timer_now();
  spin(kShort);
  std::uint32_t t1 = timer_now();
  spin(kLong);
  std::uint32_t t2 = timer_now();
  // The difference of the two runs cancels the call and the timer reads.
  const std::uint64_t measured = insns_between(t1, t2) - insns_between(t0, t1);
  const std::uint64_t expected = std::uint64_t{kLong - kShort} * per_iter;
  const std::uint64_t diff = measured > expected ? measured - expected : expected - measured;
  const unsigned ppm = static_cast<unsigned>(diff * 1'000'000 / expected);
  std::printf("mcu icount calibration %s: expected %llu instructions, measured %llu (error %u ppm)\n",
              name, static_cast<unsigned long long>(expected),
              static_cast<unsigned long long>(measured), ppm);
  if (ppm > 1000) {
    std::printf("mcu icount: calibration %s off by more than 0.1 %%: is qemu run with -icount shift=0?\n",
                name);
    ++g_failures;
    return false;
  }
  return true;
}

// --- seal and open of a 64-byte PUBLISH.
constexpr char kChannel[] = "plant/line1/temp";
constexpr int kCodecRuns = 200;

void measure_codec(CryptoRng& crypto) {
  std::array<std::uint8_t, 64> message{};
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<std::uint8_t>('a' + i % 26);
  const Instant now{std::chrono::seconds(1'700'000'000)};
  wire::Packet p;
  p.version = WireVersion::v2;
  p.type = wire::PacketType::publish;
  p.flags = wire::publish_flags(1, false, 0);
  p.packet_id = 7;
  p.session_id = 0x12345678;
  p.ttl = 60;
  for (std::size_t i = 0; i < p.iv.size(); ++i) p.iv[i] = static_cast<std::uint8_t>(i * 17);
  p.timestamp = 1'700'000'000u;
  p.channel_id = wire::channel_id(crypto, kChannel);
  p.body.message_id = 42;
  p.body.channel = kChannel;
  p.body.message = Bytes{message.data(), message.size()};

  static std::array<std::uint8_t, wire::kMaxDatagram> datagram;
  static std::array<std::uint8_t, wire::kMaxDatagram> scratch;
  std::size_t size = 0;
  std::uint32_t t0 = timer_now();
  for (int i = 0; i < kCodecRuns; ++i) {
    auto n = wire::encode(p, crypto, datagram);
    if (!n) {
      std::printf("mcu icount: encode failed: %s\n", n.error().c_str());
      ++g_failures;
      return;
    }
    size = *n;
  }
  std::uint32_t t1 = timer_now();

  const wire::KnownChannel known[] = {{p.channel_id, kChannel}};
  wire::DecodeOptions o;
  o.version = WireVersion::v2;
  o.wall = sim::wall_at(now);
  o.known_channels = known;
  bool same = true;
  std::uint32_t t2 = timer_now();
  for (int i = 0; i < kCodecRuns; ++i) {
    auto d = wire::decode(Bytes{datagram.data(), size}, crypto, o, scratch);
    if (!d || d->body.message.size() != message.size() || d->body.message_id != 42) same = false;
  }
  std::uint32_t t3 = timer_now();
  if (!same) {
    std::printf("mcu icount: decode of the sealed PUBLISH failed\n");
    ++g_failures;
    return;
  }
  std::printf("mcu icount: a v2 PUBLISH with a 64-byte message and a %u-byte channel name seals to %u bytes\n",
              static_cast<unsigned>(sizeof(kChannel) - 1), static_cast<unsigned>(size));
  // The crypto inside them: AES-256-CBC of the ciphertext's length and HMAC-SHA256 of what the
  // MAC covers (header and ciphertext), through the same backend.
  const std::size_t cipher = size - wire::kHeaderSize - wire::kMacSize;
  std::uint32_t t4 = timer_now();
  for (int i = 0; i < kCodecRuns; ++i)
    (void)crypto.cbc_encrypt(p.iv, Bytes{datagram.data() + wire::kHeaderSize, cipher},
                             MutableBytes{scratch.data(), cipher});
  std::uint32_t t5 = timer_now();
  for (int i = 0; i < kCodecRuns; ++i) (void)crypto.hmac_sha256(Bytes{datagram.data(), size - wire::kMacSize});
  std::uint32_t t6 = timer_now();
  Iv iv{};
  for (int i = 0; i < kCodecRuns; ++i) crypto.random_bytes(iv);
  std::uint32_t t7 = timer_now();
  std::printf("mcu icount: AES-256-CBC encryption of %u bytes %llu instructions, HMAC-SHA256 of %u bytes %llu\n",
              static_cast<unsigned>(cipher),
              static_cast<unsigned long long>(insns_between(t4, t5) / kCodecRuns),
              static_cast<unsigned>(size - wire::kMacSize),
              static_cast<unsigned long long>(insns_between(t5, t6) / kCodecRuns));
  std::printf("mcu icount: a 16-byte IV from the CTR_DRBG %llu instructions\n",
              static_cast<unsigned long long>(insns_between(t6, t7) / kCodecRuns));
  std::printf("mcu insns_seal_64: %llu\n",
              static_cast<unsigned long long>(insns_between(t0, t1) / kCodecRuns));
  std::printf("mcu insns_open_64: %llu\n",
              static_cast<unsigned long long>(insns_between(t2, t3) / kCodecRuns));
}

// --- QoS 0/1/2 exchanges between two engines.
struct Node {
  std::unique_ptr<MbedTlsCrypto> crypto;
  std::unique_ptr<Engine> engine;
  Endpoint endpoint;
  std::uint32_t delivered = 0, reports_ok = 0, reports_failed = 0;
};

struct Pair {
  std::array<Node, 2> nodes;
  Instant now{std::chrono::seconds(1'700'000'000)};
  std::array<std::uint8_t, wire::kMaxDatagram> buffer{};
  std::uint32_t datagrams = 0;

  void drain(Node& n) {
    while (auto ev = n.engine->poll_event()) {
      if (std::holds_alternative<MessageEvent>(*ev)) ++n.delivered;
      if (auto* r = std::get_if<DeliveryReport>(&*ev)) ++(r->all_acknowledged() ? n.reports_ok : n.reports_failed);
    }
  }
  // Until neither engine sends anything.
  void pump() {
    for (bool any = true; any;) {
      any = false;
      for (std::size_t i = 0; i < 2; ++i) {
        while (auto tx = nodes[i].engine->poll_transmit(now, sim::wall_at(now), buffer)) {
          any = true;
          ++datagrams;
          Node& other = nodes[1 - i];
          if (tx->to_group || tx->to == other.endpoint)
            other.engine->handle_datagram(nodes[i].endpoint, Bytes{buffer.data(), tx->size}, now,
                                          sim::wall_at(now));
        }
      }
      drain(nodes[0]);
      drain(nodes[1]);
    }
  }
  void advance(std::chrono::milliseconds d) {
    now = now + d;
    for (auto& n : nodes)
      if (auto dl = n.engine->next_deadline(); dl && *dl <= now) n.engine->handle_timeout(now);
    pump();
  }
};

constexpr int kExchanges = 20;

void measure_exchanges() {
  static Pair pair;  // large: keep it off the stack
  const Key enc{1, 2, 3};
  const Key mac{4, 5, 6};
  const EngineConfig cfg = EngineConfig::small_profile();
  for (std::size_t i = 0; i < 2; ++i) {
    Node& n = pair.nodes[i];
    n.crypto = mcu_test::make_target_crypto(enc, mac);
    n.endpoint = Endpoint::v4(10, 0, 0, static_cast<std::uint8_t>(i + 1), 8888);
    auto made = n.crypto ? Engine::create(cfg, *n.crypto, *n.crypto, pair.now) : Result<Engine>{Errc::crypto_failure};
    if (!made) {
      std::printf("mcu icount: engine %u not created: %s\n", static_cast<unsigned>(i), made.error().c_str());
      ++g_failures;
      return;
    }
    n.engine = std::make_unique<Engine>(std::move(made).value());
  }
  Node& pub = pair.nodes[0];
  Node& sub = pair.nodes[1];
  if (!sub.engine->subscribe(kChannel, 0, pair.now)) {
    ++g_failures;
    return;
  }
  for (int t = 0; t < 300; ++t) pair.advance(std::chrono::milliseconds(10));  // discovery

  std::array<std::uint8_t, 64> message{};
  for (int qos = 0; qos < 3; ++qos) {
    PublishOptions o;
    o.qos = static_cast<Qos>(qos);
    const std::uint32_t delivered0 = sub.delivered, reports0 = pub.reports_ok;
    const std::uint32_t datagrams0 = pair.datagrams;
    std::uint64_t insns = 0;
    for (int k = 0; k < kExchanges; ++k) {
      message[0] = static_cast<std::uint8_t>(k);
      // Timers that fell due between exchanges run outside the measured span.
      pair.advance(std::chrono::milliseconds(1));
      const std::uint32_t t0 = timer_now();
      auto id = pub.engine->publish(kChannel, Bytes{message.data(), message.size()}, o, pair.now);
      pair.pump();
      const std::uint32_t t1 = timer_now();
      if (!id) {
        std::printf("mcu icount: publish failed: %s\n", id.error().c_str());
        ++g_failures;
        return;
      }
      insns += insns_between(t0, t1);
    }
    const std::uint32_t delivered = sub.delivered - delivered0, reports = pub.reports_ok - reports0;
    const std::uint32_t want_reports = qos == 0 ? 0 : kExchanges;
    if (delivered != kExchanges || reports != want_reports || pub.reports_failed != 0 ||
        pub.engine->pending_count() != 0) {
      std::printf("mcu icount: QoS %d: delivered %u, reported %u of %d exchanges\n", qos,
                  static_cast<unsigned>(delivered), static_cast<unsigned>(reports), kExchanges);
      ++g_failures;
      continue;
    }
    std::printf("mcu icount: QoS %d exchange: %u datagrams for %d exchanges\n", qos,
                static_cast<unsigned>(pair.datagrams - datagrams0), kExchanges);
    std::printf("mcu insns_qos%d_exchange: %llu\n", qos,
                static_cast<unsigned long long>(insns / kExchanges));
  }
}

}  // namespace
}  // namespace nomq

int main() {
  nomq::timer_start();
  const bool calibrated = nomq::check_calibration("2 per iteration", nomq::spin2, 2) &&
                          nomq::check_calibration("10 per iteration", nomq::spin10, 10);
  if (calibrated) {
    auto crypto = nomq::mcu_test::make_target_crypto(nomq::Key{1, 2, 3}, nomq::Key{4, 5, 6});
    if (crypto) {
      nomq::measure_codec(*crypto);
    } else {
      ++nomq::g_failures;
    }
    nomq::measure_exchanges();
  }
  return nomq::g_failures == 0 ? 0 : 1;
}
