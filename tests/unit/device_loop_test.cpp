// The reference device loop (nomq/device_loop.hpp) over a simulated platform: a shared
// simulated clock that advances while a loop waits, a seeded lossy "network" between the
// platforms' sockets, and counters of what the loop asked the platform. The lwIP port runs the
// same loop against Linux nodes in tests/lwip (root); this runs everywhere, deterministically.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "nomq/device_loop.hpp"
#include "sim/prng.hpp"
#include "test_support.hpp"

namespace nomq::engine_test {
namespace {

using namespace std::chrono_literals;

struct SimNet;

// One device's platform: its socket's inbox, the clocks of the network it is on.
class SimPlatform final : public Platform {
 public:
  SimPlatform(SimNet& net, Endpoint self) : net_(net), self_(self) {}
  Instant monotonic_now() noexcept override;
  WallTime wall_now() noexcept override;
  Result<void> entropy(MutableBytes out) noexcept override {
    if (entropy_fails) return Error{Errc::crypto_failure, "entropy: simulated TRNG failure"};
    for (auto& b : out) b = static_cast<std::uint8_t>(++entropy_counter);
    return {};
  }
  Result<void> udp_open(const Endpoint& local) noexcept override {
    open = local.valid();
    return open ? Result<void>{} : Result<void>{Errc::invalid_argument};
  }
  Result<void> udp_join(const Endpoint&) noexcept override { return {}; }
  Result<void> udp_send(const Endpoint& to, Bytes datagram) noexcept override;
  Result<ReceivedDatagram> udp_receive(MutableBytes buffer, Duration timeout) noexcept override;
  void udp_close() noexcept override { open = false; }

  const Endpoint& self() const { return self_; }
  std::deque<std::pair<Endpoint, std::vector<std::uint8_t>>> inbox;
  std::vector<Duration> waits;  // the timeouts the loop passed to udp_receive
  bool open = false;
  bool entropy_fails = false;
  bool receive_fails = false;
  bool send_fails = false;
  unsigned entropy_counter = 0;

