// `nomq pub` / `nomq sub` / `nomq demo` as separate processes on loopback. Every test has its
// own config (fresh keys) and its own group port on 127.255.255.255, so tests run in parallel
// and nothing leaves the host. Synchronisation is on output: a subscriber started with -d
// prints "nomq sub: ready" once it has announced its subscription.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <set>

#include "nomq/config.hpp"
#include "support/subprocess.hpp"

namespace nomq::test {
namespace {

using namespace std::chrono_literals;
using S = Process::Stream;

const std::string kNomq = NOMQ_BINARY;
constexpr Millis kStep = 15s;  // generous bound for one step on a loaded 2-core CI machine

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_udp_port();
    config_ = write_config("nomq.json", WireVersion::v2);
  }

  std::string write_config(const std::string& name, WireVersion wire,
                           std::uint32_t discovery_settle_ms = 30) {
    auto generated = generate_config();
    EXPECT_TRUE(generated.ok());
    NodeConfig c = *generated;
    c.wire = wire;
    c.discovery_settle_ms = discovery_settle_ms;
    c.group = "127.255.255.255";
    c.ip = "127.0.0.1";
    c.port = port_;
    if (keys_) {  // every config of a test shares the first one's keys (either form)
      c.key_form = keys_->key_form;
      c.encryption_key = keys_->encryption_key;
      c.hmac_key = keys_->hmac_key;
      c.master_secret = keys_->master_secret;
      c.group_id = keys_->group_id;
      c.key_epoch = keys_->key_epoch;
    } else {
      keys_ = c;
    }
    const std::string path = dir_.file(name);
    SaveOptions so;
    so.overwrite = true;
    auto st = save_config(c, path, ConfigFormat::json, so);
    EXPECT_TRUE(st.ok()) << st.error();
    return path;
  }

  // A config like write_config's, with fresh keys of its own: a node that cannot talk to the
  // others (the most common deployment mistake).
  std::string write_other_keys_config(const std::string& name) {
    auto generated = generate_config();
    EXPECT_TRUE(generated.ok());
    NodeConfig c = *generated;
    c.group = "127.255.255.255";
    c.ip = "127.0.0.1";
    c.port = port_;
    const std::string path = dir_.file(name);
    SaveOptions so;
    so.overwrite = true;
    auto st = save_config(c, path, ConfigFormat::json, so);
    EXPECT_TRUE(st.ok()) << st.error();
    return path;
  }

  // A subscriber without -d: --ready prints the ready line alone.
  Process quiet_sub(std::vector<std::string> extra, const std::string& config = "") {
    std::vector<std::string> argv{kNomq, "sub", "-c", config.empty() ? config_ : config, "--ready"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Process p = Process::spawn(argv);
    EXPECT_TRUE(p.wait_for_line(S::err, "nomq sub: ready", kStep)) << p.transcript();
    return p;
  }

  Process sub(std::vector<std::string> extra, const std::string& config = "") {
    std::vector<std::string> argv{kNomq, "sub", "-c", config.empty() ? config_ : config, "-d"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Process p = Process::spawn(argv);
    EXPECT_TRUE(p.wait_for_line(S::err, "nomq sub: ready", kStep)) << p.transcript();
    return p;
  }

  Process pub(std::vector<std::string> extra, const std::optional<std::string>& input = std::nullopt,
              const std::string& config = "") {
    std::vector<std::string> argv{kNomq, "pub", "-c", config.empty() ? config_ : config};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return Process::spawn(argv, input);
  }

  static int exit_of(Process& p, Millis timeout = kStep) {
    auto code = p.wait_exit(timeout);
    EXPECT_TRUE(code.has_value()) << "did not exit in time\n" << p.transcript();
    return code.value_or(-1);
  }

  TempDir dir_;
  std::uint16_t port_ = 0;
  std::string config_;
  std::optional<NodeConfig> keys_;
};

// --- QoS levels

TEST_F(CliTest, Qos0MessageReachesSubscriber) {
  Process s = sub({"-t", "a/b", "-C", "1", "-W", "20"});
  Process p = pub({"-t", "a/b", "-m", "hello", "-q", "0"});
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(s.out(), "hello\n");
}

TEST_F(CliTest, Qos1MessageIsAcknowledged) {
  Process s = sub({"-t", "a/b", "-C", "1", "-W", "20"});
  Process p = pub({"-t", "a/b", "-m", "one", "-q", "1", "--json"});
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(s.out(), "one\n");
  auto report = nlohmann::json::parse(p.out_lines().at(0));
  EXPECT_TRUE(report["acknowledged"].get<bool>());
  ASSERT_EQ(report["recipients"].size(), 1u);
  EXPECT_EQ(report["recipients"][0]["state"], "acknowledged");
}

TEST_F(CliTest, Qos2MessageDeliveredOnceAndHandshakeCompletes) {
  Process s = sub({"-t", "a/b", "-C", "1", "-W", "20"});
  Process p = pub({"-t", "a/b", "-m", "two", "-q", "2"});
  EXPECT_EQ(exit_of(p), 0) << p.transcript();  // 0 only after PUBCOMP
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(s.out(), "two\n");
}

TEST_F(CliTest, LinesFromStdinAreOneMessageEach) {
  Process s = sub({"-t", "log", "-C", "4", "-W", "20"});
  Process p = pub({"-t", "log", "-l", "-q", "1"}, std::string{"first\nsecond\n\nfourth\n"});
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  // QoS 1 keeps no order across retransmissions; compare as a set.
  auto lines = s.out_lines();
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"", "first", "fourth", "second"}));
}

