// The command-line path users take: `nomq pub --repeat N -q 0 -h ...` into `nomq sub` writing
// to a file, both as separate processes (start-up included, as a user measures it).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "perf/common.hpp"

extern char** environ;

namespace perf {
namespace {

// Starts `argv` with stdout and stderr to the given files.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out, const std::string& err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) die("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

long file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : 0;
}

// A UDP port free on loopback now (the kernel's pick, released for the subscriber to bind).
long free_udp_port() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  check(fd >= 0, "socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  check(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0,
        "bind");
  ::close(fd);
  return ntohs(sa.sin_port);
}

// Waits until `nomq sub` prints: probe messages (`pub_probe`) until one shows in its output.
// Without -d (whose per-message debug log would be measured too) nothing else says it is
// ready. Returns the output's size then: what the measured run writes comes after it.
long wait_until_printing(const std::vector<std::string>& pub_probe, const std::string& out,
                         const std::string& dir, pid_t sub) {
  const std::int64_t give_up = now_ns() + 10'000'000'000;
  while (now_ns() < give_up) {
    int status = 0;
    if (::waitpid(sub, &status, WNOHANG) == sub) die("nomq sub exited: " + read_file(dir + "/sub.err"));
    if (wait_exit(spawn(pub_probe, dir + "/pub.out", dir + "/pub.err")) != 0)
      die("nomq pub (probe): " + read_file(dir + "/pub.err"));
    for (int i = 0; i < 20; ++i) {
      if (file_size(out) > 0) return file_size(out);
      sleep_ms(5);
    }
  }
  die("nomq sub printed nothing within 10 s");
}

}  // namespace

void cli_throughput(const Args& a) {
  const std::string nomq = a.str("nomq", "build-bench/nomq");
  const auto size = static_cast<std::size_t>(a.num("size", 64));
  const long count = a.num("count", 100000);
  char dir_template[] = "/tmp/nomq_perf_cli.XXXXXX";
  const char* dir_c = ::mkdtemp(dir_template);
  check(dir_c != nullptr, "mkdtemp");
  const std::string dir = dir_c;
  const std::string cfg = dir + "/node.json", out = dir + "/sub.out", err = dir + "/sub.err";
  // Loopback only: the group is the loopback broadcast address.
  const std::string port = std::to_string(free_udp_port());
  if (wait_exit(spawn({nomq, "keygen", "-o", cfg, "--group", "127.255.255.255", "-p", port},
                      dir + "/keygen.out", dir + "/keygen.err")) != 0)
    die("nomq keygen: " + read_file(dir + "/keygen.err"));
  const pid_t sub = spawn({nomq, "sub", "-c", cfg, "-t", "bench/cli"}, out, err);
  const long offset = wait_until_printing(
      {nomq, "pub", "-c", cfg, "-t", "bench/cli", "-m", "ready", "-h", "127.0.0.1", "-p", port}, out,
      dir, sub);

  std::string payload;
  fill_payload(payload, size);
  const std::int64_t start = now_ns();
  const pid_t pub = spawn({nomq, "pub", "-c", cfg, "-t", "bench/cli", "-m", payload, "--repeat",
                           std::to_string(count), "-q", "0", "-h", "127.0.0.1", "-p", port},
                          dir + "/pub.out", dir + "/pub.err");
  const int pub_exit = wait_exit(pub);
  const std::int64_t pub_end = now_ns();
  if (pub_exit != 0) die("nomq pub exited " + std::to_string(pub_exit) + ": " + read_file(dir + "/pub.err"));
  // The subscriber's file: complete, or quiet for 300 ms (QoS 0 may lose datagrams).
  const long line = static_cast<long>(size) + 1;
  long bytes = file_size(out) - offset;
  std::int64_t last_growth = now_ns();
  while (bytes < count * line && now_ns() - last_growth < 300'000'000) {
    sleep_ms(1);
    const long b = file_size(out) - offset;
    if (b != bytes) {
      bytes = b;
      last_growth = now_ns();
    }
  }
  ::kill(sub, SIGTERM);
  wait_exit(sub);
  const long delivered = bytes / line;
  const double span = static_cast<double>(last_growth - start) / 1e9;
  for (const char* f : {"node.json", "sub.out", "sub.err", "pub.out", "pub.err", "keygen.out", "keygen.err"})
    ::unlink((dir + "/" + f).c_str());
  ::rmdir(dir.c_str());
  Result{}
      .set("bench", "cli_tput")
      .set("qos", 0.0)
      .set("size", static_cast<double>(size))
      .set("msgs_per_s", span > 0 ? static_cast<double>(delivered) / span : 0.0)
      .set("sent_per_s", static_cast<double>(count) / (static_cast<double>(pub_end - start) / 1e9))
      .set("delivered", static_cast<double>(delivered))
      .set("sent", static_cast<double>(count))
      .set("loss", 1.0 - static_cast<double>(delivered) / static_cast<double>(count))
      .print();
}

