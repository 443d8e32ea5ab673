// The peers users compare NoMQ with: Mosquitto (MQTT through a local broker, libmosquitto
// clients) and ZeroMQ (PUB/SUB and REQ/REP over TCP). Unencrypted, as users run them on a LAN.
// The broker is started by scripts/bench.sh (temporary config, loopback, a free port).
#include <mosquitto.h>
#include <zmq.h>

#include "perf/common.hpp"

namespace perf {
namespace {

// One topic per run: a broker still working through an earlier run's backlog must not feed
// this run's subscriber.
const std::string& topic() {
  static const std::string t = "bench/throughput/" + std::to_string(::getpid()) + "/" + std::to_string(now_ns());
  return t;
}

struct MqttCounters {
  std::int64_t received = 0, first = 0, last = 0;
  std::int64_t completed = 0;  // publisher: on_publish calls
  bool subscribed = false, connected = false;
  int report_fd = -1;          // latency: tell the parent each arrival
  std::vector<double> one_way_us;
};

mosquitto* mqtt_client(int port, MqttCounters& c) {
  mosquitto_lib_init();
  mosquitto* m = mosquitto_new(nullptr, true, &c);
  check(m != nullptr, "mosquitto_new");
  mosquitto_connect_callback_set(m, [](mosquitto*, void* u, int rc) {
    static_cast<MqttCounters*>(u)->connected = rc == 0;
  });
  mosquitto_subscribe_callback_set(m, [](mosquitto*, void* u, int, int, const int*) {
    static_cast<MqttCounters*>(u)->subscribed = true;
  });
  mosquitto_publish_callback_set(m, [](mosquitto*, void* u, int) { ++static_cast<MqttCounters*>(u)->completed; });
  mosquitto_message_callback_set(m, [](mosquitto*, void* u, const mosquitto_message* msg) {
    auto& k = *static_cast<MqttCounters*>(u);
    const std::int64_t t = now_ns();
    if (k.received++ == 0) k.first = t;
    k.last = t;
    if (k.report_fd >= 0 && msg->payloadlen >= 8) {
      k.one_way_us.push_back(static_cast<double>(t - read_stamp(msg->payload)) / 1000.0);
      write_report(k.report_fd, {k.received});
    }
  });
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  check(mosquitto_max_inflight_messages_set(m, 50) == MOSQ_ERR_SUCCESS, "max inflight");
  check(mosquitto_connect(m, "127.0.0.1", port, 60) == MOSQ_ERR_SUCCESS, "mosquitto_connect");
  const std::int64_t until = now_ns() + 5'000'000'000;
  while (!c.connected && now_ns() < until) mosquitto_loop(m, 10, 1);
  check(c.connected, "mosquitto CONNACK");
  return m;
}

// Subscriber child: subscribes at `qos`, reports ready, counts until stopped.
Child mqtt_subscriber(int port, int qos, bool latency) {
  return Child([=](int out) {
    MqttCounters c;
    mosquitto* m = mqtt_client(port, c);
    check(mosquitto_subscribe(m, nullptr, topic().c_str(), qos) == MOSQ_ERR_SUCCESS, "mosquitto_subscribe");
    while (!c.subscribed) mosquitto_loop(m, 10, 1);
    write_report(out, {});
    if (latency) c.report_fd = out;
    while (!g_stop) mosquitto_loop(m, 100, 1);
    // The broker may still hold a backlog for us: take it until 300 ms pass without a message.
    for (std::int64_t seen = -1; seen != c.received;) {
      seen = c.received;
      const std::int64_t quiet_until = now_ns() + 300'000'000;
      while (c.received == seen && now_ns() < quiet_until) mosquitto_loop(m, 50, 1);
    }
    const double p50 = percentile(c.one_way_us, 50) * 1000.0, p99 = percentile(c.one_way_us, 99) * 1000.0;
    write_report(out, {c.received, c.first, c.last, static_cast<std::int64_t>(p50), static_cast<std::int64_t>(p99)});
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
  });
}

}  // namespace

// Throughput through the broker: the publisher keeps at most 1000 messages outstanding in its
// client (inflight 50, as NoMQ's default window); the subscriber counts deliveries.
void mqtt_throughput(const Args& a) {
  const int port = static_cast<int>(a.num("port", 1883));
  const int qos = static_cast<int>(a.num("qos", 0));
  const auto size = static_cast<std::size_t>(a.num("size", 64));
  const double seconds = a.real("seconds", 1.0);
  (void)topic();  // fixed before the fork: both processes use the same one
  Child child = mqtt_subscriber(port, qos, false);
  child.read_report();
  MqttCounters c;
  mosquitto* m = mqtt_client(port, c);
  std::string payload;
  fill_payload(payload, size);
  std::int64_t sent = 0;
  const std::int64_t start = now_ns();
  const auto end = start + static_cast<std::int64_t>(seconds * 1e9);
  while (now_ns() < end) {
    if (sent - c.completed < 1000) {
      check(mosquitto_publish(m, nullptr, topic().c_str(), static_cast<int>(size), payload.data(), qos, false) ==
                MOSQ_ERR_SUCCESS, "mosquitto_publish");
      if (++sent % 32 == 0) mosquitto_loop(m, 0, 1);
    } else {
      mosquitto_loop(m, 1, 1);
    }
  }
  const std::int64_t send_end = now_ns();
  while (c.completed < sent && now_ns() < send_end + 5'000'000'000) mosquitto_loop(m, 10, 1);
  sleep_ms(200);
  child.stop();
  const ChildReport r = child.read_report();
  child.wait();
  mosquitto_disconnect(m);
  mosquitto_destroy(m);
  const double span = static_cast<double>(r.c - r.b) / 1e9;
  Result{}
      .set("bench", "mqtt_tput")
      .set("qos", static_cast<double>(qos))
      .set("size", static_cast<double>(size))
      .set("sent_per_s", static_cast<double>(sent) / (static_cast<double>(send_end - start) / 1e9))
      .set("msgs_per_s", span > 0 ? static_cast<double>(r.a) / span : 0.0)
      .set("loss", sent > 0 ? 1.0 - static_cast<double>(r.a) / static_cast<double>(sent) : 0.0)
      .print();
}

// Publish to delivery at the subscriber, one-way through the broker (two TCP hops, as a NoMQ
// QoS 1 round trip is two UDP hops), read from a CLOCK_MONOTONIC stamp in the payload. One
// message at a time: the next leaves when the subscriber reported the previous.
void mqtt_latency(const Args& a) {
  const int port = static_cast<int>(a.num("port", 1883));
  const int qos = static_cast<int>(a.num("qos", 1));
  const auto size = static_cast<std::size_t>(a.num("size", 64));
  const long count = a.num("count", 2000);
  (void)topic();
  Child child = mqtt_subscriber(port, qos, true);
  child.read_report();
  MqttCounters c;
  mosquitto* m = mqtt_client(port, c);
  std::string payload;
  fill_payload(payload, size);
  for (long i = 0; i < count; ++i) {
    stamp(payload, now_ns());
    check(mosquitto_publish(m, nullptr, topic().c_str(), static_cast<int>(size), payload.data(), qos, false) ==
              MOSQ_ERR_SUCCESS, "mosquitto_publish");
    child.read_report();
    mosquitto_loop(m, 0, 1);  // the PUBACK
  }
  child.stop();
  const ChildReport r = child.read_report();
  child.wait();
  mosquitto_disconnect(m);
  mosquitto_destroy(m);
  Result{}
      .set("bench", "mqtt_lat")
      .set("qos", static_cast<double>(qos))
      .set("size", static_cast<double>(size))
      .set("p50_us", static_cast<double>(r.d) / 1000.0)
      .set("p99_us", static_cast<double>(r.e) / 1000.0)
      .print();
}

namespace {

void* zsock(void* ctx, int type) {
  void* s = zmq_socket(ctx, type);
  check(s != nullptr, "zmq_socket");
  const int hwm = 100000;
  zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
  // ZeroMQ's I/O thread may take the stop signal instead of the blocked receiver: poll it.
  const int timeout_ms = 200;
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
  return s;
}

std::int64_t bind_any(void* s) {
  check(zmq_bind(s, "tcp://127.0.0.1:*") == 0, "zmq_bind");
  char ep[256];
  std::size_t len = sizeof ep;
  zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len);
  const char* colon = std::strrchr(ep, ':');
  return std::strtol(colon + 1, nullptr, 10);
}

std::string endpoint(std::int64_t port) { return "tcp://127.0.0.1:" + std::to_string(port); }

}  // namespace

// PUB/SUB over TCP: the subscriber (child) binds, the publisher connects and sends for
// --seconds; deliveries counted at the subscriber.
void zmq_throughput(const Args& a) {
  const auto size = static_cast<std::size_t>(a.num("size", 64));
  const double seconds = a.real("seconds", 1.0);
  Child child([&](int out) {
    void* ctx = zmq_ctx_new();
    void* sub = zsock(ctx, ZMQ_SUB);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    write_report(out, {bind_any(sub)});
    std::vector<char> buf(65536);
    std::int64_t count = 0, first = 0, last = 0;
    while (!g_stop) {
      if (zmq_recv(sub, buf.data(), buf.size(), 0) < 0) continue;
      last = now_ns();
      if (count++ == 0) first = last;
    }
    write_report(out, {count, first, last});
    const int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sub);
    zmq_ctx_term(ctx);
  });
  const std::int64_t port = child.read_report().a;
  void* ctx = zmq_ctx_new();
  void* pub = zsock(ctx, ZMQ_PUB);
  check(zmq_connect(pub, endpoint(port).c_str()) == 0, "zmq_connect");
  sleep_ms(300);  // the subscription travels to the publisher (ZeroMQ's "slow joiner")
  std::string payload;
  fill_payload(payload, size);
  std::int64_t sent = 0;
  const std::int64_t start = now_ns();
  const auto end = start + static_cast<std::int64_t>(seconds * 1e9);
  while (now_ns() < end) {
    for (int i = 0; i < 64; ++i)
      if (zmq_send(pub, payload.data(), size, 0) >= 0) ++sent;
  }
  const std::int64_t send_end = now_ns();
  sleep_ms(300);
  child.stop();
  const ChildReport r = child.read_report();
  child.wait();
  const int linger = 0;
  zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(pub);
  zmq_ctx_term(ctx);
  const double span = static_cast<double>(r.c - r.b) / 1e9;
  Result{}
      .set("bench", "zmq_tput")
      .set("size", static_cast<double>(size))
      .set("sent_per_s", static_cast<double>(sent) / (static_cast<double>(send_end - start) / 1e9))
      .set("msgs_per_s", span > 0 ? static_cast<double>(r.a) / span : 0.0)
      .set("loss", sent > 0 ? 1.0 - static_cast<double>(r.a) / static_cast<double>(sent) : 0.0)
      .print();
}