TEST_F(CliTest, RepeatPublishesTheMessageNTimes) {
  Process s = sub({"-t", "r", "-C", "3", "-W", "20", "-v"});
  Process p = pub({"-t", "r", "-m", "x", "-q", "2", "--repeat", "3"});
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(s.out(), "r x\nr x\nr x\n");
}

// --- several subscribers on one host: all hear the group port

TEST_F(CliTest, ThreeSubscribersOnOneHostEachGetTheMessage) {
  std::vector<Process> subs;
  for (int i = 0; i < 3; ++i) subs.push_back(sub({"-t", "fan/out", "-C", "1", "-W", "20"}));
  // The report names the subscribers that answered the first solicitation within the settle
  // margin (docs/engine.md §3): a loaded CI machine may take longer than the default 30 ms to
  // run three processes' answers, so the publisher waits up to a second here.
  Process p = pub({"-t", "fan/out", "-m", "all", "-q", "1", "--json"}, std::nullopt,
                  write_config("settle.json", WireVersion::v2, /*discovery_settle_ms=*/1000));
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  for (auto& s : subs) {
    EXPECT_EQ(exit_of(s), 0) << s.transcript();
    EXPECT_EQ(s.out(), "all\n");
  }
  auto report = nlohmann::json::parse(p.out_lines().at(0));
  EXPECT_EQ(report["recipients"].size(), 3u) << p.out();
}

// --- retained message to a subscriber that starts after the publish

TEST_F(CliTest, RetainedMessageReachesLateSubscriber) {
  Process p = pub({"-t", "cfg/setpoint", "-m", "22.0", "-q", "1", "-r", "--wait", "20", "-d"});
  // The publish is queued (and waiting for a subscriber) before the subscriber starts.
  ASSERT_TRUE(p.wait_for_line(S::err, "published message", kStep)) << p.transcript();
  Process s = sub({"-t", "cfg/setpoint", "-C", "1", "-W", "20", "--json"});
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  auto msg = nlohmann::json::parse(s.out_lines().at(0));
  EXPECT_EQ(msg["message"], "22.0");
  EXPECT_EQ(msg["channel"], "cfg/setpoint");
  EXPECT_EQ(msg["qos"], 1);
}

// --- wildcard subscriptions (docs/engine.md §16) and clearing a retained value (§7)

