// Three "hosts" (network namespaces) joined by a bridge in a fourth, created and deleted by each
// test: `nomq pub` and `nomq sub` run in them through `ip netns exec`. Broadcast and multicast
// delivery, QoS 1/2 under 20% random loss (nftables), a subscriber killed and restarted, an
// interface taken down and up. Traffic never leaves the namespaces. Needs root (CAP_NET_ADMIN);
// skipped with a message where namespaces cannot be created.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "nomq/config.hpp"
#include "support/subprocess.hpp"

namespace nomq::test {
namespace {

using namespace std::chrono_literals;
using S = Process::Stream;

const std::string kNomq = NOMQ_BINARY;
const std::string kIp = NOMQ_IP_BINARY;
const std::string kNft = NOMQ_NFT_BINARY;
constexpr Millis kStep = 20s;

// Runs a command quietly; true on exit 0.
bool run(const std::vector<std::string>& argv, std::string* output = nullptr) {
  Process p = Process::spawn(argv);
  auto code = p.wait_exit(30s);
  if (output) *output = p.out() + p.err();
  return code && *code == 0;
}

// The namespaces of one test. Names carry the pid and a counter, so parallel tests and leftovers
// of a killed run never collide; the destructor deletes them on every path.
class Lab {
 public:
  static constexpr int kHosts = 3;

  Lab() {
    static std::atomic<int> counter{0};
    prefix_ = std::string("nq").append(std::to_string(::getpid() % 100000)) + "x" + std::to_string(counter++);
  }
  ~Lab() {
    for (const auto& ns : created_) run({kIp, "netns", "del", ns});
  }

  std::string host(int i) const { return prefix_ + "h" + std::to_string(i); }
  std::string address(int i) const { return std::string("10.77.0.").append(std::to_string(i + 1)); }
  static constexpr const char* kDev = "nqeth";

  // Builds the lab; on failure returns the reason (the test skips).
  std::optional<std::string> build() {
    const std::string sw = prefix_ + "sw";
    std::string out;
    if (!add_ns(sw, out)) return "cannot create network namespaces (" + out + ")";
    for (int i = 0; i < kHosts; ++i)
      if (!add_ns(host(i), out)) return "cannot create network namespaces (" + out + ")";
    // Snooping off: the bridge floods multicast to every port, as a plain switch without an
    // IGMP querier effectively does.
    if (!ip({"-n", sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"}, out) ||
        !ip({"-n", sw, "link", "set", "br0", "up"}, out))
      return "cannot create a bridge (" + out + ")";
    for (int i = 0; i < kHosts; ++i) {
      const std::string port = std::string("p").append(std::to_string(i));
      if (!ip({"-n", sw, "link", "add", port, "type", "veth", "peer", "name", kDev, "netns", host(i)}, out) ||
          !ip({"-n", sw, "link", "set", port, "master", "br0", "up"}, out) ||
          !ip({"-n", host(i), "addr", "add", address(i) + "/24", "brd", "+", "dev", kDev}, out) ||
          !ip({"-n", host(i), "addr", "add", std::string("fd77::").append(std::to_string(i + 1)) + "/64", "dev", kDev, "nodad"}, out) ||
          !ip({"-n", host(i), "link", "set", kDev, "up"}, out) ||
          !ip({"-n", host(i), "link", "set", "lo", "up"}, out))
        return "cannot wire the namespaces (" + out + ")";
    }
    return std::nullopt;
  }

  // Every host drops 20% of the UDP datagrams it receives, so each direction of every path
  // loses 20%. (An output rule as well would make it 36% per direction, and turn drops into
  // EPERM at the sender.)
  bool add_loss(int percent) {
    for (int i = 0; i < kHosts; ++i) {
      std::string rules = "table inet nqloss {\n chain in {\n  type filter hook input priority 0; policy accept;\n"
                          "  meta l4proto udp numgen random mod 100 < ";
      rules += std::to_string(percent);
      rules += " drop\n }\n}\n";
      Process p = Process::spawn({kIp, "netns", "exec", host(i), kNft, "-f", "-"}, rules);
      if (p.wait_exit(10s).value_or(-1) != 0) {
        ADD_FAILURE() << "nft failed: " << p.transcript();
        return false;
      }
    }
    return true;
  }

  bool ip(const std::vector<std::string>& args, std::string& out) {
    std::vector<std::string> argv{kIp};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, &out);
  }

  std::vector<std::string> in(int i, std::vector<std::string> argv) const {
    std::vector<std::string> full{kIp, "netns", "exec", host(i)};
    full.insert(full.end(), argv.begin(), argv.end());
    return full;
  }

 private:
  bool add_ns(const std::string& name, std::string& out) {
    if (!run({kIp, "netns", "add", name}, &out)) return false;
    created_.push_back(name);
    return true;
  }
  std::string prefix_;
  std::vector<std::string> created_;
};

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "network namespace tests need root (CAP_NET_ADMIN); skipped";
    if (auto why = lab_.build()) GTEST_SKIP() << "network namespace tests skipped: " << *why;
  }