 private:
  SimNet& net_;
  Endpoint self_;
};

// The shared clock and the links: a datagram is lost with probability loss_percent / 100.
struct SimNet {
  explicit SimNet(std::uint64_t seed, unsigned loss) : prng(seed), loss_percent(loss) {}
  Instant now = kT0;
  sim::Prng prng;
  unsigned loss_percent;
  std::vector<SimPlatform*> nodes;
  std::uint64_t lost = 0;
  void deliver(const Endpoint& from, const Endpoint& to, bool to_group, Bytes d) {
    for (auto* n : nodes) {
      if (n->self() == from || !(to_group || n->self() == to)) continue;
      if (prng.below(100) < loss_percent) {
        ++lost;
        continue;
      }
      n->inbox.emplace_back(from, std::vector<std::uint8_t>(d.begin(), d.end()));
    }
  }
};

const Endpoint kGroup = Endpoint::v4(239, 1, 2, 3, 8888);

Instant SimPlatform::monotonic_now() noexcept { return net_.now; }
WallTime SimPlatform::wall_now() noexcept { return wall_at(net_.now); }
Result<void> SimPlatform::udp_send(const Endpoint& to, Bytes datagram) noexcept {
  if (send_fails) return Error{Errc::io_error, "udp_send: simulated failure"};
  net_.deliver(self_, to, to == kGroup, datagram);
  return {};
}
Result<ReceivedDatagram> SimPlatform::udp_receive(MutableBytes buffer, Duration timeout) noexcept {
  waits.push_back(timeout);
  if (receive_fails) return Error{Errc::io_error, "udp_receive: simulated failure"};
  if (inbox.empty()) {
    net_.now += timeout;  // the wait passes on the shared clock
    return Errc::timed_out;
  }
  auto [from, bytes] = std::move(inbox.front());
  inbox.pop_front();
  const std::size_t n = std::min(bytes.size(), buffer.size());
  std::copy_n(bytes.begin(), n, buffer.begin());
  return ReceivedDatagram{from, n};
}

// A device: platform, crypto, the engine's state in a caller buffer, the loop, what it saw.
struct Device {
  Device(SimNet& net, std::uint8_t host, std::uint64_t seed)
      : platform(net, Endpoint::v4(10, 0, 0, host, 8888)), crypto(seed) {
    net.nodes.push_back(&platform);
    const EngineConfig cfg = EngineConfig::small_profile();
    state.resize(Engine::state_bytes_for(cfg) + Engine::kStateAlign);
    auto aligned = std::span<std::byte>(state);
    while (reinterpret_cast<std::uintptr_t>(aligned.data()) % Engine::kStateAlign) aligned = aligned.subspan(1);
    auto made = Engine::create(cfg, crypto.crypto(), crypto.rng, platform.monotonic_now(),
                               aligned.first(Engine::state_bytes_for(cfg)));
    EXPECT_TRUE(made.ok()) << made.error();
    engine = std::make_unique<Engine>(std::move(made).value());
    EXPECT_TRUE(platform.udp_open(Endpoint::v4(0, 0, 0, 0, 8888)).ok());
    loop = std::make_unique<DeviceLoop>(*engine, platform, kGroup, &Device::on_event, this);
  }
  static void on_event(void* context, const Event& event) {
    auto& d = *static_cast<Device*>(context);
    if (const auto* m = std::get_if<MessageEvent>(&event))
      d.messages.emplace_back(reinterpret_cast<const char*>(m->message.data()), m->message.size());
    if (const auto* r = std::get_if<DeliveryReport>(&event)) (r->all_acknowledged() ? d.acknowledged : d.failed)++;
  }
  SimPlatform platform;
  TestCrypto crypto;
  std::vector<std::byte> state;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<DeviceLoop> loop;
  std::vector<std::string> messages;
  int acknowledged = 0, failed = 0;
};

TEST(DeviceLoop, TwoDevicesExchangeQos2UnderTwentyPercentLoss) {
  const std::uint64_t seed = 1201;
  SimNet net(seed, 0);
  Device pub(net, 1, seed), sub(net, 2, seed + 1);
  ASSERT_TRUE(sub.engine->subscribe("plant/valve", 0, net.now).ok());
  // Discovery without loss, then 20 % loss on every delivery.
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(pub.loop->run_once(10ms).ok());
    ASSERT_TRUE(sub.loop->run_once(10ms).ok());
  }
  net.loss_percent = 20;
  const int n = 20;
  int published = 0;
  for (int turn = 0; turn < 20000 && (pub.acknowledged + pub.failed < n); ++turn) {
    if (published < n) {
      const std::string m = std::string("m").append(std::to_string(published));
      PublishOptions o;
      o.qos = Qos::exactly_once;
      if (pub.engine->publish("plant/valve", Bytes{reinterpret_cast<const std::uint8_t*>(m.data()), m.size()}, o, net.now))
        ++published;
    }
    ASSERT_TRUE(pub.loop->run_once(50ms).ok());
    ASSERT_TRUE(sub.loop->run_once(50ms).ok());
  }
  EXPECT_EQ(pub.acknowledged, n) << "seed " << seed;
  EXPECT_EQ(pub.failed, 0) << "seed " << seed;
  // Exactly once each (in any order: a retransmitted message arrives after later ones).
  std::vector<std::string> expected, got = sub.messages;
  for (int i = 0; i < n; ++i) expected.push_back(std::string("m").append(std::to_string(i)));
  std::sort(expected.begin(), expected.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, expected) << "seed " << seed;
  EXPECT_GT(net.lost, 0u);
  // Losses were recovered through the loop's timer path (handle_timeout -> retransmissions).
  EXPECT_GT(pub.engine->stats().retransmissions, 0u) << "seed " << seed;
  EXPECT_EQ(pub.loop->stats().send_errors, 0u);
  EXPECT_EQ(pub.loop->stats().sent, pub.engine->stats().datagrams_sent);
  EXPECT_EQ(sub.loop->stats().received, sub.engine->stats().datagrams_received);
}

TEST(DeviceLoop, WaitsNoLongerThanTheEnginesNextDeadline) {
  SimNet net(1, 0);
  Device d(net, 1, 7);
  const auto deadline = d.engine->next_deadline();
  ASSERT_TRUE(deadline.has_value());  // the start-up solicitation rounds
  const Duration until = *deadline - net.now;
  ASSERT_LT(until, 1s);
  ASSERT_TRUE(d.loop->run_once(1s).ok());
  ASSERT_FALSE(d.platform.waits.empty());
  EXPECT_EQ(d.platform.waits.front(), until);
  // And never longer than max_wait.
  ASSERT_TRUE(d.loop->run_once(1us).ok());
  EXPECT_LE(d.platform.waits.back(), 1us);
}

TEST(DeviceLoop, ReceiveErrorsAreReturnedSendErrorsCounted) {
  SimNet net(1, 0);
  Device d(net, 1, 7);
  d.platform.send_fails = true;
  ASSERT_TRUE(d.loop->run_once(10ms).ok());  // the first solicitation could not be sent
  EXPECT_GT(d.loop->stats().send_errors, 0u);
  EXPECT_EQ(d.loop->stats().sent, 0u);
  d.platform.receive_fails = true;
  auto r = d.loop->run_once(10ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), Errc::io_error);
  EXPECT_NE(std::string(r.error().message()).find("simulated failure"), std::string::npos) << r.error();
}

TEST(DeviceLoop, PlatformEntropyPollHasMbedtlsEntropyConventions) {
  SimNet net(1, 0);
  SimPlatform p(net, Endpoint::v4(10, 0, 0, 1, 8888));
  std::array<unsigned char, 8> out{};
  EXPECT_EQ(platform_entropy_poll(&p, out.data(), out.size()), 0);
  EXPECT_EQ(out[7], 8);
  p.entropy_fails = true;
  EXPECT_EQ(platform_entropy_poll(&p, out.data(), out.size()), -1);
}

}  // namespace
}  // namespace nomq::engine_test