TEST_F(CliTest, WildcardSubscriberOnLoopback) {
  // A retained value published before the subscriber starts, then live QoS 1 and QoS 2
  // messages on two channels the filter matches and one it does not.
  Process r = pub({"-t", "plant/b/temp", "-m", "19", "-q", "1", "-r", "--wait", "20", "-d"});
  ASSERT_TRUE(r.wait_for_line(S::err, "published message", kStep)) << r.transcript();
  Process s = sub({"-t", "plant/+/temp", "-C", "3", "-W", "20", "-v"});
  EXPECT_EQ(exit_of(r), 0) << r.transcript();
  Process p1 = pub({"-t", "plant/a/temp", "-m", "21", "-q", "1", "--json"});
  EXPECT_EQ(exit_of(p1), 0) << p1.transcript();
  Process p0 = pub({"-t", "plant/a/hum", "-m", "40", "-q", "1", "--wait", "0"});
  EXPECT_EQ(exit_of(p0), 1) << p0.transcript();  // nobody subscribes to plant/a/hum
  Process p2 = pub({"-t", "plant/c/temp", "-m", "23", "-q", "2"});
  EXPECT_EQ(exit_of(p2), 0) << p2.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  auto lines = s.out_lines();
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"plant/a/temp 21", "plant/b/temp 19",
                                             "plant/c/temp 23"}));
  auto report = nlohmann::json::parse(p1.out_lines().at(0));
  EXPECT_TRUE(report["acknowledged"].get<bool>());
  EXPECT_EQ(report["recipients"].size(), 1u);
}

TEST_F(CliTest, PublishingOnAFilterIsRefused) {
  Process p = pub({"-t", "plant/#", "-m", "x"});
  EXPECT_EQ(exit_of(p), 1) << p.transcript();
  EXPECT_NE(p.err().find("wildcards are for subscribing"), std::string::npos) << p.transcript();
  Process s = Process::spawn({kNomq, "sub", "-c", config_, "-t", "a/#/b", "-W", "1"});
  EXPECT_NE(exit_of(s), 0) << s.transcript();
  EXPECT_NE(s.err().find("whole level"), std::string::npos) << s.transcript();
}

TEST_F(CliTest, EmptyRetainedMessageClearsTheValue) {
  // A keeps the retained value as a subscriber (and would answer a late subscriber with it).
  Process a = sub({"-t", "cfg/mode", "-C", "3", "-W", "8", "-v"});
  Process set = pub({"-t", "cfg/mode", "-m", "eco", "-q", "1", "-r"});
  EXPECT_EQ(exit_of(set), 0) << set.transcript();
  Process clear = pub({"-t", "cfg/mode", "-r", "-n", "-q", "1"});
  EXPECT_EQ(exit_of(clear), 0) << clear.transcript();
  // A late subscriber gets nothing: A dropped its copy, the publishers kept none.
  Process late = sub({"-t", "cfg/mode", "-W", "3"});
  EXPECT_EQ(exit_of(late), 3) << late.transcript();
  EXPECT_EQ(late.out(), "");
  EXPECT_EQ(exit_of(a), 3) << a.transcript();  // -W: 2 of 3 messages
  EXPECT_EQ(a.out(), "cfg/mode eco\ncfg/mode \n");
}

// --- TTL

TEST_F(CliTest, QosMessageWithNobodyListeningEndsAtTtlAndFails) {
  Process p = pub({"-t", "void", "-m", "lost", "-q", "1", "--ttl", "1", "--wait", "60"});
  EXPECT_EQ(exit_of(p), 1) << p.transcript();
  EXPECT_NE(p.err().find("message 1 (\"lost\""), std::string::npos) << p.transcript();
  EXPECT_NE(p.err().find("not acknowledged"), std::string::npos) << p.transcript();
}

// --- priority and formats

TEST_F(CliTest, PriorityAndFieldsTravelToTheSubscriber) {
  Process s = sub({"-t", "alarm", "-C", "1", "-W", "20", "-F", "%t|%p|%q|%P|%l"});
  Process p = pub({"-t", "alarm", "-m", "hot", "-q", "1", "--priority", "9"});
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(s.out(), "alarm|hot|1|9|3\n");
}

