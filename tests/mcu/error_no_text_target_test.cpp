// What a core built with NOMQ_ERROR_TEXT=0 promises (include/nomq/error.hpp): an Error is its
// code alone, its message is the code's name, nothing of a reason is kept, and the engine's
// refusals still carry the code a caller acts on. Linked into mcu_engine_lean, whose core is
// built that way (mcu/CMakeLists.txt); the error_test.cpp of the host covers the default build.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "mcu/target_crypto.hpp"
#include "nomq/engine.hpp"
#include "nomq/error.hpp"

namespace nomq {
namespace {

static_assert(!Error::kHasText, "this program's core is built with NOMQ_ERROR_TEXT=0");
static_assert(Error::kCapacity == 0);
// The code, the (always 0) length and the terminator: every Result<T> carries one of these.
static_assert(sizeof(Error) == 3);
static_assert(sizeof(Result<std::uint64_t>) <= 16);

TEST(ErrorNoText, AReasonIsDroppedAndTheMessageIsTheCodesName) {
  const Error e{Errc::too_many_channels, "subscribed to ", 8, " channels already: ", true, '!'};
  EXPECT_EQ(e.code(), Errc::too_many_channels);
  EXPECT_EQ(e.message(), std::string_view{"too_many_channels"});
  EXPECT_EQ(std::strcmp(e.c_str(), "too_many_channels"), 0);
  EXPECT_EQ(e.name(), e.message());
  EXPECT_EQ(e.domain(), ErrorDomain::api);
  Error appended{Errc::io_error};
  appended.append("send failed: ").append(-5);
  EXPECT_EQ(appended.message(), std::string_view{"io_error"});
  std::string printed;
  struct Sink {
    std::string* out;
    Sink& operator<<(std::string_view v) {
      out->append(v);
      return *this;
    }
  } sink{&printed};
  sink << e;
  EXPECT_EQ(printed, "too_many_channels");
}

TEST(ErrorNoText, TheEngineStillRefusesWithTheCodeToActOn) {
  const std::uint8_t enc[32] = {1};
  const std::uint8_t mac[32] = {2};
  auto crypto = mcu_test::make_target_crypto(Bytes{enc, 32}, Bytes{mac, 32});
  ASSERT_NE(crypto, nullptr);
  EngineConfig bad = EngineConfig::small_profile();
  bad.limits.max_message_size = 0;
  const Instant now{std::chrono::seconds(1'700'000'000)};
  auto refused = Engine::create(bad, *crypto, *crypto, now);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Errc::config_bad_field);
  EXPECT_EQ(refused.error().message(), std::string_view{"config_bad_field"});

  const EngineConfig c = EngineConfig::small_profile();
  auto engine = Engine::create(c, *crypto, *crypto, now);
  ASSERT_TRUE(engine.ok()) << engine.error();
  static const std::uint8_t body[300] = {};
  static_assert(sizeof body > 256, "above the small profile's max_message_size");
  auto id = engine->publish("plant/line1/temp", Bytes{body, sizeof body}, {}, now);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.error(), Errc::message_too_large);
  EXPECT_EQ(id.error().message(), std::string_view{"message_too_large"});
}

}  // namespace
}  // namespace nomq
