// A `nomq pub` whose wall clock is stepped an hour (libfaketime, Debian `faketime`) while it
// streams QoS 2 messages to a `nomq sub` whose clock is right. The runtime drives every timer
// from CLOCK_MONOTONIC, which libfaketime leaves alone here (DONT_FAKE_MONOTONIC=1), and reads
// CLOCK_REALTIME only for wire timestamps. So while the clocks disagree the subscriber refuses
// the publisher's datagrams and says so (a clock_skew warning), the publisher keeps
// retransmitting at its usual pace, and once the clock is put back every message arrives
// exactly once and the publisher exits 0. With timers on the wall clock, the backward step
// stalls every retransmission for an hour and the test times out.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "nomq/config.hpp"
#include "support/subprocess.hpp"

namespace nomq::test {
namespace {

using namespace std::chrono_literals;
using S = Process::Stream;

const std::string kNomq = NOMQ_BINARY;
const std::string kFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
constexpr Millis kStep = 20s;  // generous bound for one step on a loaded 2-core CI machine
constexpr int kMessages = 16;

// libfaketime interposes clock_gettime; in a binary built with AddressSanitizer the sanitizer's
// own start-up calls it before libfaketime is initialised, and the process hangs
// ("Unexpected recursive calls to clock_gettime()"). The simulator's clock-step tests
// (tests/sim/clock_step_test.cpp) cover the same engine paths in that build.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUnderAsan = true;
#else
constexpr bool kUnderAsan = false;
#endif
#else
constexpr bool kUnderAsan = false;
#endif

class ClockStepProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    if (kUnderAsan) GTEST_SKIP() << "libfaketime (LD_PRELOAD) hangs an AddressSanitizer build at start-up";
    ASSERT_TRUE(std::filesystem::exists(kFaketime))
        << kFaketime << " is missing: apt-get install faketime (scripts/install-deps.sh does)";
    auto generated = generate_config();
    ASSERT_TRUE(generated.ok());
    NodeConfig c = *generated;
    c.group = "127.255.255.255";
    c.ip = "127.0.0.1";
    c.port = free_udp_port();
    config_ = dir_.file("nomq.json");
    SaveOptions so;
    so.overwrite = true;
    auto st = save_config(c, config_, ConfigFormat::json, so);
    ASSERT_TRUE(st.ok()) << st.error();
    offset_file_ = dir_.file("faketime");
    set_offset("+0");
  }

  // libfaketime re-reads the file on every clock call (FAKETIME_NO_CACHE=1).
  void set_offset(const std::string& offset) {
    std::ofstream f(offset_file_, std::ios::trunc);
    f << offset << "\n";
  }

  Process faked_pub(const std::vector<std::string>& extra) {
    std::vector<std::string> argv{"/usr/bin/env",
                                  "LD_PRELOAD=" + kFaketime,
                                  "FAKETIME_TIMESTAMP_FILE=" + offset_file_,
                                  "FAKETIME_NO_CACHE=1",
                                  "DONT_FAKE_MONOTONIC=1",
                                  kNomq, "pub", "-c", config_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return Process::spawn(argv);
  }

  // Streams kMessages QoS 2 messages; steps the publisher's wall clock by `step` once the
  // subscriber has some, puts it back once the subscriber reports the disagreement.
  void stream_through_a_step(const std::string& step, const std::string& seen_offset) {
    Process s = Process::spawn({kNomq, "sub", "-c", config_, "-d", "-t", "clk", "-C",
                                std::to_string(kMessages), "-W", "120"});
    ASSERT_TRUE(s.wait_for_line(S::err, "nomq sub: ready", kStep)) << s.transcript();
    Process p = faked_pub({"-t", "clk", "-m", "tick", "-q", "2", "--repeat",
                           std::to_string(kMessages), "--repeat-delay", "0.2"});
    ASSERT_TRUE(s.wait_for_lines(S::out, 3, kStep)) << s.transcript() << p.transcript();
    set_offset(step);
    const auto warned = s.wait_for_line(S::err, "differs from ours by " + seen_offset + " s", kStep);
    set_offset("+0");
    ASSERT_TRUE(warned) << "no clock_skew warning\n" << s.transcript() << p.transcript();
    const auto pub_code = p.wait_exit(60s);
    const auto sub_code = s.wait_exit(60s);
    ASSERT_TRUE(pub_code.has_value()) << "pub did not finish\n" << p.transcript();
    ASSERT_TRUE(sub_code.has_value()) << "sub did not finish\n" << s.transcript();
    EXPECT_EQ(*pub_code, 0) << p.transcript();  // every message acknowledged (PUBCOMP)
    EXPECT_EQ(*sub_code, 0) << s.transcript();  // exactly kMessages delivered
    const auto lines = s.out_lines();
    EXPECT_EQ(lines.size(), static_cast<std::size_t>(kMessages)) << s.transcript();
    for (const auto& l : lines) EXPECT_EQ(l, "tick");
  }

  TempDir dir_;
  std::string config_;
  std::string offset_file_;
};

TEST_F(ClockStepProcess, PublisherWallClockOneHourAheadThenBack) {
  stream_through_a_step("+3600", "3600");
}

TEST_F(ClockStepProcess, PublisherWallClockOneHourBehindThenBack) {
  stream_through_a_step("-3600", "-3600");
}

}  // namespace
}  // namespace nomq::test