TEST_F(CliTest, JsonOutputHasEveryField) {
  Process s = sub({"-t", "j", "-C", "1", "-W", "20", "--json"});
  Process p = pub({"-t", "j", "-m", "{\"v\":1}", "-q", "2", "--priority", "3"});
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  auto m = nlohmann::json::parse(s.out_lines().at(0));
  EXPECT_EQ(m["channel"], "j");
  EXPECT_EQ(m["message"], "{\"v\":1}");
  EXPECT_EQ(m["qos"], 2);
  EXPECT_EQ(m["retain"], false);
  EXPECT_EQ(m["priority"], 3);
  EXPECT_NE(m["sender"].get<std::string>().find("127.0.0.1:"), std::string::npos);
}

// --- wire v1 (the original's format): no discovery, QoS >= 1 goes to an explicit host

TEST_F(CliTest, WireV1Qos0ToTheGroup) {
  const std::string v1 = write_config("v1.json", WireVersion::v1);
  Process s = sub({"-t", "legacy", "-C", "1", "-W", "20"}, v1);
  Process p = pub({"-t", "legacy", "-m", "old", "-q", "0"}, std::nullopt, v1);
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(s.out(), "old\n");
}

TEST_F(CliTest, WireV1Qos1ToAHostIsAcknowledged) {
  const std::string v1 = write_config("v1.json", WireVersion::v1);
  Process s = sub({"-t", "legacy", "-C", "1", "-W", "20"}, v1);
  // -h with the group port: the only socket on it is the subscriber's group socket.
  Process p = pub({"-t", "legacy", "-m", "acked", "-q", "1", "-h", "127.0.0.1"}, std::nullopt, v1);
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(s.out(), "acked\n");
}

TEST_F(CliTest, WireVersionsDoNotMix) {
  Process s = sub({"-t", "x", "-C", "1", "-W", "2", "--wire", "v2"});
  Process p = pub({"-t", "x", "-m", "v1 talk", "-q", "0", "--wire", "v1"});
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 3) << s.transcript();
  EXPECT_EQ(s.out(), "");
  EXPECT_NE(s.err().find("dropped datagram"), std::string::npos) << s.transcript();  // -d names drops
}

// --- keys that differ (issue 15 §1): both sides say so, without -d

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

constexpr const char* kAuthHint = "that failed authentication: different keys or key epoch?";

TEST_F(CliTest, PublisherWithOtherKeysIsToldWhyNobodyAcknowledged) {
  Process s = quiet_sub({"-t", "plant/temp"});
  const std::string other = write_other_keys_config("other-keys.json");
  Process p = pub({"-t", "plant/temp", "-m", "21.5", "-q", "1", "--wait", "2"}, std::nullopt, other);
  EXPECT_EQ(exit_of(p), 1) << p.transcript();
  // The report line names what was heard but not understood.
  const auto line = p.wait_for_line(S::err, "not acknowledged", 1s);
  ASSERT_TRUE(line) << p.transcript();
  EXPECT_NE(line->find("no_subscribers"), std::string::npos) << *line;
  EXPECT_NE(line->find("from 127.0.0.1 " + std::string{kAuthHint}), std::string::npos) << *line;
  // The subscriber heard the publisher's datagrams and said so, once (rate-limited per host).
  ASSERT_TRUE(s.wait_for_line(S::err, kAuthHint, kStep)) << s.transcript();
  s.signal(SIGTERM);
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(count_of(s.err(), kAuthHint), 1u) << s.transcript();
  EXPECT_EQ(s.out(), "");
}