// REQ/REP round trip over TCP.
void zmq_latency(const Args& a) {
  const auto size = static_cast<std::size_t>(a.num("size", 64));
  const long count = a.num("count", 5000);
  Child child([&](int out) {
    void* ctx = zmq_ctx_new();
    void* rep = zsock(ctx, ZMQ_REP);
    write_report(out, {bind_any(rep)});
    std::vector<char> buf(65536);
    while (!g_stop) {
      const int n = zmq_recv(rep, buf.data(), buf.size(), 0);
      if (n < 0) continue;
      zmq_send(rep, buf.data(), static_cast<std::size_t>(n), 0);
    }
    write_report(out, {});
    const int linger = 0;
    zmq_setsockopt(rep, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(rep);
    zmq_ctx_term(ctx);
  });
  const std::int64_t port = child.read_report().a;
  void* ctx = zmq_ctx_new();
  void* req = zsock(ctx, ZMQ_REQ);
  check(zmq_connect(req, endpoint(port).c_str()) == 0, "zmq_connect");
  std::string payload;
  fill_payload(payload, size);
  std::vector<char> buf(65536);
  std::vector<double> rtt;
  for (long i = 0; i < count + count / 10; ++i) {
    const std::int64_t t0 = now_ns();
    zmq_send(req, payload.data(), size, 0);
    check(zmq_recv(req, buf.data(), buf.size(), 0) >= 0, "zmq_recv");
    if (i >= count / 10) rtt.push_back(static_cast<double>(now_ns() - t0) / 1000.0);
  }
  child.stop();
  child.read_report();
  child.wait();
  const int linger = 0;
  zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(req);
  zmq_ctx_term(ctx);
  Result{}
      .set("bench", "zmq_rtt")
      .set("size", static_cast<double>(size))
      .set("p50_us", percentile(rtt, 50))
      .set("p99_us", percentile(rtt, 99))
      .print();
}

}  // namespace perf
