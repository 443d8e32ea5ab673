// nomq::Node in one process on loopback: both threading modes, thread-safe publish, close()
// reports, signatures, broadcast and multicast group sockets shared by several nodes.
// Loopback only: group 127.255.255.255 or a multicast group on "lo", ports picked by the kernel.
#include "nomq/node.hpp"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include "nomq/config.hpp"
#include "nomq/crypto_backend.hpp"
#include "nomq/key_schedule.hpp"
#include "nomq/openssl_crypto.hpp"
#include "nomq/wire.hpp"

namespace nomq {
namespace {

using namespace std::chrono_literals;

NodeOptions loopback_options(WireVersion wire = WireVersion::v2, const std::string& group = "127.255.255.255",
                             const std::string& interface = "") {
  auto config = generate_config();
  EXPECT_TRUE(config.ok());
  config->wire = wire;
  config->group = group;
  config->group_interface = interface;
  const bool v6 = group.find(':') != std::string::npos;
  config->use_ipv6 = v6;
  config->ip = v6 ? "::1" : "127.0.0.1";
  config->port = 0;
  auto options = to_node_options(*config);
  EXPECT_TRUE(options.ok()) << options.error();
  return *options;
}

std::unique_ptr<Node> make(NodeOptions& options) {
  auto node = Node::create(options);
  EXPECT_TRUE(node.ok()) << node.error();
  if (!node) return nullptr;
  options.network.group = (*node)->group();  // later nodes share the first one's group port
  return std::move(*node);
}

PublishOptions qos(Qos q) {
  PublishOptions o;
  o.qos = q;
  o.wait_for_subscribers = 5s;
  return o;
}

TEST(Node, GroupPortZeroIsPickedOnceAndShared) {
  auto options = loopback_options();
  auto a = make(options);
  auto b = make(options);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->group().port, 0);
  EXPECT_EQ(a->group(), b->group());
  EXPECT_NE(a->local_endpoint().port, a->group().port);
  EXPECT_NE(a->local_endpoint(), b->local_endpoint());
}

TEST(Node, CallerLoopModeDeliversAndReports) {
  auto options = loopback_options();
  auto sub = make(options);
  auto pub = make(options);
  ASSERT_TRUE(sub && pub);
  auto inbox = sub->listen();
  ASSERT_TRUE(sub->subscribe("t/x").ok());
  // No start(): the publisher's loop is turned by wait_for, the subscriber's by next().
  auto h = pub->publish("t/x", "payload", qos(Qos::at_least_once));
  ASSERT_TRUE(h.ok());
  std::optional<Message> got;
  std::optional<Delivery> report;
  for (int i = 0; i < 200 && !(got && report); ++i) {
    if (!got) got = inbox.next(10ms);
    if (!report) report = h->wait_for(10ms);
  }
  ASSERT_TRUE(got);
  EXPECT_EQ(got->message, "payload");
  EXPECT_EQ(got->channel, "t/x");
  EXPECT_EQ(got->qos, Qos::at_least_once);
  EXPECT_EQ(got->from, pub->local_endpoint());
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->all_acknowledged());
  ASSERT_EQ(report->recipients.size(), 1u);
  EXPECT_EQ(report->recipients[0].endpoint, sub->local_endpoint());
  EXPECT_EQ(sub->run_once(0ms).error(), Errc::ok);
}

