// Engine::create: the config check (field, value, limit in the message), the state block from
// a caller buffer or a memory resource, and Engine::state_bytes_for being exactly what
// construction takes (docs/engine.md §2).
#include <gtest/gtest.h>

#include <memory_resource>
#include <string>
#include <vector>

#include "core/engine_testing.hpp"
#include "test_support.hpp"

namespace nomq::engine_test {
namespace {

std::string message_of(const Result<Engine>& r) { return std::string(r.error().message()); }

TEST(EngineMemory, CreateRefusesABadConfigNamingFieldValueAndLimit) {
  TestCrypto c(1);
  EngineConfig zero;
  zero.limits.max_pending = 0;
  auto r = Engine::create(zero, c.crypto(), c.rng, kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), Errc::config_bad_field);
  EXPECT_NE(message_of(r).find("max_pending = 0"), std::string::npos) << message_of(r);
  EXPECT_NE(message_of(r).find("minimum 1"), std::string::npos) << message_of(r);

  EngineConfig big;
  big.limits.max_message_size = 70000;
  r = Engine::create(big, c.crypto(), c.rng, kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(message_of(r).find("max_message_size = 70000"), std::string::npos) << message_of(r);
  EXPECT_NE(message_of(r).find("65535"), std::string::npos) << message_of(r);

  EngineConfig tiny_pool;
  tiny_pool.limits.message_pool_bytes = 100;
  r = Engine::create(tiny_pool, c.crypto(), c.rng, kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(message_of(r).find("message_pool_bytes = 100"), std::string::npos) << message_of(r);

  EngineConfig window;
  window.replay_window = 32;
  EXPECT_FALSE(Engine::validate(window).ok());
  EXPECT_TRUE(Engine::validate(EngineConfig{}).ok());
}

TEST(EngineMemory, StateBytesForIsExactlyWhatConstructionTakes) {
  TestCrypto c(2);
  std::vector<EngineConfig> configs{EngineConfig{}, EngineConfig::seed_profile(),
                                    EngineConfig::small_profile()};
  EngineConfig v1 = EngineConfig::small_profile();
  v1.wire = WireVersion::v1;
  configs.push_back(v1);
  for (const EngineConfig& cfg : configs) {
    const std::size_t need = Engine::state_bytes_for(cfg);
    std::size_t sum = 0;
    for (const TableBytes& t : Engine::state_report_for(cfg)) sum += t.bytes;
    EXPECT_EQ(sum, need);
    std::vector<std::max_align_t> block(need / sizeof(std::max_align_t) + 1);
    auto bytes = std::as_writable_bytes(std::span{block});
    auto e = Engine::create(cfg, c.crypto(), c.rng, kT0, bytes.first(need));
    ASSERT_TRUE(e.ok()) << e.error();
    EXPECT_EQ(detail::EngineTesting::state_bytes_used(*e), need);
    EXPECT_EQ(e->state_bytes(), need);
    // One byte short: refused, naming the size needed.
    auto short_by_one = Engine::create(cfg, c.crypto(), c.rng, kT0, bytes.first(need - 1));
    ASSERT_FALSE(short_by_one.ok());
    EXPECT_EQ(short_by_one.error(), Errc::buffer_too_small);
    EXPECT_NE(message_of(short_by_one).find(std::to_string(need)), std::string::npos);
    // Misaligned: refused.
    auto misaligned = Engine::create(cfg, c.crypto(), c.rng, kT0, bytes.subspan(1, need));
    ASSERT_FALSE(misaligned.ok());
    EXPECT_EQ(misaligned.error(), Errc::invalid_argument);
  }
}

// A resource that counts what it hands out and gets back.
class CountingResource final : public std::pmr::memory_resource {
 public:
  std::size_t allocations = 0, deallocations = 0, bytes = 0;

 private:
  void* do_allocate(std::size_t n, std::size_t align) override {
    ++allocations;
    bytes += n;
    return std::pmr::new_delete_resource()->allocate(n, align);
  }
  void do_deallocate(void* p, std::size_t n, std::size_t align) override {
    ++deallocations;
    std::pmr::new_delete_resource()->deallocate(p, n, align);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
};

TEST(EngineMemory, AResourceIsAskedOnceForTheBlockAndGetsItBack) {
  TestCrypto c(3);
  CountingResource res;
  {
    auto e = Engine::create(EngineConfig::small_profile(), c.crypto(), c.rng, kT0, &res);
    ASSERT_TRUE(e.ok()) << e.error();
    Engine moved = std::move(e).value();  // the block moves with the engine
    ASSERT_TRUE(moved.subscribe("a/b", 0, kT0).ok());
    EXPECT_EQ(res.allocations, 1u);
    EXPECT_EQ(res.bytes, Engine::state_bytes_for(EngineConfig::small_profile()));
  }
  EXPECT_EQ(res.deallocations, 1u);
}

TEST(EngineMemory, TwoSmallProfileEnginesExchangeQos2Retained) {
  TestNet net;
  Node& pub = net.add(EngineConfig::small_profile(), 1);
  Node& sub = net.add(EngineConfig::small_profile(), 2);
  ASSERT_TRUE(sub.engine.subscribe("t", 0, net.now));
  net.run_for(std::chrono::seconds(2), std::chrono::milliseconds(1));
  PublishOptions o;
  o.qos = Qos::exactly_once;
  o.retain = true;
  ASSERT_TRUE(pub.engine.publish("t", bytes_of("hello"), o, net.now));
  net.run_for(std::chrono::seconds(2), std::chrono::milliseconds(1));
  ASSERT_EQ(sub.received.size(), 1u);
  EXPECT_EQ(sub.received[0].message, "hello");
  ASSERT_EQ(pub.reports.size(), 1u);
  EXPECT_EQ(pub.reports[0].reason, Errc::ok);
}

}  // namespace
}  // namespace nomq::engine_test