// A fresh `nomq pub -q 1` process, from spawn to its exit after the acknowledgement (exit 0
// means acknowledged by every recipient), with one `nomq sub` already running; next to
// `mosquitto_pub -q 1` from spawn to exit (PUBACK from the broker on --port, one
// `mosquitto_sub` subscribed), the runs of the two interleaved. What a user measures with
// `time`: start-up, discovery (NoMQ), connection (MQTT), one publish and its acknowledgement.
// `--linger 0`: the process exits at its report. By default `nomq pub` goes on serving
// subscribers that answer late until the discovery period ends (about 1.5 s after its start),
// which is delivery to others, not this publish's acknowledgement.
void first_publish(const Args& a) {
  const std::string nomq = a.str("nomq", "build-bench/nomq");
  const std::string mqtt_port = std::to_string(a.num("port", 1883));
  const long count = a.num("count", 20);
  char dir_template[] = "/tmp/nomq_perf_first.XXXXXX";
  const char* dir_c = ::mkdtemp(dir_template);
  check(dir_c != nullptr, "mkdtemp");
  const std::string dir = dir_c;
  const std::string cfg = dir + "/node.json";
  const std::string port = std::to_string(free_udp_port());  // loopback broadcast group
  if (wait_exit(spawn({nomq, "keygen", "-o", cfg, "--group", "127.255.255.255", "-p", port},
                      dir + "/keygen.out", dir + "/keygen.err")) != 0)
    die("nomq keygen: " + read_file(dir + "/keygen.err"));
  const pid_t sub = spawn({nomq, "sub", "-c", cfg, "-t", "bench/first", "--ready"},
                          dir + "/sub.out", dir + "/sub.err");
  const pid_t msub = spawn({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", mqtt_port, "-t",
                            "bench/first", "-q", "1"},
                           dir + "/msub.out", dir + "/msub.err");
  const std::int64_t give_up = now_ns() + 10'000'000'000;
  while (read_file(dir + "/sub.err").find("nomq sub: ready") == std::string::npos) {
    if (now_ns() > give_up) die("nomq sub not ready: " + read_file(dir + "/sub.err"));
    sleep_ms(5);
  }
  const std::vector<std::string> nomq_pub{nomq, "pub", "-c", cfg, "-t", "bench/first", "-m", "21.5",
                                          "-q", "1", "--linger", "0"};
  const std::vector<std::string> mqtt_pub{"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", mqtt_port,
                                          "-t", "bench/first", "-m", "21.5", "-q", "1"};
  auto timed = [&](const std::vector<std::string>& argv, const char* what) {
    const std::int64_t t0 = now_ns();
    const int code = wait_exit(spawn(argv, dir + "/pub.out", dir + "/pub.err"));
    const std::int64_t t1 = now_ns();
    if (code != 0) die(std::string{what} + " exited " + std::to_string(code) + ": " + read_file(dir + "/pub.err"));
    return static_cast<double>(t1 - t0) / 1e6;
  };
  // mosquitto_sub is subscribed once a publish reaches it.
  while (file_size(dir + "/msub.out") == 0) {
    if (now_ns() > give_up) die("mosquitto_sub received nothing: " + read_file(dir + "/msub.err"));
    (void)timed(mqtt_pub, "mosquitto_pub");
    sleep_ms(20);
  }
  (void)timed(nomq_pub, "nomq pub");  // warm-up: page cache
  std::vector<double> ours, theirs;
  for (long i = 0; i < count; ++i) {
    ours.push_back(timed(nomq_pub, "nomq pub"));
    theirs.push_back(timed(mqtt_pub, "mosquitto_pub"));
  }
  ::kill(sub, SIGTERM);
  ::kill(msub, SIGTERM);
  wait_exit(sub);
  wait_exit(msub);
  for (const char* f : {"node.json", "sub.out", "sub.err", "msub.out", "msub.err", "pub.out", "pub.err",
                        "keygen.out", "keygen.err"})
    ::unlink((dir + "/" + f).c_str());
  ::rmdir(dir.c_str());
  auto pct = [](std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
  };
  for (const auto& [name, v] : {std::pair{"first_publish_nomq", &ours}, std::pair{"first_publish_mosquitto", &theirs}}) {
    Result{}
        .set("bench", name)
        .set("qos", 1.0)
        .set("p50_ms", pct(*v, 0.5))
        .set("p90_ms", pct(*v, 0.9))
        .set("max_ms", pct(*v, 1.0))
        .set("samples", static_cast<double>(v->size()))
        .print();
  }
}

}  // namespace perf