// Node::Batch: publishes within it leave in sendmmsg() batches of 32 (NodeStats::batches_sent
// counts the calls), the rest when the last batch ends; nothing is lost or reordered.
TEST(Node, BatchSendsPublishesInSendmmsgBatchesOf32) {
  auto options = loopback_options();
  auto sub = make(options);
  auto pub = make(options);
  ASSERT_TRUE(sub && pub);
  auto inbox = sub->listen();
  ASSERT_TRUE(sub->subscribe("b").ok());
  ASSERT_TRUE(sub->start().ok());
  PublishOptions to_sub;
  to_sub.destination = sub->local_endpoint();
  // The publisher's loop never runs (caller-loop mode, no run_once): only publish() and the
  // end of a batch send. A first plain publish flushes whatever the node queued at start.
  ASSERT_TRUE(pub->publish("b", "m-first", to_sub).ok());
  const auto calls = [&] { return pub->stats().batches_sent; };
  const std::uint64_t before = calls();
  ASSERT_TRUE(pub->publish("b", "m-plain", to_sub).ok());
  EXPECT_EQ(calls(), before + 1) << "without a batch, one sendmmsg per publish";
  {
    Node::Batch outer = pub->batch();
    for (int i = 0; i < 31; ++i) ASSERT_TRUE(pub->publish("b", std::string("m").append(std::to_string(i)), to_sub).ok());
    EXPECT_EQ(calls(), before + 1) << "31 publishes wait for a full batch";
    ASSERT_TRUE(pub->publish("b", "m31", to_sub).ok());
    EXPECT_EQ(calls(), before + 2) << "the 32nd fills one sendmmsg";
    {
      Node::Batch inner = pub->batch();
      for (int i = 32; i < 38; ++i) ASSERT_TRUE(pub->publish("b", std::string("m").append(std::to_string(i)), to_sub).ok());
      Node::Batch moved = std::move(inner);  // a moved-from batch ends nothing
    }
    EXPECT_EQ(calls(), before + 2) << "the inner batch ending leaves the outer one holding";
  }
  EXPECT_EQ(calls(), before + 3) << "the last batch ending sends the remaining 6 at once";
  std::vector<std::string> got;
  while (got.size() < 40) {
    auto m = inbox.next(5s);
    if (!m) break;
    got.push_back(m->message);
  }
  std::vector<std::string> want{"m-first", "m-plain"};
  for (int i = 0; i < 38; ++i) want.push_back(std::string("m").append(std::to_string(i)));
  EXPECT_EQ(got, want);
  // A batch may outlive close(); ending it then does nothing.
  Node::Batch late = pub->batch();
  EXPECT_TRUE(pub->close().empty());
}

TEST(Node, BackgroundThreadsAndPublishFromManyThreads) {
  auto options = loopback_options();
  auto sub = make(options);
  auto pub = make(options);
  ASSERT_TRUE(sub && pub);
  std::atomic<int> callbacks{0};
  sub->on_message([&](const Message&) { ++callbacks; });
  auto inbox = sub->listen();
  ASSERT_TRUE(sub->subscribe("many").ok());
  ASSERT_TRUE(sub->start().ok());
  ASSERT_TRUE(pub->start().ok());
  EXPECT_EQ(pub->start().error(), Errc::invalid_argument);
  EXPECT_EQ(pub->run_once(0ms).error(), Errc::invalid_argument);
  // The first one waits for the subscription to be known; then four threads publish at once.
  auto first = pub->publish("many", "t0-0", qos(Qos::at_least_once));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->wait_for(5s).value_or(Delivery{}).all_acknowledged());
  constexpr int kThreads = 4, kEach = 10;  // 40 pending at most: under the default limit of 50
  std::vector<std::thread> threads;
  std::vector<std::vector<PublishHandle>> handles(kThreads);
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto h = pub->publish("many", std::string("t").append(std::to_string(t + 1)) + "-" + std::to_string(i), qos(Qos::exactly_once));
        ASSERT_TRUE(h.ok()) << h.error();
        handles[t].push_back(*h);
      }
    });
  for (auto& th : threads) th.join();
  for (auto& hs : handles)
    for (auto& h : hs) EXPECT_TRUE(h.wait_for(10s).value_or(Delivery{}).all_acknowledged());
  std::set<std::string> seen;
  while (auto m = inbox.next(seen.size() < 1 + kThreads * kEach ? 2s : 0ms)) EXPECT_TRUE(seen.insert(m->message).second) << m->message;
  EXPECT_EQ(seen.size(), 1u + kThreads * kEach);
  EXPECT_EQ(callbacks.load(), 1 + kThreads * kEach);
  EXPECT_TRUE(pub->close().empty());
  EXPECT_TRUE(pub->close().empty());  // idempotent
  EXPECT_EQ(pub->publish("many", "late").error(), Errc::closed);
}

