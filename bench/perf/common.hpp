// Shared helpers of nomq_perf: clocks, statistics, the child-process protocol and the one-line
// JSON results that scripts/bench.sh collects. Plain C++ (no Google Benchmark) because most
// measurements here run between two processes.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace perf {

inline std::int64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "nomq_perf: %s\n", what.c_str());
  std::exit(2);
}

inline void check(bool ok, const std::string& what) {
  if (!ok) die(what + (errno != 0 ? std::string{": "} + std::strerror(errno) : std::string{}));
}

// Percentile (0..100) of a sample, nearest rank. Sorts `v`.
inline double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(rank, v.size() - 1)];
}

// Peak resident set of this process in KiB.
inline long peak_rss_kib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// One result: flat key/value pairs printed as one JSON object line on stdout.
class Result {
 public:
  Result& set(const std::string& k, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    fields_.emplace_back(k, buf);
    return *this;
  }
  Result& set(const std::string& k, const std::string& v) {
    fields_.emplace_back(k, "\"" + v + "\"");
    return *this;
  }
  void print() const {
    std::string out = "{";
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      if (i) out += ", ";
      out += "\"" + fields_[i].first + "\": " + fields_[i].second;
    }
    out += "}\n";
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Command-line options: --name value pairs.
class Args {
 public:
  Args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      std::string k = argv[i];
      if (k.rfind("--", 0) != 0 || i + 1 >= argc) die("bad argument '" + k + "'");
      values_[k.substr(2)] = argv[++i];
    }
  }
  long num(const std::string& k, long def) const {
    auto it = values_.find(k);
    return it == values_.end() ? def : std::strtol(it->second.c_str(), nullptr, 10);
  }
  double real(const std::string& k, double def) const {
    auto it = values_.find(k);
    return it == values_.end() ? def : std::strtod(it->second.c_str(), nullptr);
  }
  std::string str(const std::string& k, const std::string& def) const {
    auto it = values_.find(k);
    return it == values_.end() ? def : it->second;
  }

 private:
  std::map<std::string, std::string> values_;
};

// A forked child process with a pipe each way. The child reports "ready" data and its final
// results as fixed-size records; the parent stops it with SIGUSR1 (which interrupts its
// blocking calls: the handler is installed without SA_RESTART).
struct ChildReport {
  std::int64_t a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0;
};

inline volatile sig_atomic_t g_stop = 0;
inline void on_stop(int) { g_stop = 1; }

inline void install_stop_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking receives return EINTR
  ::sigaction(SIGUSR1, &sa, nullptr);
}

class Child {
 public:
  // Runs `body(write_fd)` in a forked child, which then exits.
  explicit Child(const std::function<void(int)>& body) {
    int p[2];
    check(::pipe(p) == 0, "pipe");
    // The parent sends SIGUSR1 only after the child reported ready, so the handler exists.
    pid_ = ::fork();
    check(pid_ >= 0, "fork");
    if (pid_ == 0) {
      // A parent killed by a timeout must not leave its child running.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::close(p[0]);
      install_stop_handler();
      body(p[1]);
      ::close(p[1]);
      std::fflush(nullptr);
      ::_exit(0);
    }
    ::close(p[1]);
    rfd_ = p[0];
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (rfd_ >= 0) ::close(rfd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  ChildReport read_report() {
    ChildReport r;
    auto* p = reinterpret_cast<char*>(&r);
    std::size_t got = 0;
    while (got < sizeof r) {
      const ssize_t n = ::read(rfd_, p + got, sizeof r - got);
      if (n < 0 && errno == EINTR) continue;
      check(n > 0, "child ended without reporting");
      got += static_cast<std::size_t>(n);
    }
    return r;
  }
  void stop() { ::kill(pid_, SIGUSR1); }
  void wait() {
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int rfd_ = -1;
};

inline void write_report(int fd, const ChildReport& r) {
  const auto* p = reinterpret_cast<const char*>(&r);
  std::size_t done = 0;
  while (done < sizeof r) {
    const ssize_t n = ::write(fd, p + done, sizeof r - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(3);
    done += static_cast<std::size_t>(n);
  }
}

// Sleeps without being cut short by signals.
inline void sleep_ms(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1'000'000};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// The payload of every message: `size` bytes, the first 8 a send timestamp (ns, CLOCK_MONOTONIC,
// shared by every process on the host) so that one-way latencies can be read at the receiver.
inline void fill_payload(std::string& buf, std::size_t size) {
  buf.assign(std::max<std::size_t>(size, 8), 'x');
}
inline void stamp(std::string& buf, std::int64_t t) { std::memcpy(buf.data(), &t, sizeof t); }
inline std::int64_t read_stamp(const void* data) {
  std::int64_t t = 0;
  std::memcpy(&t, data, sizeof t);
  return t;
}

// Benchmarks: each returns after printing one Result line.
void udp_throughput(const Args& a);
void udp_pingpong(const Args& a);
void nomq_throughput(const Args& a);
void nomq_latency(const Args& a);
void mqtt_throughput(const Args& a);
void mqtt_latency(const Args& a);
void zmq_throughput(const Args& a);
void zmq_latency(const Args& a);
void engine_pair(const Args& a);
void engine_subscribers(const Args& a);
void engine_channels(const Args& a);
void crypto_packet(const Args& a);
void cli_throughput(const Args& a);
void first_publish(const Args& a);

}  // namespace perf
