// NoMQ between two processes on loopback through the Node API (include/nomq/node.hpp), each
// process driving its node with run_once() on one thread: the library's cost, not process
// start-up. The subscriber is a forked child; the publisher sends to its unicast address.
#include <deque>
#include <memory>
#include <optional>

#include "nomq/node.hpp"
#include "perf/common.hpp"

namespace perf {
namespace {

constexpr const char* kChannel = "bench/throughput";

nomq::Key key_of(std::uint8_t seed) {
  nomq::Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(seed + i);
  return k;
}

nomq::WireVersion wire_of(const Args& a) {
  return a.str("wire", "v2") == "v1" ? nomq::WireVersion::v1 : nomq::WireVersion::v2;
}

nomq::Qos qos_of(const Args& a) { return static_cast<nomq::Qos>(a.num("qos", 0)); }

std::unique_ptr<nomq::Node> make_node(nomq::WireVersion wire, std::uint16_t group_port, bool listen_group) {
  // NOMQ_PERF_LOG=debug: the library's log, to study a slow run (never while measuring).
  if (const char* level = std::getenv("NOMQ_PERF_LOG"))
    if (auto l = nomq::parse_log_level(level)) nomq::set_log_level(*l);
  nomq::NodeOptions o;
  o.encryption_key = key_of(1);
  o.hmac_key = key_of(101);
  o.engine.wire = wire;
  o.network.group = nomq::Endpoint::v4(127, 255, 255, 255, group_port);
  o.network.unicast_bind = nomq::Endpoint::v4(127, 0, 0, 1, 0);
  o.network.listen_group = listen_group;
  auto node = nomq::Node::create(o);
  if (!node) die(std::string{"Node::create: "} + std::string{node.error().message()});
  return std::move(node).value();
}

// The subscriber child: subscribes, reports its ports, counts deliveries until stopped, then
// reports count, first and last delivery time, peak RSS and engine drops.
Child start_subscriber(nomq::WireVersion wire) {
  return Child([wire](int out) {
    auto node = make_node(wire, 0, true);
    std::int64_t count = 0, first = 0, last = 0;
    node->on_message([&](const nomq::Message&) {
      last = now_ns();
      if (count++ == 0) first = last;
    });
    if (!node->subscribe(kChannel)) die("subscribe");
    (void)node->run_once(nomq::Duration::zero());
    write_report(out, {node->local_endpoint().port, node->group().port});
    while (!g_stop) (void)node->run_once(std::chrono::milliseconds{100});
    const nomq::NodeStats s = node->stats();
    // The commonest drop reason, to explain losses.
    std::size_t top = 0;
    for (std::size_t i = 0; i < nomq::kErrcCount; ++i)
      if (s.engine.dropped[i] > s.engine.dropped[top]) top = i;
    write_report(out, {count, first, last, peak_rss_kib(),
                       static_cast<std::int64_t>(s.engine.dropped_total),
                       static_cast<std::int64_t>(s.engine.duplicates_suppressed),
                       static_cast<std::int64_t>(top),
                       static_cast<std::int64_t>(s.listener_overflows)});
    node->close();
  });
}

}  // namespace

void nomq_throughput(const Args& a) {
  const auto wire = wire_of(a);
  const auto qos = qos_of(a);
  const auto size = static_cast<std::size_t>(a.num("size", 64));
  const double seconds = a.real("seconds", 1.0);
  // --to group (QoS 0 only): publish to the group (broadcast 127.255.255.255) from a node that
  // also listens to the group, as a node that discovers subscribers does; it then hears its own
  // broadcasts too. Default: the subscriber's unicast address.
  const bool to_group = a.str("to", "unicast") == "group";
  if (to_group && qos != nomq::Qos::at_most_once) die("--to group is for QoS 0");
  // --threaded 1: the publisher runs its loop on the node's background thread (start()) and
  // publishes from the main thread, as an application with other work does.
  const bool threaded = a.num("threaded", 0) != 0;
  // --batch 1: each burst of 64 publishes is made within a Node::Batch, so their datagrams
  // leave in sendmmsg() calls of 32 (as the raw UDP sender's --batch 32 variant does).
  const bool batched = a.num("batch", 0) != 0;
  if (batched && threaded) die("--batch and --threaded are separate variants");
  Child child = start_subscriber(wire);
  const ChildReport ready = child.read_report();
  auto node = make_node(wire, static_cast<std::uint16_t>(ready.b), to_group);
  if (threaded && !node->start()) die("start");
  nomq::PublishOptions po;
  po.qos = qos;
  if (!to_group) po.destination = nomq::Endpoint::v4(127, 0, 0, 1, static_cast<std::uint16_t>(ready.a));
  std::string payload;
  fill_payload(payload, size);

  std::deque<nomq::PublishHandle> inflight;
  std::int64_t sent = 0, acked = 0, failed = 0, refused = 0;
  nomq::Errc last_refusal = nomq::Errc::ok;
  auto reap = [&] {
    while (!inflight.empty() && inflight.front().ready()) {
      const auto d = inflight.front().wait_for(nomq::Duration::zero());
      if (d && d->all_acknowledged()) ++acked; else ++failed;
      inflight.pop_front();
    }
  };
  const std::int64_t start = now_ns();
  const auto end = start + static_cast<std::int64_t>(seconds * 1e9);
  while (now_ns() < end) {
    std::optional<nomq::Node::Batch> batch;
    if (batched) batch.emplace(node->batch());
    for (int i = 0; i < 64; ++i) {
      auto r = node->publish(kChannel, payload, po);
      if (r) {
        ++sent;
        if (qos != nomq::Qos::at_most_once) inflight.push_back(std::move(*r));
        continue;
      }
      if (r.error() != nomq::Errc::too_many_pending && r.error() != nomq::Errc::queue_full)
        die(std::string{"publish: "} + std::string{r.error().message()});
      ++refused;
      last_refusal = r.error();  // the window is full: run the loop until acknowledgements free it
      if (threaded) {
        if (!inflight.empty()) (void)inflight.front().wait_for(std::chrono::milliseconds{1});
      } else {
        (void)node->run_once(std::chrono::milliseconds{1});
      }
      reap();
    }
    batch.reset();
    if (!threaded) (void)node->run_once(nomq::Duration::zero());
    reap();
  }
  const std::int64_t send_end = now_ns();
  // Let the window drain (bounded).
  while (!inflight.empty() && now_ns() < send_end + 5'000'000'000) {
    if (threaded) {
      (void)inflight.front().wait_for(std::chrono::milliseconds{5});
    } else {
      (void)node->run_once(std::chrono::milliseconds{5});
    }
    reap();
  }
  const std::int64_t drained = now_ns();
  sleep_ms(100);
  child.stop();
  const ChildReport r = child.read_report();
  child.wait();
  const double span = static_cast<double>(r.c - r.b) / 1e9;
  const nomq::NodeStats ps = node->stats();
  node->close();
  Result res;
  res.set("bench", to_group   ? "nomq_tput_group"
                  : threaded ? "nomq_tput_threaded"
                  : batched  ? "nomq_tput_batch"
                             : "nomq_tput")
      .set("wire", a.str("wire", "v2"))
      .set("qos", static_cast<double>(qos))
      .set("size", static_cast<double>(size))
      .set("sent_per_s", static_cast<double>(sent) / (static_cast<double>(send_end - start) / 1e9))
      .set("msgs_per_s", span > 0 ? static_cast<double>(r.a) / span : 0.0)
      .set("delivered", static_cast<double>(r.a))
      .set("sent", static_cast<double>(sent))
      .set("loss", sent > 0 ? 1.0 - static_cast<double>(r.a) / static_cast<double>(sent) : 0.0)
      .set("sub_peak_rss_kib", static_cast<double>(r.d))
      .set("sub_drops", static_cast<double>(r.e))
      .set("sub_duplicates", static_cast<double>(r.f))
      .set("sub_top_drop", r.e > 0 ? std::string{nomq::to_string(static_cast<nomq::Errc>(r.g))} : "")
      .set("pub_refused", static_cast<double>(refused))
      .set("pub_refused_reason", std::string{nomq::to_string(last_refusal)})
      .set("pub_send_errors", static_cast<double>(ps.send_errors))
      .set("pub_drops", static_cast<double>(ps.engine.dropped_total))
      .set("pub_retransmissions", static_cast<double>(ps.engine.retransmissions))
      .set("pub_sendmmsg_calls", static_cast<double>(ps.batches_sent));
  if (qos != nomq::Qos::at_most_once) {
    res.set("acked", static_cast<double>(acked))
        .set("failed", static_cast<double>(failed + static_cast<std::int64_t>(inflight.size())))
        .set("acked_per_s", static_cast<double>(acked) / (static_cast<double>(drained - start) / 1e9));
  }
  res.print();
}

// Round trip: publish one message, wait for its delivery report (subscriber's ACK, or for QoS 2
// the PUBREC/PUBREL/PUBCOMP exchange), --count times.
void nomq_latency(const Args& a) {
  const auto wire = wire_of(a);
  const auto qos = qos_of(a);
  const auto size = static_cast<std::size_t>(a.num("size", 64));
  const long count = a.num("count", 2000);
  Child child = start_subscriber(wire);
  const ChildReport ready = child.read_report();
  auto node = make_node(wire, static_cast<std::uint16_t>(ready.b), false);
  nomq::PublishOptions po;
  po.qos = qos;
  po.destination = nomq::Endpoint::v4(127, 0, 0, 1, static_cast<std::uint16_t>(ready.a));
  std::string payload;
  fill_payload(payload, size);
  std::vector<double> rtt;
  long failures = 0;
  const bool log_slow = std::getenv("NOMQ_PERF_LOG") != nullptr;  // not per round trip
  for (long i = 0; i < count + count / 10; ++i) {
    const std::int64_t t0 = now_ns();
    auto h = node->publish(kChannel, payload, po);
    if (!h) die(std::string{"publish: "} + std::string{h.error().message()});
    const auto d = h->wait_for(std::chrono::seconds{2});
    const std::int64_t t1 = now_ns();
    if (!d || !d->all_acknowledged()) {
      ++failures;
      continue;
    }
    if (i >= count / 10) rtt.push_back(static_cast<double>(t1 - t0) / 1000.0);
    if (log_slow && t1 - t0 > 1'000'000)
      std::fprintf(stderr, "slow round trip: message %u took %.0f us\n", h->message_id(),
                   static_cast<double>(t1 - t0) / 1000.0);
  }
  const long over_1ms = std::count_if(rtt.begin(), rtt.end(), [](double us) { return us > 1000.0; });
  child.stop();
  child.read_report();
  child.wait();
  node->close();
  Result{}
      .set("bench", "nomq_rtt")
      .set("wire", a.str("wire", "v2"))
      .set("qos", static_cast<double>(qos))
      .set("size", static_cast<double>(size))
      .set("p50_us", percentile(rtt, 50))
      .set("p99_us", percentile(rtt, 99))
      .set("failures", static_cast<double>(failures))
      .set("over_1ms", static_cast<double>(over_1ms))
      .print();
}

}  // namespace perf