TEST(Node, CloseReportsWhatWasNotDelivered) {
  auto options = loopback_options();
  auto pub = make(options);
  ASSERT_TRUE(pub);
  // An explicit destination where nobody answers (a port we hold but never read).
  auto silent_options = loopback_options();
  silent_options.network.listen_group = false;
  auto silent = make(silent_options);
  ASSERT_TRUE(silent);
  PublishOptions o = qos(Qos::at_least_once);
  o.destination = silent->local_endpoint();
  auto h = pub->publish("void", "nobody reads this", o);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(pub->pending_count(), 1u);
  const auto left = pub->close();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].message_id, h->message_id());
  EXPECT_EQ(left[0].reason, Errc::closed);
  ASSERT_TRUE(h->ready());
  EXPECT_EQ(h->wait().reason, Errc::closed);
}

TEST(Node, BackgroundLoopRunsTheTimersOfAPublishFromAnotherThread) {
  // The loop's thread waits for its earliest timer; a QoS 1 publish sets an earlier one (its
  // retransmission), so publish() must wake the loop, or the retransmissions wait for the
  // next heartbeat (30 s).
  auto options = loopback_options();
  options.engine.timers.retransmit_initial = 10ms;
  options.engine.max_retries = 2;
  auto pub = make(options);
  auto silent_options = loopback_options();
  silent_options.network.listen_group = false;
  auto silent = make(silent_options);  // a port we hold but never read
  ASSERT_TRUE(pub && silent);
  ASSERT_TRUE(pub->start().ok());
  PublishOptions o = qos(Qos::at_least_once);
  o.destination = silent->local_endpoint();
  auto h = pub->publish("void", "nobody reads this", o);
  ASSERT_TRUE(h.ok());
  const auto d = h->wait_for(20s);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->reason, Errc::timed_out);
  EXPECT_EQ(pub->stats().engine.retransmissions, 2u);
}

TEST(Node, APublishThatEndsAtOnceCompletesItsHandleWithinTheCall) {
  auto options = loopback_options();
  options.engine.timers.discovery_period = 0ms;  // no start-up period during which publishes wait
  auto pub = make(options);
  ASSERT_TRUE(pub);
  ASSERT_TRUE(pub->start().ok());
  PublishOptions o = qos(Qos::at_least_once);
  o.wait_for_subscribers = 0ms;
  auto h = pub->publish("nobody/listens", "x", o);
  ASSERT_TRUE(h.ok());
  // Reported by the engine inside publish(): no turn of the loop's thread is needed.
  EXPECT_TRUE(h->ready());
  EXPECT_EQ(h->wait_for(0ms).value_or(Delivery{}).reason, Errc::no_subscribers);
}

TEST(Node, QoS0HandlesOnOneChannelEachKeepTheirOwnMessageId) {
  auto options = loopback_options();
  options.network.listen_group = false;
  auto pub = make(options);
  ASSERT_TRUE(pub);
  auto a = pub->publish("same/channel", "1");
  auto b = pub->publish("same/channel", "2");
  auto c = pub->publish("other/channel", "3");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_NE(a->message_id(), b->message_id());
  for (auto* h : {&*a, &*b, &*c}) {
    ASSERT_TRUE(h->ready());
    const Delivery d = h->wait();
    EXPECT_EQ(d.message_id, h->message_id());
    EXPECT_EQ(d.qos, Qos::at_most_once);
    EXPECT_TRUE(d.all_acknowledged());
  }
  EXPECT_EQ(a->wait().channel, "same/channel");
  EXPECT_EQ(c->wait().channel, "other/channel");
}

TEST(Node, ListenerReadersWakeWhenTheNodeCloses) {
  auto options = loopback_options();
  auto node = make(options);
  ASSERT_TRUE(node);
  auto inbox = node->listen();
  ASSERT_TRUE(node->subscribe("quiet").ok());
  ASSERT_TRUE(node->start().ok());
  std::thread reader([&] { EXPECT_FALSE(inbox.next(60s).has_value()); });
  node->close();
  reader.join();  // returns at close, not after 60 s
  auto late = node->listen();
  EXPECT_FALSE(late.next(60s).has_value());  // a closed node has nothing to wait for
}