TEST_F(CliTest, SubscriberWarnsOncePerHostSendingWithOtherKeys) {
  const std::string other = write_other_keys_config("other-keys.json");
  Process s = quiet_sub({"-t", "plant/temp"}, other);
  Process p = pub({"-t", "plant/temp", "-m", "21.5", "-q", "0", "--repeat", "5"});
  EXPECT_EQ(exit_of(p), 0) << p.transcript();  // QoS 0: sent is all it promises
  const auto line = s.wait_for_line(S::err, kAuthHint, kStep);
  ASSERT_TRUE(line) << s.transcript();
  EXPECT_NE(line->find("from 127.0.0.1 that"), std::string::npos) << *line;
  s.signal(SIGINT);
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(count_of(s.err(), kAuthHint), 1u) << s.transcript();
  EXPECT_EQ(s.out(), "");
}

// --- mosquitto parity (issue 15 §3)

TEST_F(CliTest, GroupOptionOverridesTheConfigsGroupAndPort) {
  // A config whose group is the LAN broadcast on another port, as a legacy config always is:
  // --group keeps the trial on loopback.
  auto generated = generate_config();
  ASSERT_TRUE(generated.ok());
  NodeConfig c = *generated;
  c.port = free_udp_port();
  const std::string lan = dir_.file("lan.json");
  ASSERT_TRUE(save_config(c, lan, ConfigFormat::json).ok());
  const std::string group = std::string("127.255.255.255:").append(std::to_string(port_));
  Process s = sub({"-t", "g", "-C", "1", "-W", "20", "--group", group}, lan);
  EXPECT_NE(s.err().find(std::string("group 127.255.255.255:").append(std::to_string(port_))), std::string::npos) << s.transcript();
  Process p = pub({"-t", "g", "-m", "via group", "-q", "1", "--group", group}, std::nullopt, lan);
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(s.out(), "via group\n");
}

TEST_F(CliTest, SubFormatsIsoTimeJsonAndUpperHex) {
  Process s = sub({"-t", "f", "-C", "1", "-W", "20", "-F", "%I|%X|%j"});
  Process p = pub({"-t", "f", "-m", "{\"v\":1}", "-q", "1"});
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  const std::string line = s.out_lines().at(0);
  const auto bar = line.find('|');
  ASSERT_NE(bar, std::string::npos) << line;
  const std::string iso = line.substr(0, bar);  // 2026-12-05T12:00:00+0000
  ASSERT_EQ(iso.size(), 24u) << iso;
  EXPECT_EQ(iso[4], '-');
  EXPECT_EQ(iso[10], 'T');
  EXPECT_TRUE(iso[19] == '+' || iso[19] == '-') << iso;
  const auto bar2 = line.find('|', bar + 1);
  EXPECT_EQ(line.substr(bar + 1, bar2 - bar - 1), "7B2276223A317D");
  auto j = nlohmann::json::parse(line.substr(bar2 + 1));
  EXPECT_EQ(j["message"], "{\"v\":1}");
  EXPECT_EQ(j["timestamp"].get<std::string>().size(), 24u);  // 2026-12-05T12:00:00.123Z
  EXPECT_EQ(j["timestamp"].get<std::string>().back(), 'Z');
}

TEST_F(CliTest, SubJsonCarriesATimestampAndPercentBigJEmbedsJson) {
  Process s = sub({"-t", "f", "-C", "2", "-W", "20", "-F", "%J"});
  Process p = pub({"-t", "f", "-l", "-q", "1"}, std::string{"{\"v\":1}\nplain\n"});
  EXPECT_EQ(exit_of(p), 0) << p.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  std::set<std::string> kinds;
  for (const auto& l : s.out_lines()) {
    auto j = nlohmann::json::parse(l);
    EXPECT_TRUE(j.contains("timestamp")) << l;
    kinds.insert(j["message"].is_object() ? "object" : j["message"].get<std::string>());
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"object", "plain"}));
}

TEST_F(CliTest, SubFiltersOutChannelsAndOmitsNewlines) {
  Process s = sub({"-t", "a", "-t", "b", "-T", "b", "-N", "-C", "2", "-W", "20"});
  Process p1 = pub({"-t", "b", "-m", "hidden", "-q", "1"});
  EXPECT_EQ(exit_of(p1), 0) << p1.transcript();
  Process p2 = pub({"-t", "a", "-l", "-q", "1"}, std::string{"x\ny\n"});
  EXPECT_EQ(exit_of(p2), 0) << p2.transcript();
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_TRUE(s.out() == "xy" || s.out() == "yx") << s.out();
}

