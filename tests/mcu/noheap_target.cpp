// The engine on the target with no heap at all: three engines of the small profile
// (EngineConfig::small_profile) built with Engine::create in static buffers, exchanging QoS 0, 1
// and 2 publishes and a retained message over an in-memory network that loses 20 % of the
// datagrams and duplicates 5 % (a fixed-seed LCG: every run is the same). Nothing here may
// allocate: scripts/mcu.sh fails if malloc, calloc, realloc or operator new is in this ELF
// (arm-none-eabi-nm). So the crypto is built on mbedTLS's AES, SHA-256 and CTR_DRBG contexts,
// which need no heap, instead of MbedTlsCrypto (which holds its contexts through
// std::unique_ptr and keys HMAC through mbedtls_md_setup, which callocs); HMAC-SHA256 is RFC
// 2104 over those SHA-256 contexts (the MD layer computes the same; the v2 known-answer vectors
// check the construction on this target in mcu_wire_vectors through MbedTlsCrypto, and this
// program checks the two agree on one packet each way).
// Prints `mcu state_small_bytes: N` and `mcu state_seed_bytes: N` (Engine::state_bytes_for on
// the target, 32-bit) for the script. Exit code 0 only if every check held.
#include <mbedtls/aes.h>
#include <mbedtls/sha256.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <variant>

#include "crypto/mbedtls_drbg.hpp"
#include "mcu/stack_depth.hpp"
#include "mcu/target_crypto.hpp"
#include "nomq/engine.hpp"
#include "nomq/wire.hpp"
#include "sim/same_clock.hpp"

namespace nomq {
namespace {

int g_failures = 0;
#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::printf("CHECK failed: %s (line %d)\n", #cond, __LINE__);          \
      ++g_failures;                                                          \
    }                                                                        \
  } while (0)

// AES-256-CBC, HMAC-SHA256, SHA-256 on mbedTLS contexts held by value: no allocation.
class StaticMbedCrypto final : public Crypto {
 public:
  StaticMbedCrypto(const Key& enc, const Key& mac) {
    mbedtls_aes_init(&enc_);
    mbedtls_aes_init(&dec_);
    ok_ = mbedtls_aes_setkey_enc(&enc_, enc.data(), 256) == 0 &&
          mbedtls_aes_setkey_dec(&dec_, enc.data(), 256) == 0;
    key_ = mac;
    std::array<std::uint8_t, 64> ipad{}, opad{};
    for (std::size_t i = 0; i < 64; ++i) {
      const std::uint8_t k = i < key_.size() ? key_[i] : 0;
      ipad[i] = static_cast<std::uint8_t>(k ^ 0x36);
      opad[i] = static_cast<std::uint8_t>(k ^ 0x5c);
    }
    mbedtls_sha256_init(&inner_);
    mbedtls_sha256_init(&outer_);
    ok_ = ok_ && mbedtls_sha256_starts_ret(&inner_, 0) == 0 &&
          mbedtls_sha256_update_ret(&inner_, ipad.data(), ipad.size()) == 0 &&
          mbedtls_sha256_starts_ret(&outer_, 0) == 0 &&
          mbedtls_sha256_update_ret(&outer_, opad.data(), opad.size()) == 0;
  }
  bool ok() const { return ok_; }

  bool cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override {
    return cbc(MBEDTLS_AES_ENCRYPT, &enc_, iv, in, out);
  }
  bool cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override {
    return cbc(MBEDTLS_AES_DECRYPT, &dec_, iv, in, out);
  }
  Digest hmac_sha256(Bytes data) noexcept override {
    Digest in{}, d{};
    mbedtls_sha256_context c;
    mbedtls_sha256_init(&c);
    mbedtls_sha256_clone(&c, &inner_);
    mbedtls_sha256_update_ret(&c, data.data(), data.size());
    mbedtls_sha256_finish_ret(&c, in.data());
    mbedtls_sha256_clone(&c, &outer_);
    mbedtls_sha256_update_ret(&c, in.data(), in.size());
    mbedtls_sha256_finish_ret(&c, d.data());
    mbedtls_sha256_free(&c);
    return d;
  }
  Digest keyed_sha256(Bytes data) noexcept override { return sha(data, Bytes{key_}); }
  Digest sha256(Bytes data) noexcept override { return sha(data, Bytes{}); }