TEST(Node, ThreeNodesOnOneHostAllHearTheGroup) {
  for (const char* group : {"127.255.255.255", "239.255.77.1"}) {
    SCOPED_TRACE(group);
    auto options = loopback_options(WireVersion::v2, group, std::string{group}.starts_with("239") ? "lo" : "");
    auto pub = make(options);
    std::vector<std::unique_ptr<Node>> subs;
    std::vector<Listener> inboxes;
    for (int i = 0; i < 3; ++i) {
      subs.push_back(make(options));
      ASSERT_TRUE(subs.back());
      inboxes.push_back(subs.back()->listen());
      ASSERT_TRUE(subs.back()->subscribe("g").ok());
      ASSERT_TRUE(subs.back()->start().ok());
    }
    ASSERT_TRUE(pub->start().ok());
    // QoS 0 goes to the group address once: every node's group socket must get it.
    for (int attempt = 0; attempt < 1; ++attempt) ASSERT_TRUE(pub->publish("g", "to all").ok());
    for (auto& in : inboxes) {
      auto m = in.next(5s);
      ASSERT_TRUE(m);
      EXPECT_EQ(m->message, "to all");
    }
  }
}

// Whether this host routes IPv6 multicast out of lo (it needs lo's MULTICAST flag, which is
// off by default; the namespace tests cover IPv6 multicast on their own interfaces).
bool ipv6_multicast_on_lo() {
  const int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  unsigned idx = ::if_nametoindex("lo");
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(9);
  ::inet_pton(AF_INET6, "ff12::7a:1", &to.sin6_addr);
  to.sin6_scope_id = idx;
  const bool ok = ::sendto(fd, "", 0, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
  ::close(fd);
  return ok;
}

TEST(Node, IPv6MulticastOnLoopback) {
  if (!ipv6_multicast_on_lo())
    GTEST_SKIP() << "this host does not route IPv6 multicast on lo (no MULTICAST flag); "
                    "IPv6 multicast is covered by NetnsTest.Ipv6MulticastReachesEveryOtherHost";
  auto options = loopback_options(WireVersion::v2, "ff12::7a:1", "lo");
  auto sub = make(options);
  auto pub = make(options);
  ASSERT_TRUE(sub && pub);
  EXPECT_EQ(sub->local_endpoint().family, Endpoint::Family::ipv6);
  auto inbox = sub->listen();
  ASSERT_TRUE(sub->subscribe("v6").ok());
  ASSERT_TRUE(sub->start().ok());
  ASSERT_TRUE(pub->start().ok());
  auto h = pub->publish("v6", "over ipv6", qos(Qos::exactly_once));
  ASSERT_TRUE(h.ok());
  auto m = inbox.next(5s);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->message, "over ipv6");
  EXPECT_TRUE(h->wait_for(5s).value_or(Delivery{}).all_acknowledged());
}

TEST(Node, LoadReadsAConfigFile) {
  auto config = generate_config();
  ASSERT_TRUE(config.ok());
  config->group = "127.255.255.255";
  config->ip = "127.0.0.1";
  config->port = 0;
  config->log_level = LogLevel::off;
  const std::string path = ::testing::TempDir() + "/node_test_load.json";
  SaveOptions so;
  so.overwrite = true;
  ASSERT_TRUE(save_config(*config, path, ConfigFormat::json, so).ok());
  auto node = Node::load(path);
  ASSERT_TRUE(node.ok()) << node.error();
  EXPECT_EQ((*node)->wire(), WireVersion::v2);
  // The error says which file and why, not only config_unreadable.
  const auto missing = Node::load(path + ".missing");
  EXPECT_EQ(missing.error(), Errc::config_unreadable);
  EXPECT_EQ(missing.error().message(), path + ".missing: No such file or directory");
}

