// Engine throughput, CPU only (no sockets): one message published, encoded, decoded, delivered
// and (QoS 1/2) acknowledged between two engines in the same thread, per iteration. Real
// crypto (OpenSslCrypto), so this is engine + codec + crypto cost per message.
//   cmake --build build --target nomq_bench_engine && build/nomq_bench_engine
#include <benchmark/benchmark.h>

#include <array>
#include <memory>

#include "nomq/engine.hpp"
#include "nomq/openssl_crypto.hpp"
#include "sim/same_clock.hpp"

namespace {

using namespace std::chrono_literals;
using nomq::sim::wall_at;

std::unique_ptr<nomq::OpenSslCrypto> make_crypto() {
  nomq::Key e{};
  nomq::Key h{};
  h[0] = 1;
  auto r = nomq::OpenSslCrypto::create(e, h);
  return r ? std::move(r.value()) : nullptr;
}

void BM_EngineRoundTrip(benchmark::State& state) {
  const auto qos = static_cast<nomq::Qos>(state.range(0));
  const auto size = static_cast<std::size_t>(state.range(1));
  auto ca = make_crypto();
  auto cb = make_crypto();
  nomq::Instant now{std::chrono::seconds(1'700'000'000)};
  nomq::EngineConfig cfg;
  nomq::Engine a = nomq::Engine::create(cfg, *ca, *ca, now).value();
  nomq::Engine b = nomq::Engine::create(cfg, *cb, *cb, now).value();
  const auto ea = nomq::Endpoint::v4(127, 0, 0, 1, 1);
  const auto eb = nomq::Endpoint::v4(127, 0, 0, 1, 2);
  std::array<std::uint8_t, nomq::wire::kMaxDatagram> buf{};
  std::vector<std::uint8_t> payload(size, 'x');
  auto pump = [&] {
    bool any = true;
    while (any) {
      any = false;
      while (auto tx = a.poll_transmit(now, wall_at(now), buf)) {
        any = true;
        b.handle_datagram(ea, nomq::Bytes{buf.data(), tx->size}, now, wall_at(now));
      }
      while (auto tx = b.poll_transmit(now, wall_at(now), buf)) {
        any = true;
        a.handle_datagram(eb, nomq::Bytes{buf.data(), tx->size}, now, wall_at(now));
      }
    }
    while (a.poll_event()) {
    }
    while (b.poll_event()) {
    }
  };
  (void)b.subscribe("bench/topic", 0, now);
  pump();
  // Measure the steady state: a QoS 1/2 publish made during a node's discovery period is held
  // until the period ends (docs/engine.md §3), which would fill the pending table here.
  now += a.config().timers.discovery_period + 1ms;
  a.handle_timeout(now);
  b.handle_timeout(now);
  pump();
  nomq::PublishOptions o;
  o.qos = qos;
  std::uint64_t datagrams = 0;
  for (auto _ : state) {
    now += 1us;
    const auto before = a.stats().datagrams_sent + b.stats().datagrams_sent;
    if (!a.publish("bench/topic", payload, o, now)) state.SkipWithError("publish failed");
    pump();
    datagrams += a.stats().datagrams_sent + b.stats().datagrams_sent - before;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["datagrams_per_msg"] =
      static_cast<double>(datagrams) / static_cast<double>(state.iterations());
  if (b.stats().messages_delivered < static_cast<std::uint64_t>(state.iterations())) {
    state.SkipWithError("not every message was delivered");
  }
}

BENCHMARK(BM_EngineRoundTrip)
    ->ArgNames({"qos", "bytes"})
    ->Args({0, 64})
    ->Args({1, 64})
    ->Args({2, 64})
    ->Args({0, 1024})
    ->Args({1, 1024})
    ->Args({2, 1024});

}  // namespace

BENCHMARK_MAIN();
