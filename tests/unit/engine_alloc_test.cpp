// Proof that the engine's hot path allocates nothing: this file replaces the global operator
// new/delete (for the whole test binary) with versions that count while `g_counting` is set,
// and runs a steady-state publish/transmit/receive/acknowledge loop at QoS 0, 1 and 2 between
// two engines (with losses, so retransmissions, duplicates and timers run too), with the
// counter switched on only around that loop. Allocations by OpenSSL (malloc inside the crypto
// backend) are not C++ allocations and are not the engine's (the core calls no malloc: the
// target build's nm check in scripts/mcu.sh proves it for the whole core). With the engine's
// state in caller buffers (Engine::create(..., buffer)) the count covers create() as well and
// is 0 from the first call on: the engine never touches the heap.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <new>
#include <span>
#include <vector>

#include "test_support.hpp"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_allocations{0};

void* counted_alloc(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (n == 0) n = 1;
  void* p = std::malloc(n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace nomq::engine_test {
namespace {

using namespace std::chrono_literals;

Engine create_in(const EngineConfig& cfg, TestCrypto& c, std::span<std::byte> buffer) {
  if (buffer.empty()) return make_engine(cfg, c, kT0);
  auto made = Engine::create(cfg, c.crypto(), c.rng, kT0, buffer);
  EXPECT_TRUE(made.ok()) << made.error();
  return std::move(made).value();
}

// A state buffer for `cfg` (aligned for the engine).
std::vector<std::max_align_t> state_buffer(const EngineConfig& cfg) {
  return std::vector<std::max_align_t>(Engine::state_bytes_for(cfg) / sizeof(std::max_align_t) + 1);
}
std::span<std::byte> bytes_of(std::vector<std::max_align_t>& v) {
  return std::as_writable_bytes(std::span{v});
}

struct Pair {
  // Engines from the heap (default memory resource), or in the given buffers.
  Pair(EngineConfig cfg, TestCrypto& ca_, TestCrypto& cb_, std::span<std::byte> ba = {},
       std::span<std::byte> bb = {})
      : a(create_in(cfg, ca_, ba)), b(create_in(cfg, cb_, bb)) {}
  Engine a;
  Engine b;
  Endpoint ea = Endpoint::v4(127, 0, 0, 1, 40001);
  Endpoint eb = Endpoint::v4(127, 0, 0, 1, 40002);
  std::array<std::uint8_t, wire::kMaxDatagram> buf{};
  std::uint64_t serial = 0;
  std::uint64_t delivered = 0;
  std::uint64_t reports = 0;

  // Moves every queued datagram across (dropping every `drop_every`-th), then drains events.
  void pump(Instant now, std::uint64_t drop_every) {
    for (int round = 0; round < 100; ++round) {
      bool any = false;
      while (auto tx = a.poll_transmit(now, wall_at(now), buf)) {
        any = true;
        if (drop_every != 0 && ++serial % drop_every == 0) continue;
        b.handle_datagram(ea, Bytes{buf.data(), tx->size}, now, wall_at(now));
        if (tx->to_group) a.handle_datagram(ea, Bytes{buf.data(), tx->size}, now, wall_at(now));
      }
      while (auto tx = b.poll_transmit(now, wall_at(now), buf)) {
        any = true;
        if (drop_every != 0 && ++serial % drop_every == 0) continue;
        a.handle_datagram(eb, Bytes{buf.data(), tx->size}, now, wall_at(now));
      }
      while (auto ev = a.poll_event()) {
        if (std::holds_alternative<DeliveryReport>(*ev)) ++reports;
      }
      while (auto ev = b.poll_event()) {
        if (std::holds_alternative<MessageEvent>(*ev)) ++delivered;
      }
      if (!any) return;
    }
  }
  void tick(Instant now) {
    if (auto d = a.next_deadline(); d && *d <= now) a.handle_timeout(now);
    if (auto d = b.next_deadline(); d && *d <= now) b.handle_timeout(now);
  }
};

// `buffers`: the engines' state in caller buffers, and counting from before create() on.
void run_steady_state(WireVersion version, bool buffers = false,
                      const EngineConfig& base = EngineConfig{}) {
  EngineConfig cfg = base;
  cfg.wire = version;
  cfg.timers.heartbeat_interval = 2s;  // heartbeats and announcements inside the loop too
  TestCrypto ca(11);
  TestCrypto cb(22);
  auto ba = state_buffer(cfg);
  auto bb = state_buffer(cfg);
  g_allocations = 0;
  g_counting = buffers;
  Pair p(cfg, ca, cb, buffers ? bytes_of(ba) : std::span<std::byte>{},
         buffers ? bytes_of(bb) : std::span<std::byte>{});
  ASSERT_TRUE(p.b.subscribe("plant/line1/temp", 3, kT0));
  Instant now = kT0;
  p.pump(now, 0);
  // Let the start-up discovery period pass (solicitations and their answers run here): a
  // publish made inside it holds its pending slot until the period ends.
  for (Instant end = now + cfg.timers.discovery_period; now < end;) {
    now += 10ms;
    p.tick(now);
    p.pump(now, 0);
  }
  const std::array<std::uint8_t, 64> payload{};
  PublishOptions opt[3];
  for (int q = 0; q < 3; ++q) {
    opt[q].qos = static_cast<Qos>(q);
    opt[q].priority = static_cast<std::uint8_t>(q * 5);
    opt[q].ttl_s = 30;
    if (version == WireVersion::v1) opt[q].destination = p.eb;
  }
  opt[0].retain = version == WireVersion::v2;

  auto iteration = [&](int i) {
    now += 7ms;
    const auto r = p.a.publish("plant/line1/temp", payload, opt[i % 3], now);
    ASSERT_TRUE(r) << r.error();
    p.pump(now, 7);  // every 7th datagram lost: retransmissions and duplicates happen
    p.tick(now);
    p.pump(now, 7);
  };
  // Warm-up: reach steady state (tables populated, message ids cycling).
  for (int i = 0; i < 300; ++i) iteration(i);
  for (int i = 0; i < 400 && p.a.pending_count() > 0; ++i) {
    now += 100ms;
    p.tick(now);
    p.pump(now, 0);
  }
  ASSERT_EQ(p.a.pending_count(), 0u);
  const std::uint64_t delivered_before = p.delivered;
  const std::uint64_t reports_before = p.reports;
  const std::uint64_t retx_before = p.a.stats().retransmissions;

  const std::uint64_t solicited_before = p.a.stats().solicitations_sent;
  const std::uint64_t answered_before = p.b.stats().solicitations_answered;

  if (!buffers) g_allocations = 0;
  g_counting = true;
  if (version == WireVersion::v2) {
    // A publish that waits for a subscriber nobody is: a keeps soliciting with backoff and b
    // answers each solicitation, inside the measured region.
    PublishOptions waiting;
    waiting.qos = Qos::at_least_once;
    waiting.wait_for_subscribers = 5s;
    ASSERT_TRUE(p.a.publish("plant/unheard", payload, waiting, now));
  }
  for (int i = 0; i < 3000; ++i) iteration(i);
  // Let everything in flight finish inside the measured region too.
  for (int i = 0; i < 400; ++i) {
    now += 100ms;
    p.tick(now);
    p.pump(now, 0);
  }
  g_counting = false;

  EXPECT_EQ(g_allocations.load(), 0u);
  EXPECT_GT(p.delivered - delivered_before, 2500u);
  // Every QoS 1/2 publish reported once (v2: plus the waiting one, no_subscribers).
  EXPECT_EQ(p.reports - reports_before, version == WireVersion::v2 ? 2001u : 2000u);
  if (version == WireVersion::v2) {
    EXPECT_GE(p.a.stats().solicitations_sent - solicited_before, 4u);
    EXPECT_GE(p.b.stats().solicitations_answered - answered_before, 4u);
  }
  EXPECT_GT(p.a.stats().retransmissions - retx_before, 0u);
  EXPECT_EQ(p.a.pending_count(), 0u);
}

TEST(EngineAllocation, SteadyStateV2AllocatesNothing) { run_steady_state(WireVersion::v2); }
TEST(EngineAllocation, SteadyStateV1AllocatesNothing) { run_steady_state(WireVersion::v1); }
// create() in a caller buffer, start-up discovery, warm-up and the steady-state loop: not one
// allocation from the first call on.
TEST(EngineAllocation, InBufferCreateAndExchangeAllocateNothingV2) {
  run_steady_state(WireVersion::v2, true);
}
TEST(EngineAllocation, InBufferCreateAndExchangeAllocateNothingV1) {
  run_steady_state(WireVersion::v1, true);
}
TEST(EngineAllocation, InBufferSmallProfileAllocatesNothing) {
  EngineConfig small = EngineConfig::small_profile();
  small.limits.max_pending = 50;  // the loop keeps up to a few dozen publishes in flight
  small.limits.max_outbox = 128;
  small.limits.message_pool_bytes = 8 * 1024;
  run_steady_state(WireVersion::v2, true, small);
}

TEST(EngineAllocation, CounterSeesAllocations) {
  // The instrument works: a vector growing inside the region is seen.
  g_allocations = 0;
  g_counting = true;
  std::vector<int> v;
  v.push_back(1);
  g_counting = false;
  EXPECT_GE(g_allocations.load(), 1u);
}

}  // namespace
}  // namespace nomq::engine_test