// v2: HMAC-SHA256 under the application-signature key of the key schedule (derived here
// from the master secret independently of the node); v1 (raw keys, as the original's devices
// hold them): SHA-256(message || hmac_key).
TEST(Node, SignaturesAreHmacUnderTheirOwnKeyOnV2AndTheOriginalsKeyedHashOnV1) {
  for (WireVersion wire : {WireVersion::v2, WireVersion::v1}) {
    auto options = loopback_options(wire);
    if (wire == WireVersion::v1) {
      auto raw = generate_config(KeyForm::raw);
      ASSERT_TRUE(raw.ok());
      options.master_secret.reset();
      options.encryption_key = raw->encryption_key;
      options.hmac_key = raw->hmac_key;
    }
    options.network.listen_group = false;
    const auto master = options.master_secret;
    auto node = make(options);
    ASSERT_TRUE(node);
    const Digest sig = node->gen_signature("auth");
    Digest expected{};
    if (wire == WireVersion::v2) {
      ASSERT_TRUE(master.has_value());
      Key k{};
      ASSERT_TRUE(derive_key(&OpenSslCrypto::hkdf_sha256, *master, KeyPurpose::app_signature,
                             KeyContext{.group_id = options.group_id, .key_epoch = 0,
                                        .wire = WireVersion::v2},
                             k));
      unsigned int len = 0;
      ASSERT_NE(HMAC(EVP_sha256(), k.data(), static_cast<int>(k.size()),
                     reinterpret_cast<const unsigned char*>("auth"), 4, expected.data(), &len),
                nullptr);
    } else {
      // The original: SHA-256(message || hmac_key), computed here without the library.
      std::string data = "auth";
      data.append(reinterpret_cast<const char*>(options.hmac_key.data()), options.hmac_key.size());
      unsigned int len = 0;
      ASSERT_EQ(EVP_Digest(data.data(), data.size(), expected.data(), &len, EVP_sha256(), nullptr), 1);
    }
    EXPECT_EQ(sig, expected);
    EXPECT_TRUE(node->authenticate(sig, "auth"));
    EXPECT_FALSE(node->authenticate(sig, "auth2"));
    Digest tampered = sig;
    tampered[31] ^= 1;
    EXPECT_FALSE(node->authenticate(tampered, "auth"));
    EXPECT_FALSE(node->authenticate(Bytes{sig.data(), 31}, "auth"));
  }
}

