// The physical limit: plain UDP on loopback, one sendto per datagram and one recvfrom per
// datagram, no batching, no crypto. Whatever NoMQ does on top is measured against this.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "perf/common.hpp"

namespace perf {
namespace {

int udp_socket(std::uint16_t port, std::uint16_t* bound) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  check(fd >= 0, "socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  check(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0, "bind");
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  if (bound) *bound = ntohs(sa.sin_port);
  return fd;
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  return sa;
}

}  // namespace

// One-way datagrams/s: the sender sends back to back for --seconds; the receiver counts what
// arrives between its first and last datagram. --batch N (N > 1): sendmmsg/recvmmsg of N
// datagrams per system call, to show what batching is worth on this kernel.
void udp_throughput(const Args& a) {
  const auto size = static_cast<std::size_t>(a.num("size", 64));
  const double seconds = a.real("seconds", 1.0);
  const auto batch = static_cast<std::size_t>(std::max(1L, a.num("batch", 1)));
  Child child([&](int out) {
    std::uint16_t port = 0;
    const int fd = udp_socket(0, &port);
    write_report(out, {port});
    std::vector<char> buf(65536 * batch);
    std::vector<mmsghdr> msgs(batch);
    std::vector<iovec> iov(batch);
    std::int64_t count = 0, first = 0, last = 0;
    while (!g_stop) {
      int n = 0;
      if (batch == 1) {
        n = ::recvfrom(fd, buf.data(), buf.size(), 0, nullptr, nullptr) < 0 ? -1 : 1;
      } else {
        for (std::size_t i = 0; i < batch; ++i) {
          iov[i] = {buf.data() + i * 65536, 65536};
          msgs[i].msg_hdr = {};
          msgs[i].msg_hdr.msg_iov = &iov[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
        }
        n = ::recvmmsg(fd, msgs.data(), static_cast<unsigned>(batch), MSG_WAITFORONE, nullptr);
      }
      if (n <= 0) continue;  // EINTR: stop
      last = now_ns();
      if (count == 0) first = last;
      count += n;
    }
    write_report(out, {count, first, last});
  });
  const auto port = static_cast<std::uint16_t>(child.read_report().a);
  const int fd = udp_socket(0, nullptr);
  sockaddr_in to = loopback(port);
  std::string payload;
  fill_payload(payload, size);
  std::vector<mmsghdr> msgs(batch);
  iovec iov{payload.data(), size};
  for (auto& m : msgs) {
    m.msg_hdr = {};
    m.msg_hdr.msg_name = &to;
    m.msg_hdr.msg_namelen = sizeof to;
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
  }
  std::int64_t sent = 0;
  const std::int64_t start = now_ns();
  const auto end = start + static_cast<std::int64_t>(seconds * 1e9);
  while (now_ns() < end) {
    for (int i = 0; i < 64; ++i) {
      if (batch == 1) {
        if (::sendto(fd, payload.data(), size, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
            static_cast<ssize_t>(size))
          ++sent;
      } else {
        const int n = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(batch), 0);
        if (n > 0) sent += n;
      }
    }
  }
  const std::int64_t send_end = now_ns();
  sleep_ms(100);
  child.stop();
  const ChildReport r = child.read_report();
  child.wait();
  const double span = static_cast<double>(r.c - r.b) / 1e9;
  Result{}
      .set("bench", batch == 1 ? "udp_tput" : "udp_tput_batch")
      .set("size", static_cast<double>(size))
      .set("batch", static_cast<double>(batch))
      .set("sent_per_s", static_cast<double>(sent) / (static_cast<double>(send_end - start) / 1e9))
      .set("msgs_per_s", span > 0 ? static_cast<double>(r.a) / span : 0.0)
      .set("loss", sent > 0 ? 1.0 - static_cast<double>(r.a) / static_cast<double>(sent) : 0.0)
      .print();
  ::close(fd);
}

// --epoll 1: each side waits in epoll_wait, then reads with recvmmsg (MSG_DONTWAIT) and
// answers with sendmmsg, as a NoMQ node's loop does: the ping-pong with NoMQ's system calls
// and no NoMQ work, which splits a NoMQ round trip into the event loop's share and the rest.
int epoll_for(int fd) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  check(ep >= 0, "epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  check(::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl");
  return ep;
}

// One datagram through epoll_wait + recvmmsg into buf; its length, or -1 on timeout.
ssize_t epoll_receive(int ep, int fd, std::vector<char>& buf, sockaddr_in* from, int timeout_ms) {
  for (;;) {
    epoll_event ev{};
    const int n = ::epoll_wait(ep, &ev, 1, timeout_ms);
    if (n <= 0) return -1;
    iovec iov{buf.data(), buf.size()};
    mmsghdr m{};
    m.msg_hdr.msg_name = from;
    m.msg_hdr.msg_namelen = from != nullptr ? sizeof *from : 0;
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
    if (::recvmmsg(fd, &m, 1, MSG_DONTWAIT, nullptr) == 1) return static_cast<ssize_t>(m.msg_len);
  }
}

void mmsg_send(int fd, const void* data, std::size_t size, const sockaddr_in& to) {
  iovec iov{const_cast<void*>(data), size};
  mmsghdr m{};
  m.msg_hdr.msg_name = const_cast<sockaddr_in*>(&to);
  m.msg_hdr.msg_namelen = sizeof to;
  m.msg_hdr.msg_iov = &iov;
  m.msg_hdr.msg_iovlen = 1;
  ::sendmmsg(fd, &m, 1, 0);
}

// Ping-pong round trip: one datagram there, the same back, --count times.
void udp_pingpong(const Args& a) {
  const auto size = static_cast<std::size_t>(a.num("size", 64));
  const long count = a.num("count", 10000);
  const bool use_epoll = a.num("epoll", 0) != 0;
  Child child([&](int out) {
    std::uint16_t port = 0;
    const int fd = udp_socket(0, &port);
    write_report(out, {port});
    std::vector<char> buf(65536);
    if (use_epoll) {
      const int ep = epoll_for(fd);
      while (!g_stop) {
        sockaddr_in from{};
        const ssize_t n = epoll_receive(ep, fd, buf, &from, 100);
        if (n >= 0) mmsg_send(fd, buf.data(), static_cast<std::size_t>(n), from);
      }
      ::close(ep);
    }
    while (!g_stop) {
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) continue;
      ::sendto(fd, buf.data(), static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
    write_report(out, {});
  });
  const auto port = static_cast<std::uint16_t>(child.read_report().a);
  const int fd = udp_socket(0, nullptr);
  const timeval limit{2, 0};  // a lost datagram ends the run with an error instead of a hang
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  const sockaddr_in to = loopback(port);
  std::string payload;
  fill_payload(payload, size);
  std::vector<char> buf(65536);
  std::vector<double> rtt;
  rtt.reserve(static_cast<std::size_t>(count));
  const int ep = use_epoll ? epoll_for(fd) : -1;
  for (long i = 0; i < count + count / 10; ++i) {
    const std::int64_t t0 = now_ns();
    ssize_t n = 0;
    if (use_epoll) {
      mmsg_send(fd, payload.data(), size, to);
      n = epoll_receive(ep, fd, buf, nullptr, 2000);
    } else {
      ::sendto(fd, payload.data(), size, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
      n = ::recvfrom(fd, buf.data(), buf.size(), 0, nullptr, nullptr);
    }
    check(n == static_cast<ssize_t>(size), "udp ping-pong reply");
    if (i >= count / 10) rtt.push_back(static_cast<double>(now_ns() - t0) / 1000.0);  // warm-up dropped
  }
  child.stop();
  child.read_report();
  child.wait();
  Result{}
      .set("bench", use_epoll ? "udp_rtt_epoll" : "udp_rtt")
      .set("size", static_cast<double>(size))
      .set("p50_us", percentile(rtt, 50))
      .set("p99_us", percentile(rtt, 99))
      .print();
  if (ep >= 0) ::close(ep);
  ::close(fd);
}

}  // namespace perf