 private:
  static Digest sha(Bytes a, Bytes b) noexcept {
    Digest d{};
    mbedtls_sha256_context c;
    mbedtls_sha256_init(&c);
    mbedtls_sha256_starts_ret(&c, 0);
    mbedtls_sha256_update_ret(&c, a.data(), a.size());
    if (!b.empty()) mbedtls_sha256_update_ret(&c, b.data(), b.size());
    mbedtls_sha256_finish_ret(&c, d.data());
    mbedtls_sha256_free(&c);
    return d;
  }
  static bool cbc(int mode, mbedtls_aes_context* ctx, const Iv& iv, Bytes in,
                  MutableBytes out) noexcept {
    if (in.empty() || in.size() % 16 != 0 || out.size() < in.size()) return false;
    Iv chain = iv;
    return mbedtls_aes_crypt_cbc(ctx, mode, in.size(), chain.data(), in.data(), out.data()) == 0;
  }
  mbedtls_aes_context enc_;
  mbedtls_aes_context dec_;
  mbedtls_sha256_context inner_;
  mbedtls_sha256_context outer_;
  Key key_{};
  bool ok_ = false;
};

// detail::MbedTlsDrbg (CTR_DRBG) as the engines' Rng, held by value.
class DrbgRng final : public Rng {
 public:
  explicit DrbgRng(std::uint64_t seed) : state_(seed) {
    ok_ = drbg_.seed(EntropySource{mcu_test::fixed_test_entropy, &state_}, Bytes{});
  }
  bool ok() const { return ok_; }
  void random_bytes(MutableBytes out) noexcept override {
    if (!drbg_.generate(out)) __builtin_trap();
  }

 private:
  std::uint64_t state_;
  detail::MbedTlsDrbg drbg_;
  bool ok_ = false;
};

constexpr std::size_t kNodes = 3;
constexpr std::size_t kStateBuffer = 32 * 1024;
constexpr std::uint32_t kPerQos = 40;
constexpr char kChannel[] = "plant/temp";

alignas(Engine::kStateAlign) std::byte g_state[kNodes][kStateBuffer];

struct Lcg {
  std::uint32_t s;
  std::uint32_t next() {
    s = s * 1664525u + 1013904223u;
    return s >> 8;
  }
  bool percent(std::uint32_t p) { return next() % 100 < p; }
};

struct Datagram {
  std::size_t from = 0;
  bool to_group = false;
  Endpoint to;
  std::uint16_t size = 0;
  std::array<std::uint8_t, 600> bytes{};
};

// A FIFO of datagrams in flight, in static memory.
struct Wire {
  static constexpr std::size_t kCap = 512;
  std::array<Datagram, kCap> ring{};
  std::size_t head = 0, count = 0;
  bool push(const Datagram& d) {
    if (count == kCap) return false;
    ring[(head + count++) % kCap] = d;
    return true;
  }
  bool pop(Datagram& d) {
    if (count == 0) return false;
    d = ring[head];
    head = (head + 1) % kCap;
    --count;
    return true;
  }
};
Wire g_wire;

struct Node {
  Engine* engine = nullptr;
  Endpoint ep;
  std::array<std::array<std::uint8_t, kPerQos>, 3> got{};
  std::uint32_t retained = 0;
  std::uint32_t reports_ok = 0, reports_other = 0;
};

std::uint32_t parse_number(Bytes m) {
  std::uint32_t n = 0;
  for (std::size_t i = 1; i < m.size() && m[i] >= '0' && m[i] <= '9'; ++i) n = n * 10 + (m[i] - '0');
  return n;
}