// Finding H1 (docs/security.md), the reviewer's forgery, against a live node's gen_signature.
// Before the fix gen_signature(m) was HMAC-SHA256(wire MAC key, m), i.e. the v2 packet MAC of
// m. Someone without the keys who captured a QoS 0 PUBLISH "valve=0" rewrote it into a QoS 1
// PUBLISH "valve=1" of a fresh session: header fields edited in clear, the first CBC plaintext
// block (which holds the whole short body here) changed by XORing the IV, and the MAC obtained
// by having the rewritten bytes signed through gen_signature. The receiver delivered and
// acknowledged it. This test makes that forged datagram and checks:
//  (1) the control: the same bytes closed with HMAC under the wire MAC key (what the old
//      gen_signature returned) decode as an authentic QoS 1 "valve=1": the attack works on the
//      codec as it is, so this test would fail if gen_signature were the wire MAC again;
//  (2) closed with the signature the node gives now, they are bad_mac at the codec, and a
//      subscribed node receiving them delivers nothing and counts one bad_mac drop;
//  (3) a captured datagram's MAC is not a valid signature of its bytes for authenticate().
TEST(AppSignatureForgery, GenSignatureCannotMacAForgedDatagram) {
  auto options = loopback_options();
  auto victim = make(options);
  ASSERT_TRUE(victim);
  auto sub = victim->subscribe("v");
  ASSERT_TRUE(sub.ok()) << sub.error();
  auto inbox = victim->listen();

  // The wire keys of the group (the test plays the honest sender whose datagram is captured).
  WireKeys keys;
  ASSERT_TRUE(derive_wire_keys(backend_hkdf(), *options.master_secret,
                               KeyContext{.group_id = options.group_id, .key_epoch = 0,
                                          .wire = WireVersion::v2},
                               keys));
  auto sender = make_crypto(keys.encryption, keys.mac);
  ASSERT_TRUE(sender.ok());
  wire::Packet p;
  p.type = wire::PacketType::publish;
  p.flags = wire::publish_flags(0, false, 0);
  p.packet_id = 7;
  p.session_id = 0x11111111;
  p.ttl = 60;
  (*sender)->random_bytes(p.iv);
  const auto wall = std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
  p.timestamp = wire_seconds(WallTime{wall.time_since_epoch()}, 0);
  p.channel_id = wire::channel_id(**sender, "v");
  p.body.message_id = 99;
  p.body.channel = "v";
  p.body.message = as_bytes("valve=0");
  std::array<std::uint8_t, wire::kMaxDatagram> captured{};
  auto n = wire::encode(p, **sender, captured);
  ASSERT_TRUE(n.ok()) << n.error();
  ASSERT_EQ(*n, 101u);  // one cipher block: message_id, name_len, "v", "valve=0" fit in 13 bytes

  // The attacker's edits, all without keys.
  std::array<std::uint8_t, wire::kMaxDatagram> forged = captured;
  forged[4] = wire::publish_flags(1, false, 0);  // QoS 1
  store_be32(forged.data() + 5, 1);              // sequence number 1
  store_be32(forged.data() + 9, 0x22222222);     // a fresh session
  forged[15 + 12] ^= '0' ^ '1';                  // plaintext byte 12: '0' -> '1' through the IV
  const std::size_t mac_at = *n - wire::kMacSize;
  const std::string_view prefix{reinterpret_cast<const char*>(forged.data()), mac_at};

  wire::DecodeOptions opts;
  opts.wall = WallTime{wall.time_since_epoch()};
  std::array<std::uint8_t, wire::kMaxDatagram> scratch{};

  // (1) The control: closed as the old gen_signature did, the forgery is authentic.
  const Digest old_signature = (*sender)->hmac_sha256(as_bytes(prefix));
  std::copy(old_signature.begin(), old_signature.end(), forged.begin() + static_cast<long>(mac_at));
  auto control = wire::decode(Bytes{forged.data(), *n}, **sender, opts, scratch);
  ASSERT_TRUE(control.ok()) << control.error();
  EXPECT_EQ(control->qos(), 1);
  EXPECT_EQ(control->session_id, 0x22222222u);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(control->body.message.data()),
                             control->body.message.size()),
            "valve=1");

  // (2) Closed with what gen_signature gives now: rejected before anything is decrypted.
  const Digest now_signature = victim->gen_signature(prefix);
  EXPECT_NE(now_signature, old_signature);
  std::copy(now_signature.begin(), now_signature.end(), forged.begin() + static_cast<long>(mac_at));
  auto verdict = wire::decode(Bytes{forged.data(), *n}, **sender, opts, scratch);
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.error(), Errc::bad_mac);

  const auto bad_mac_before = victim->stats().engine.dropped[static_cast<std::size_t>(Errc::bad_mac)];
  const Endpoint to = victim->local_endpoint();
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(to.port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::sendto(fd, forged.data(), *n, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr),
            static_cast<ssize_t>(*n));
  ::close(fd);
  // Listener::next drives the node's loop (no thread was started) until the datagram was
  // handled; nothing may be delivered meanwhile.
  bool delivered = false;
  for (int i = 0; i < 100 && victim->stats().engine.dropped[static_cast<std::size_t>(Errc::bad_mac)] ==
                                 bad_mac_before; ++i) {
    delivered = delivered || inbox.next(50ms).has_value();
  }
  EXPECT_EQ(victim->stats().engine.dropped[static_cast<std::size_t>(Errc::bad_mac)], bad_mac_before + 1);
  EXPECT_FALSE(delivered);

  // (3) Every captured datagram used to be a valid (message, signature) pair.
  const std::string_view captured_prefix{reinterpret_cast<const char*>(captured.data()), mac_at};
  EXPECT_FALSE(victim->authenticate(Bytes{captured.data() + mac_at, wire::kMacSize}, captured_prefix));
  wipe_secret(keys.bytes());
}

TEST(Node, MessagesArrivingTogetherAreDeliveredHighestPriorityFirst) {
  auto options = loopback_options();
  auto sub = make(options);
  auto pub = make(options);
  ASSERT_TRUE(sub && pub);
  auto inbox = sub->listen();
  ASSERT_TRUE(sub->subscribe("prio").ok());
  // Neither loop runs: publish() sends at once (loopback delivers into the subscriber's socket
  // buffer before sendmmsg returns), so all three wait there and one turn reads them together.
  for (auto [text, priority] : {std::pair{"low", 1}, std::pair{"high", 14}, std::pair{"mid", 7}}) {
    PublishOptions o;
    o.priority = static_cast<std::uint8_t>(priority);
    ASSERT_TRUE(pub->publish("prio", text, o).ok());
  }
  ASSERT_TRUE(sub->run_once(1s).ok());
  std::vector<std::string> order;
  while (auto m = inbox.next()) order.push_back(m->message + "/" + std::to_string(m->priority));
  EXPECT_EQ(order, (std::vector<std::string>{"high/14", "mid/7", "low/1"}));
}

}  // namespace
}  // namespace nomq