TEST_F(CliTest, RetainedOnlyAndNoRetained) {
  Process r = pub({"-t", "cfg", "-m", "kept", "-q", "1", "-r", "--wait", "20", "-d"});
  ASSERT_TRUE(r.wait_for_line(S::err, "published message", kStep)) << r.transcript();
  // --retained-only prints the retained value and ends at the first message without the flag.
  Process only = sub({"-t", "cfg", "--retained-only", "-W", "20"});
  EXPECT_EQ(exit_of(r), 0) << r.transcript();
  ASSERT_TRUE(only.wait_for_line(S::out, "kept", kStep)) << only.transcript();
  // -R skips it: a subscriber started now gets the retained value handed over, not printed.
  Process skip = sub({"-t", "cfg", "-R", "-C", "1", "-W", "20"});
  Process live = pub({"-t", "cfg", "-m", "live", "-q", "1"});
  EXPECT_EQ(exit_of(live), 0) << live.transcript();
  EXPECT_EQ(exit_of(only), 0) << only.transcript();
  EXPECT_EQ(only.out(), "kept\n");
  EXPECT_EQ(exit_of(skip), 0) << skip.transcript();
  EXPECT_EQ(skip.out(), "live\n");
}

TEST_F(CliTest, PubEndsCleanlyOnSignalNamingWhatWasNotAcknowledged) {
  for (int sig : {SIGTERM, SIGINT}) {
    Process q = pub({"-t", "nobody/here", "-m", "pending", "-q", "1", "--wait", "60", "-d"});
    ASSERT_TRUE(q.wait_for_line(S::err, "published message", kStep)) << q.transcript();
    q.signal(sig);
    EXPECT_EQ(exit_of(q), 1) << q.transcript();
    EXPECT_NE(q.err().find("nomq pub: interrupted after 1 message(s); not acknowledged:"), std::string::npos)
        << q.transcript();
    EXPECT_NE(q.err().find("message 1 (\"pending\""), std::string::npos) << q.transcript();
    EXPECT_NE(q.err().find("not acknowledged: closed"), std::string::npos) << q.transcript();
  }
}

TEST_F(CliTest, DebugLogDoesNotNameOwnPackets) {
  // Every group datagram comes back to its sender (its solicitations, its SUBSCRIBE): -d used
  // to print a line for each. The summary at exit still counts them.
  Process s = sub({"-t", "quiet", "-W", "0.5"});
  EXPECT_EQ(exit_of(s), 3) << s.transcript();
  EXPECT_NE(s.err().find("own_packet="), std::string::npos) << s.transcript();
  EXPECT_EQ(s.err().find(": own_packet\n"), std::string::npos) << s.transcript();  // no per-datagram line
}

// --- exit codes and mistakes

TEST_F(CliTest, PubExitsOneNamingTheMessageNobodyAcknowledged) {
  Process p = pub({"-t", "nobody", "-m", "m1", "-q", "2", "--wait", "0.3"});
  EXPECT_EQ(exit_of(p), 1) << p.transcript();
  EXPECT_NE(p.err().find("message 1 (\"m1\""), std::string::npos) << p.transcript();
}

TEST_F(CliTest, PubUsageMistakesExitTwoWithOneLineAndHint) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"-t", "c", "-m", "x", "-q", "3"}, "qos"},
      {{"-t", "c"}, "exactly one of -m, -f, -l, -s, -n"},
      {{"-t", "c", "-m", "x", "-n"}, "exactly one of"},
      {{"-t", "c", "-m", "x", "--priority", "16"}, "priority"},
      {{"-t", "c", "-m", "x", "-h", "not-an-address"}, "-h needs a numeric"},
      {{"-m", "x"}, "channel"},
  };
  for (const auto& c : cases) {
    Process p = pub(c.args);
    EXPECT_EQ(exit_of(p), 2) << p.transcript();
    EXPECT_NE(p.err().find(c.says), std::string::npos) << p.transcript();
    EXPECT_NE(p.err().find("Use 'nomq pub --help'"), std::string::npos) << p.transcript();
  }
}