int run() {
  const std::size_t small = Engine::state_bytes_for(EngineConfig::small_profile());
  const std::size_t seed = Engine::state_bytes_for(EngineConfig::seed_profile());
  std::printf("mcu state_small_bytes: %u\n", static_cast<unsigned>(small));
  std::printf("mcu state_seed_bytes: %u\n", static_cast<unsigned>(seed));
  for (const TableBytes& t : Engine::state_report_for(EngineConfig::small_profile())) {
    std::printf("mcu state_small %.*s: %u\n", static_cast<int>(t.table.size()), t.table.data(),
                static_cast<unsigned>(t.bytes));
  }
  for (const TableBytes& t : Engine::state_report_for(EngineConfig::seed_profile())) {
    std::printf("mcu state_seed %.*s: %u\n", static_cast<int>(t.table.size()), t.table.data(),
                static_cast<unsigned>(t.bytes));
  }
  CHECK(small <= kStateBuffer);
  // What one more unit of each limit costs, from the small profile (bytes on this target).
  struct Unit {
    const char* name;
    std::size_t EngineLimits::*field;
  };
  const Unit units[] = {{"max_pending", &EngineLimits::max_pending},
                        {"max_channels", &EngineLimits::max_channels},
                        {"max_peers", &EngineLimits::max_peers},
                        {"max_peer_subscriptions", &EngineLimits::max_peer_subscriptions},
                        {"max_senders", &EngineLimits::max_senders},
                        {"max_inbound_qos", &EngineLimits::max_inbound_qos},
                        {"max_inbox", &EngineLimits::max_inbox},
                        {"max_outbox", &EngineLimits::max_outbox},
                        {"max_queued_messages", &EngineLimits::max_queued_messages},
                        {"max_retained_channels", &EngineLimits::max_retained_channels},
                        {"max_retained_per_channel", &EngineLimits::max_retained_per_channel},
                        {"max_recipients", &EngineLimits::max_recipients},
                        {"max_channel_name", &EngineLimits::max_channel_name},
                        {"message_pool_bytes", &EngineLimits::message_pool_bytes},
                        {"inbox_bytes", &EngineLimits::inbox_bytes},
                        {"max_peer_events", &EngineLimits::max_peer_events}};
  for (const Unit& u : units) {
    EngineConfig more = EngineConfig::small_profile();
    more.limits.*u.field += 8;
    std::printf("mcu cost_per_8 %s: %u\n", u.name,
                static_cast<unsigned>(Engine::state_bytes_for(more) - small));
  }
  {
    EngineConfig more = EngineConfig::small_profile();
    more.replay_window += 64;
    std::printf("mcu cost_per_64 replay_window: %u\n",
                static_cast<unsigned>(Engine::state_bytes_for(more) - small));
  }

  static StaticMbedCrypto crypto(Key{1, 2, 3}, Key{4, 5, 6});
  CHECK(crypto.ok());
  static DrbgRng rngs[kNodes] = {DrbgRng{11}, DrbgRng{22}, DrbgRng{33}};
  Instant now{std::chrono::seconds(1'700'000'000)};
  static std::array<std::uint8_t, wire::kMaxDatagram> buf{};

  // A buffer one byte short is refused with the size needed; the right one is taken.
  {
    auto refused = Engine::create(EngineConfig::small_profile(), crypto, rngs[0], now,
                                  std::span<std::byte>{g_state[0], small - 1});
    CHECK(!refused.ok() && refused.error() == Errc::buffer_too_small);
  }
  Result<Engine> e0 = Engine::create(EngineConfig::small_profile(), crypto, rngs[0], now,
                                     std::span<std::byte>{g_state[0], kStateBuffer});
  Result<Engine> e1 = Engine::create(EngineConfig::small_profile(), crypto, rngs[1], now,
                                     std::span<std::byte>{g_state[1], kStateBuffer});
  Result<Engine> e2 = Engine::create(EngineConfig::small_profile(), crypto, rngs[2], now,
                                     std::span<std::byte>{g_state[2], kStateBuffer});
  CHECK(e0.ok() && e1.ok() && e2.ok());
  if (!e0.ok() || !e1.ok() || !e2.ok()) return 1;
  static Node nodes[kNodes];
  Engine* engines[kNodes] = {&*e0, &*e1, &*e2};
  for (std::size_t i = 0; i < kNodes; ++i) {
    nodes[i].engine = engines[i];
    nodes[i].ep = Endpoint::v4(10, 0, 0, static_cast<std::uint8_t>(i + 1), 4000);
  }
  Lcg lcg{12345};

  auto drain_events = [&](std::size_t i) {
    while (auto ev = nodes[i].engine->poll_event()) {
      if (auto* m = std::get_if<MessageEvent>(&*ev)) {
        if (m->retain) {
          ++nodes[i].retained;
          continue;
        }
        const std::uint32_t n = parse_number(m->message);
        const auto q = static_cast<std::size_t>(m->qos);
        if (n < kPerQos && q < 3 && nodes[i].got[q][n] < 255) ++nodes[i].got[q][n];
      } else if (auto* r = std::get_if<DeliveryReport>(&*ev)) {
        if (r->reason == Errc::ok) {
          ++nodes[i].reports_ok;
        } else {
          ++nodes[i].reports_other;
        }
      }
    }
  };
  auto step = [&](Instant t) {
    for (std::size_t i = 0; i < kNodes; ++i) {
      if (auto d = nodes[i].engine->next_deadline(); d && *d <= t) nodes[i].engine->handle_timeout(t);
      while (auto tx = nodes[i].engine->poll_transmit(t, sim::wall_at(t), buf)) {
        Datagram d;
        d.from = i;
        d.to_group = tx->to_group;
        d.to = tx->to;
        d.size = static_cast<std::uint16_t>(tx->size);
        if (tx->size > d.bytes.size()) {
          ++g_failures;
          continue;
        }
        std::memcpy(d.bytes.data(), buf.data(), tx->size);
        if (lcg.percent(20)) continue;  // lost
        g_wire.push(d);
        if (lcg.percent(5)) g_wire.push(d);  // duplicated
      }
    }
    Datagram d;
    std::size_t n = g_wire.count;
    while (n-- > 0 && g_wire.pop(d)) {
      for (std::size_t j = 0; j < kNodes; ++j) {
        if (j == d.from) continue;
        if (!d.to_group && !(d.to == nodes[j].ep)) continue;
        nodes[j].engine->handle_datagram(nodes[d.from].ep, Bytes{d.bytes.data(), d.size}, t,
                                         sim::wall_at(t));
      }
    }
    for (std::size_t i = 0; i < kNodes; ++i) drain_events(i);
  };

  // From here on, the stack below this function's frame is what the engines' calls (and the
  // two lambdas, snprintf and memcpy) take: printed at the end as mcu stack_exchange_bytes.
  const mcu_test::StackDepth exchange_stack(__builtin_frame_address(0));
  exchange_stack.paint();
  CHECK(nodes[1].engine->subscribe(kChannel, 0, now).ok());
  CHECK(nodes[2].engine->subscribe(kChannel, 0, now).ok());
  for (int i = 0; i < 400; ++i) step(now += std::chrono::milliseconds(10));

  PublishOptions retained;
  retained.retain = true;
  retained.qos = Qos::at_least_once;
  CHECK(nodes[0].engine->publish(kChannel, as_bytes(std::string_view{"r"}), retained, now).ok());
  char text[16];
  for (std::uint32_t k = 0; k < kPerQos; ++k) {
    for (int q = 0; q < 3; ++q) {
      PublishOptions o;
      o.qos = static_cast<Qos>(q);
      const int len = std::snprintf(text, sizeof(text), "m%u", static_cast<unsigned>(k));
      for (int tries = 0; tries < 2000; ++tries) {
        if (nodes[0].engine->publish(kChannel, Bytes{reinterpret_cast<const std::uint8_t*>(text),
                                                     static_cast<std::size_t>(len)},
                                     o, now)) {
          break;
        }
        step(now += std::chrono::milliseconds(10));
      }
      step(now += std::chrono::milliseconds(10));
    }
  }
  for (int i = 0; i < 6000; ++i) step(now += std::chrono::milliseconds(10));

  for (std::size_t s = 1; s < kNodes; ++s) {
    for (std::uint32_t k = 0; k < kPerQos; ++k) {
      CHECK(nodes[s].got[1][k] >= 1);   // QoS 1: at least once
      CHECK(nodes[s].got[2][k] == 1);   // QoS 2: exactly once
    }
    CHECK(nodes[s].retained >= 1);
  }
  CHECK(nodes[0].reports_ok == 2 * kPerQos + 1);
  CHECK(nodes[0].reports_other == 0);
  std::printf("mcu stack_exchange_bytes: %u\n",
              static_cast<unsigned>(exchange_stack.below(__builtin_frame_address(0))));
  std::printf("mcu noheap: %u reports ok, %d failures\n", static_cast<unsigned>(nodes[0].reports_ok),
              g_failures);
  return g_failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace nomq

int main() {
  // The stack the run takes (tests/mcu/stack_depth.hpp): three small-profile engines in static
  // buffers, the lossy exchange, snprintf of the message text; the printing at the start and
  // the end included.
  const nomq::mcu_test::StackDepth stack(__builtin_frame_address(0));
  stack.paint();
  int rc = nomq::run();
  if (!nomq::mcu_test::StackDepth::report_peak(stack.peak())) rc = 1;
  return rc;
}