  std::string config(const std::string& group, const std::string& interface = "", std::uint32_t ttl = 3600,
                     std::uint16_t unicast_port = 0) {
    const bool v6 = group.find(':') != std::string::npos;
    if (!keys_) {
      auto g = generate_config();
      EXPECT_TRUE(g.ok());
      keys_ = *g;
    }
    NodeConfig c = *keys_;
    c.group = group;
    c.group_interface = interface;
    c.use_ipv6 = v6;
    c.ip = v6 ? "::" : "0.0.0.0";
    c.port = 8888;  // the seed's port: the namespaces are ours alone
    c.unicast_port = unicast_port;
    c.default_ttl_s = static_cast<std::uint16_t>(ttl);
    const std::string path = dir_.file(std::string("nomq-").append(std::to_string(++configs_)) + ".json");
    SaveOptions so;
    so.overwrite = true;
    auto st = save_config(c, path, ConfigFormat::json, so);
    EXPECT_TRUE(st.ok()) << st.error();
    return path;
  }

  Process sub(int host, const std::string& cfg, std::vector<std::string> extra) {
    std::vector<std::string> argv{kNomq, "sub", "-c", cfg, "-d"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Process p = Process::spawn(lab_.in(host, argv));
    EXPECT_TRUE(p.wait_for_line(S::err, "nomq sub: ready", kStep)) << p.transcript();
    return p;
  }

  Process pub(int host, const std::string& cfg, std::vector<std::string> extra,
              const std::optional<std::string>& input = std::nullopt, bool keep_stdin = false) {
    std::vector<std::string> argv{kNomq, "pub", "-c", cfg};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return Process::spawn(lab_.in(host, argv), input, keep_stdin);
  }

  static std::string numbered(int from, int to) {
    std::string s;
    for (int i = from; i <= to; ++i) s += std::string("m").append(std::to_string(i)) + "\n";
    return s;
  }

  // message -> how many times a subscriber printed it
  static std::map<std::string, int> tally(const Process& p) {
    std::map<std::string, int> t;
    for (const auto& line : p.out_lines()) ++t[line];
    return t;
  }

  void stream_under_loss(const std::string& qos, int n, std::vector<std::map<std::string, int>>& tallies) {
    const std::string cfg = config("10.77.0.255");
    Process b = sub(1, cfg, {"-t", "lossy"});
    Process c = sub(2, cfg, {"-t", "lossy"});
    Process p = pub(0, cfg, {"-t", "lossy", "-l", "-q", qos, "-d"}, std::nullopt, /*keep_stdin=*/true);
    p.write_stdin("warmup\n");
    ASSERT_TRUE(b.wait_for_line(S::out, "warmup", kStep)) << b.transcript() << p.transcript();
    ASSERT_TRUE(c.wait_for_line(S::out, "warmup", kStep)) << c.transcript() << p.transcript();
    ASSERT_TRUE(lab_.add_loss(20));
    p.write_stdin(numbered(1, n));
    p.close_stdin();
    // Exit 0 means every message was acknowledged by both subscribers.
    EXPECT_EQ(p.wait_exit(180s).value_or(-1), 0) << p.transcript();
    for (Process* s : {&b, &c}) {
      s->signal(SIGTERM);
      EXPECT_EQ(s->wait_exit(kStep).value_or(-1), 0) << s->transcript();
      tallies.push_back(tally(*s));
    }
    const std::string summary = p.err().substr(p.err().rfind("nomq pub:") == std::string::npos ? 0 : p.err().rfind("nomq pub:"));
    std::printf("QoS %s under 20%% loss: %s", qos.c_str(), summary.c_str());
  }

  Lab lab_;
  TempDir dir_;
  std::optional<NodeConfig> keys_;
  int configs_ = 0;
};

TEST_F(NetnsTest, BroadcastReachesEveryOtherHost) {
  const std::string cfg = config("10.77.0.255");
  Process b = sub(1, cfg, {"-t", "plant/temp", "-C", "1", "-W", "30"});
  Process c = sub(2, cfg, {"-t", "plant/temp", "-C", "1", "-W", "30"});
  Process p = pub(0, cfg, {"-t", "plant/temp", "-m", "21.5", "-q", "1", "--json"});
  EXPECT_EQ(p.wait_exit(kStep).value_or(-1), 0) << p.transcript();
  EXPECT_EQ(b.wait_exit(kStep).value_or(-1), 0) << b.transcript();
  EXPECT_EQ(c.wait_exit(kStep).value_or(-1), 0) << c.transcript();
  EXPECT_EQ(b.out(), "21.5\n");
  EXPECT_EQ(c.out(), "21.5\n");
  auto report = nlohmann::json::parse(p.out_lines().at(0));
  EXPECT_EQ(report["recipients"].size(), 2u) << p.out();
}

TEST_F(NetnsTest, MulticastReachesEveryOtherHost) {
  const std::string cfg = config("239.77.0.1", Lab::kDev);
  Process b = sub(1, cfg, {"-t", "m", "-C", "1", "-W", "30"});
  Process c = sub(2, cfg, {"-t", "m", "-C", "1", "-W", "30"});
  Process p = pub(0, cfg, {"-t", "m", "-m", "via multicast", "-q", "2"});
  EXPECT_EQ(p.wait_exit(kStep).value_or(-1), 0) << p.transcript();
  EXPECT_EQ(b.wait_exit(kStep).value_or(-1), 0) << b.transcript();
  EXPECT_EQ(c.wait_exit(kStep).value_or(-1), 0) << c.transcript();
  EXPECT_EQ(b.out(), "via multicast\n");
  EXPECT_EQ(c.out(), "via multicast\n");
}


TEST_F(NetnsTest, Ipv6MulticastReachesEveryOtherHost) {
  // Site scope (ff15), not link scope (ff12): with a link-scope group, source address selection
  // switches from the ULA to the link-local address once the latter's DAD completes, and a
  // node's announcements would then come from a second address.
  const std::string cfg = config("ff15::77:1", Lab::kDev);
  Process b = sub(1, cfg, {"-t", "v6", "-C", "1", "-W", "30"});
  Process c = sub(2, cfg, {"-t", "v6", "-C", "1", "-W", "30"});
  Process p = pub(0, cfg, {"-t", "v6", "-m", "over ipv6", "-q", "1", "--json", "-d"});
  EXPECT_EQ(p.wait_exit(kStep).value_or(-1), 0) << p.transcript();
  EXPECT_EQ(b.wait_exit(kStep).value_or(-1), 0) << b.transcript();
  EXPECT_EQ(c.wait_exit(kStep).value_or(-1), 0) << c.transcript();
  EXPECT_EQ(b.out(), "over ipv6\n");
  EXPECT_EQ(c.out(), "over ipv6\n");
  auto report = nlohmann::json::parse(p.out_lines().at(0));
  EXPECT_EQ(report["recipients"].size(), 2u) << p.out();
}

// Subscribers on hosts 1 and 2, a publisher on host 0. Discovery happens before the loss is
// switched on (a "warmup" message both subscribers print), so that what is measured is QoS
// under loss: every message of the stream is then published to both known subscribers.
TEST_F(NetnsTest, Qos1UnderTwentyPercentLossDeliversEveryMessageAtLeastOnce) {
  const int n = 30;
  std::vector<std::map<std::string, int>> tallies;
  stream_under_loss("1", n, tallies);
  for (auto& t : tallies)
    for (int i = 1; i <= n; ++i) EXPECT_GE(t[std::string("m").append(std::to_string(i))], 1) << "m" << i << " missing";
}

TEST_F(NetnsTest, Qos2UnderTwentyPercentLossDeliversEveryMessageExactlyOnce) {
  const int n = 30;
  std::vector<std::map<std::string, int>> tallies;
  stream_under_loss("2", n, tallies);
  for (auto& t : tallies) {
    for (int i = 1; i <= n; ++i) EXPECT_EQ(t[std::string("m").append(std::to_string(i))], 1) << "m" << i;
    EXPECT_EQ(t.size(), static_cast<std::size_t>(n) + 1);  // + the warmup message
  }
}

TEST_F(NetnsTest, SubscriberKilledAndRestartedStillGetsEveryQosMessageWithinTtl) {
  // The subscriber's own port is fixed (config unicast_port), as a device's would be: its
  // restart is then the same endpoint under a new session, and the publisher re-targets what
  // the dead session never acknowledged.
  const std::string cfg = config("10.77.0.255", "", /*ttl=*/30, /*unicast_port=*/9999);
  Process first = sub(1, cfg, {"-t", "stream"});
  Process p = pub(0, cfg, {"-t", "stream", "-l", "-q", "1", "--json", "-d"}, std::nullopt, /*keep_stdin=*/true);
  p.write_stdin(numbered(1, 5));
  ASSERT_TRUE(first.wait_for_line(S::out, "m5", kStep)) << first.transcript() << p.transcript();
  first.signal(SIGKILL);  // no unsubscribe, no goodbye: the publisher still believes in it
  ASSERT_TRUE(first.wait_exit(kStep).has_value());
  p.write_stdin(numbered(6, 10));  // published while nobody listens on host 1
  Process second = sub(1, cfg, {"-t", "stream"});  // a new session on the same endpoint
  p.write_stdin(numbered(11, 15));
  p.close_stdin();
  EXPECT_EQ(p.wait_exit(60s).value_or(-1), 0) << p.transcript() << second.transcript();
  ASSERT_TRUE(second.wait_for_line(S::out, "m15", kStep)) << second.transcript() << p.transcript();
  auto t = tally(second);
  for (int i = 6; i <= 15; ++i) EXPECT_GE(t[std::string("m").append(std::to_string(i))], 1) << "m" << i << "\n" << second.transcript();
  std::printf("restart: new subscriber printed %zu lines (m6..m15 expected)\n", second.out_lines().size());
  second.signal(SIGTERM);
  EXPECT_EQ(second.wait_exit(kStep).value_or(-1), 0);
}

TEST_F(NetnsTest, SubscriberRestartedOnANewPortGetsNewMessagesAndNothingIsLostSilently) {
  // Ephemeral subscriber ports: the restarted subscriber is a new endpoint. What was published
  // to the dead session is delivered to the new one or reported not acknowledged at TTL expiry.
  const std::string cfg = config("10.77.0.255", "", /*ttl=*/10);
  Process first = sub(1, cfg, {"-t", "stream"});
  Process p = pub(0, cfg, {"-t", "stream", "-l", "-q", "1", "--json"}, std::nullopt, /*keep_stdin=*/true);
  p.write_stdin(numbered(1, 5));
  ASSERT_TRUE(first.wait_for_line(S::out, "m5", kStep)) << first.transcript() << p.transcript();
  first.signal(SIGKILL);
  ASSERT_TRUE(first.wait_exit(kStep).has_value());
  p.write_stdin(numbered(6, 10));
  Process second = sub(1, cfg, {"-t", "stream"});
  p.write_stdin(numbered(11, 15));
  p.close_stdin();
  const int code = p.wait_exit(60s).value_or(-1);
  EXPECT_TRUE(code == 0 || code == 1) << p.transcript();
  ASSERT_TRUE(second.wait_for_line(S::out, "m15", kStep)) << second.transcript() << p.transcript();
  auto t = tally(second);
  std::set<std::string> failed;
  for (const auto& line : p.out_lines()) {
    auto r = nlohmann::json::parse(line);
    if (!r["acknowledged"].get<bool>()) failed.insert(std::string("m").append(std::to_string(r["index"].get<int>())));
  }
  for (int i = 11; i <= 15; ++i) EXPECT_GE(t[std::string("m").append(std::to_string(i))], 1) << "m" << i << "\n" << second.transcript();
  for (int i = 6; i <= 10; ++i) {
    const std::string m = std::string("m").append(std::to_string(i));
    EXPECT_TRUE(t[m] >= 1 || failed.count(m)) << m << " neither delivered nor reported\n" << p.transcript();
  }
  std::printf("restart on a new port: %zu message(s) reported not acknowledged, new subscriber printed %zu lines, pub exit %d\n",
              failed.size(), second.out_lines().size(), code);
  second.signal(SIGTERM);
  EXPECT_EQ(second.wait_exit(kStep).value_or(-1), 0);
}

TEST_F(NetnsTest, InterfaceDownAndUpReinitialisesAndDelivers) {
  const std::string cfg = config("10.77.0.255");
  Process b = sub(1, cfg, {"-t", "link"});
  Process p = pub(0, cfg, {"-t", "link", "-l", "-q", "1", "--wait", "30", "-d"}, std::nullopt, true);
  p.write_stdin("before\n");
  ASSERT_TRUE(b.wait_for_line(S::out, "before", kStep)) << b.transcript() << p.transcript();
  std::string out;
  ASSERT_TRUE(lab_.ip({"-n", lab_.host(0), "link", "set", Lab::kDev, "down"}, out)) << out;
  p.write_stdin("during\n");
  // The send fails (no route while the link is down) and the node re-initialises its sockets.
  EXPECT_TRUE(p.wait_for_line(S::err, "re-initialising", kStep)) << p.transcript();
  ASSERT_TRUE(lab_.ip({"-n", lab_.host(0), "link", "set", Lab::kDev, "up"}, out)) << out;
  p.write_stdin("after\n");
  p.close_stdin();
  EXPECT_TRUE(b.wait_for_line(S::out, "during", 60s)) << b.transcript() << p.transcript();
  EXPECT_TRUE(b.wait_for_line(S::out, "after", kStep)) << b.transcript() << p.transcript();
  EXPECT_EQ(p.wait_exit(60s).value_or(-1), 0) << p.transcript();
  for (const auto& needle : {"send to", "re-initialis"})  // what the runtime did, for the CI log
    if (auto line = p.wait_for_line(S::err, needle, Millis{0})) std::printf("pub: %s\n", line->c_str());
  b.signal(SIGTERM);
  EXPECT_EQ(b.wait_exit(kStep).value_or(-1), 0);
}

// Issue 13 item 3, "rotation under load between namespaces": a QoS 1 stream (host 0) and a
// QoS 2 stream (host 2) to a subscriber on host 1, each process with its own config file.
// Mid-stream the subscriber's file is rotated with `nomq keygen --rotate` and copied to the
// publishers' (the deployment step); the subscriber gets SIGHUP, then, a second later, both
// publishers. key_overlap_s is 6: each process sends under the new epoch 3 s after its SIGHUP
// and refuses the old one after 6 s; the streams go on past every switch. Every message
// arrives exactly once and both publishers exit 0 (every message acknowledged).
TEST_F(NetnsTest, KeyRotationUnderLoadLosesAndDuplicatesNothing) {
  const auto started = std::chrono::steady_clock::now();
  auto with_overlap = [&] {
    const std::string path = config("10.77.0.255");
    auto loaded = load_config(path);
    EXPECT_TRUE(loaded.ok());
    NodeConfig c = loaded->config;
    c.key_overlap_s = 6;
    SaveOptions so;
    so.overwrite = true;
    EXPECT_TRUE(save_config(c, path, ConfigFormat::json, so).ok());
    return path;
  };
  const std::string cfg_sub = with_overlap();
  const std::string cfg_q1 = with_overlap();
  const std::string cfg_q2 = with_overlap();
  Process s = sub(1, cfg_sub, {"-t", "rot/q1", "-t", "rot/q2"});
  Process p1 = pub(0, cfg_q1, {"-t", "rot/q1", "-l", "-q", "1"}, std::nullopt, /*keep_stdin=*/true);
  Process p2 = pub(2, cfg_q2, {"-t", "rot/q2", "-l", "-q", "2"}, std::nullopt, /*keep_stdin=*/true);
  p1.write_stdin("q1-warmup\n");
  p2.write_stdin("q2-warmup\n");
  ASSERT_TRUE(s.wait_for_line(S::out, "q1-warmup", kStep)) << s.transcript() << p1.transcript();
  ASSERT_TRUE(s.wait_for_line(S::out, "q2-warmup", kStep)) << s.transcript() << p2.transcript();

  constexpr int kMessages = 200;  // 40 ms apart: 8 s of streams
  for (int i = 1; i <= kMessages; ++i) {
    p1.write_stdin("q1-" + std::to_string(i) + "\n");
    p2.write_stdin("q2-" + std::to_string(i) + "\n");
    if (i == 40) {  // 1.6 s in: rotate, deploy, SIGHUP the subscriber
      std::string out;
      ASSERT_TRUE(run({kNomq, "keygen", "--rotate", "-o", cfg_sub}, &out)) << out;
      EXPECT_NE(out.find("to key epoch 1"), std::string::npos) << out;
      ASSERT_TRUE(run({"/bin/cp", "-p", cfg_sub, cfg_q1}, &out)) << out;
      ASSERT_TRUE(run({"/bin/cp", "-p", cfg_sub, cfg_q2}, &out)) << out;
      s.signal(SIGHUP);
    }
    if (i == 65) {  // a second later: the publishers
      p1.signal(SIGHUP);
      p2.signal(SIGHUP);
    }
    std::this_thread::sleep_for(40ms);  // pacing the stream, not waiting for a result
  }
  p1.close_stdin();
  p2.close_stdin();
  EXPECT_EQ(p1.wait_exit(60s).value_or(-1), 0) << p1.transcript();
  EXPECT_EQ(p2.wait_exit(60s).value_or(-1), 0) << p2.transcript();
  EXPECT_TRUE(s.wait_for_lines(S::out, 2 * kMessages + 2, kStep)) << s.transcript();
  s.signal(SIGTERM);
  EXPECT_EQ(s.wait_exit(kStep).value_or(-1), 0) << s.transcript();
  for (const Process* p : {&s, &p1, &p2}) {
    EXPECT_NE(p->err().find("SIGHUP: key epoch 1 from"), std::string::npos) << p->transcript();
  }
  const auto t = tally(s);
  int lost = 0;
  int duplicated = 0;
  for (const char* stream : {"q1-", "q2-"}) {
    for (int i = 1; i <= kMessages; ++i) {
      const auto it = t.find(stream + std::to_string(i));
      const int n = it == t.end() ? 0 : it->second;
      lost += n == 0;
      duplicated += n > 1 ? n - 1 : 0;
    }
  }
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicated, 0);
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("key rotation under load: %d QoS 1 + %d QoS 2 messages, %d lost, %d duplicated, %.1f s\n",
              kMessages, kMessages, lost, duplicated, secs);
}

}  // namespace
}  // namespace nomq::test
