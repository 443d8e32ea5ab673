// The engine API's errors say what was refused and which limit (and config key) refused it
// (src/core/engine_errors.cpp): the code for the program, the message for the person.
#include <gtest/gtest.h>

#include <string>

#include "test_support.hpp"

namespace nomq::engine_test {
namespace {

TEST(EngineErrors, LimitsAreNamedWithTheirValueAndConfigKey) {
  EngineConfig cfg;
  cfg.limits.max_channels = 2;
  cfg.limits.max_message_size = 8;
  cfg.limits.max_pending = 1;
  TestNet net;
  Engine& e = net.add(cfg, 1).engine;

  const auto long_name = e.subscribe(std::string(300, 'x'), 0, net.now);
  EXPECT_EQ(long_name.error(), Errc::channel_name_too_long);
  EXPECT_EQ(long_name.error().message(), "channel name of 300 bytes: at most 255");

  ASSERT_TRUE(e.subscribe("a", 0, net.now));
  ASSERT_TRUE(e.subscribe("b", 0, net.now));
  const auto third = e.subscribe("c", 0, net.now);
  EXPECT_EQ(third.error(), Errc::too_many_channels);
  EXPECT_EQ(third.error().message(), "subscribed to 2 channels, the limit (config key max_channels)");

  const auto big = e.publish("a", bytes_of("123456789"), {}, net.now);
  EXPECT_EQ(big.error(), Errc::message_too_large);
  EXPECT_EQ(big.error().message(), "message of 9 bytes: at most 8 (max_message_size)");

  net.pump();
  PublishOptions q;
  q.qos = Qos::at_least_once;
  ASSERT_TRUE(e.publish("a", bytes_of("1"), q, net.now));
  const auto full = e.publish("a", bytes_of("2"), q, net.now);
  EXPECT_EQ(full.error(), Errc::too_many_pending);
  EXPECT_EQ(full.error().message().substr(0, 70),
            "1 QoS 1/2 publishes await acknowledgement, the limit (max_pending): wa");
}

TEST(EngineErrors, AMessageAboveOneDatagramSaysItsSizes) {
  EngineConfig cfg;
  cfg.limits.max_message_size = 4000;
  TestNet net;
  Engine& e = net.add(cfg, 1).engine;
  const auto r = e.publish("c", bytes_of(std::string(2000, 'x')), {}, net.now);
  EXPECT_EQ(r.error(), Errc::message_too_large);
  EXPECT_EQ(r.error().message().substr(0, 54),
            "message of 2000 bytes on a channel name of 1 bytes nee");
  EXPECT_NE(r.error().message().find("bytes: at most 2048"), std::string_view::npos)
      << r.error();
}

TEST(EngineErrors, InvalidArgumentsSayWhichArgument) {
  TestNet net;
  Engine& e = net.add(EngineConfig{}, 1).engine;
  EXPECT_EQ(e.subscribe("", 0, net.now).error().message(), "channel name is empty");
  EXPECT_EQ(e.subscribe("\xc0\x80", 0, net.now).error().message(),
            "channel name is not valid UTF-8");
  PublishOptions prio;
  prio.priority = 16;
  EXPECT_EQ(e.publish("a", bytes_of("x"), prio, net.now).error().message(),
            "priority 16: must be 0..15");
  PublishOptions qos;
  qos.qos = static_cast<Qos>(3);
  EXPECT_EQ(e.publish("a", bytes_of("x"), qos, net.now).error().message(),
            "qos 3: must be 0, 1 or 2");
  ASSERT_TRUE(e.subscribe("plant/temp", 0, net.now));
  const auto again = e.subscribe("plant/temp", 4, net.now);
  EXPECT_EQ(again.error(), Errc::already_subscribed);
  EXPECT_EQ(again.error().message(), "already subscribed to 'plant/temp' (its priority is updated)");
  e.close(net.now);
  EXPECT_EQ(e.publish("a", bytes_of("x"), {}, net.now).error().message(),
            "the engine is closed (close() was called)");
}

}  // namespace
}  // namespace nomq::engine_test