TEST_F(CliTest, BadConfigExitsTwoNamingTheFile) {
  const std::string bad = dir_.file("bad.json");
  { std::FILE* f = std::fopen(bad.c_str(), "w"); std::fputs("{\"port\": 1}\n", f); std::fclose(f); }
  Process p = pub({"-t", "c", "-m", "x"}, std::nullopt, bad);
  EXPECT_EQ(exit_of(p), 2) << p.transcript();
  EXPECT_NE(p.err().find("bad.json"), std::string::npos) << p.transcript();
}

TEST_F(CliTest, HelpListsEveryOptionWithDefaults) {
  Process p = Process::spawn({kNomq, "pub", "--help"});
  EXPECT_EQ(exit_of(p), 0);
  for (const char* opt : {"-t", "-m", "-f", "-l", "-s", "-n", "-q", "-r", "--priority", "--ttl", "-h",
                          "-p", "--repeat", "--repeat-delay", "--wire", "--epoch", "-d", "--json", "--wait"})
    EXPECT_NE(p.out().find(opt), std::string::npos) << opt << "\n" << p.out();
  EXPECT_NE(p.out().find("{0,1,2}=0"), std::string::npos) << p.out();  // -q's default
  Process s = Process::spawn({kNomq, "sub", "--help"});
  EXPECT_EQ(exit_of(s), 0);
  for (const char* opt : {"-t", "-C", "-W", "-v", "-F", "--json", "--wire", "--epoch", "-p", "-d"})
    EXPECT_NE(s.out().find(opt), std::string::npos) << opt << "\n" << s.out();
}

// --- sub -C / -W / signals

TEST_F(CliTest, SubTimesOutWithExitThree) {
  Process s = sub({"-t", "quiet", "-C", "1", "-W", "0.5"});
  EXPECT_EQ(exit_of(s), 3) << s.transcript();
  EXPECT_EQ(s.out(), "");
}

TEST_F(CliTest, SubStopsAfterCountMessages) {
  Process s = sub({"-t", "n", "-C", "2", "-W", "20"});
  Process p = pub({"-t", "n", "-l", "-q", "1"}, std::string{"a\nb\nc\n"});
  EXPECT_EQ(exit_of(s), 0) << s.transcript();
  EXPECT_EQ(s.out_lines().size(), 2u) << s.transcript();
  // The third message may find the subscriber gone: pub reports it (exit 1) or got it acked.
  const int code = exit_of(p);
  EXPECT_TRUE(code == 0 || code == 1) << p.transcript();
}

TEST_F(CliTest, SubExitsCleanlyOnSigtermAndSigint) {
  for (int sig : {SIGTERM, SIGINT}) {
    Process s = sub({"-t", "forever"});
    s.signal(sig);
    EXPECT_EQ(exit_of(s), 0) << s.transcript();
  }
}

// --- the demo

TEST(Demo, RunsToSuccess) {
  Process d = Process::spawn({kNomq, "demo"});
  auto code = d.wait_exit(60s);
  ASSERT_TRUE(code.has_value()) << d.transcript();
  EXPECT_EQ(*code, 0) << d.transcript();
  EXPECT_NE(d.out().find("demo OK"), std::string::npos) << d.transcript();
  EXPECT_NE(d.out().find("(retained)"), std::string::npos) << d.transcript();
}

TEST(Demo, RunsTwiceAtOnce) {
  // Ephemeral group ports: two demos (or a demo next to other nodes) do not disturb each other.
  Process a = Process::spawn({kNomq, "demo"});
  Process b = Process::spawn({kNomq, "demo"});
  EXPECT_EQ(a.wait_exit(60s).value_or(-1), 0) << a.transcript();
  EXPECT_EQ(b.wait_exit(60s).value_or(-1), 0) << b.transcript();
}

}  // namespace
}  // namespace nomq::test
