// nomq::Platform on lwIP sockets (nomq/lwip_platform.hpp). Only lwIP's own calls (lwip_*), so
// that the same file builds in an ESP-IDF component, where they are the sockets API. The socket
// address structures are whatever lwIP's headers give (lwIP's own on a device; the C library's
// in Debian's build, which sets LWIP_SOCKET_EXTERNAL_HEADERS); only their common fields are used.
#include "nomq/lwip_platform.hpp"

#include <lwip/sockets.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace nomq {
namespace {

// "10.0.0.2:8888" or "[fd00::2]:8888" into `out` (for error messages).
const char* describe(const Endpoint& e, char (&out)[64]) noexcept {
  if (e.family == Endpoint::Family::ipv4) {
    std::snprintf(out, sizeof out, "%u.%u.%u.%u:%u", e.address[0], e.address[1], e.address[2],
                  e.address[3], e.port);
  } else if (e.family == Endpoint::Family::ipv6) {
    int n = std::snprintf(out, sizeof out, "[");
    for (int i = 0; i < 16 && n > 0 && n < 50; i += 2)
      n += std::snprintf(out + n, sizeof out - static_cast<std::size_t>(n), "%s%x", i ? ":" : "",
                         (e.address[static_cast<std::size_t>(i)] << 8) | e.address[static_cast<std::size_t>(i) + 1]);
    if (n > 0 && n < 56) std::snprintf(out + n, sizeof out - static_cast<std::size_t>(n), "]:%u", e.port);
  } else {
    std::snprintf(out, sizeof out, "(no address)");
  }
  return out;
}

// An Endpoint as a socket address; returns its length (0: family none).
socklen_t to_sockaddr(const Endpoint& e, sockaddr_storage& ss) noexcept {
  std::memset(&ss, 0, sizeof ss);
  const unsigned char port[2] = {static_cast<unsigned char>(e.port >> 8),
                                 static_cast<unsigned char>(e.port & 0xff)};
  if (e.family == Endpoint::Family::ipv4) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    std::memcpy(&sa->sin_port, port, 2);
    std::memcpy(&sa->sin_addr, e.address.data(), 4);
    return sizeof(sockaddr_in);
  }
  if (e.family == Endpoint::Family::ipv6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    std::memcpy(&sa->sin6_port, port, 2);
    std::memcpy(&sa->sin6_addr, e.address.data(), 16);
    sa->sin6_scope_id = e.scope_id;
    return sizeof(sockaddr_in6);
  }
  return 0;
}

Endpoint from_sockaddr(const sockaddr_storage& ss) noexcept {
  Endpoint e;
  unsigned char port[2];
  if (ss.ss_family == AF_INET) {
    const auto* sa = reinterpret_cast<const sockaddr_in*>(&ss);
    e.family = Endpoint::Family::ipv4;
    std::memcpy(e.address.data(), &sa->sin_addr, 4);
    std::memcpy(port, &sa->sin_port, 2);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(&ss);
    e.family = Endpoint::Family::ipv6;
    std::memcpy(e.address.data(), &sa->sin6_addr, 16);
    std::memcpy(port, &sa->sin6_port, 2);
    e.scope_id = sa->sin6_scope_id;
  } else {
    return e;
  }
  e.port = static_cast<std::uint16_t>((port[0] << 8) | port[1]);
  return e;
}

}  // namespace

LwipPlatform::LwipPlatform(const LwipBoard& board) noexcept : board_(board) {}

LwipPlatform::~LwipPlatform() { udp_close(); }

Instant LwipPlatform::monotonic_now() noexcept { return board_.monotonic_now(board_.context); }

WallTime LwipPlatform::wall_now() noexcept { return board_.wall_now(board_.context); }

Result<void> LwipPlatform::entropy(MutableBytes out) noexcept {
  if (!board_.entropy(board_.context, out))
    return Error{Errc::crypto_failure, "entropy: the board's random source failed (", out.size(),
                 " bytes asked)"};
  return {};
}

Result<void> LwipPlatform::udp_open(const Endpoint& local) noexcept {
  udp_close();
  char where[64];
  if (!local.valid()) return Error{Errc::invalid_argument, "udp_open: no address family"};
  const int domain = local.family == Endpoint::Family::ipv4 ? AF_INET : AF_INET6;
  const int s = lwip_socket(domain, SOCK_DGRAM, 0);
  if (s < 0) return Error{Errc::io_error, "udp_open: lwip_socket failed: lwip errno ", errno};
  const int on = 1;
  // Broadcast groups need SO_BROADCAST where lwIP checks it (IP_SOF_BROADCAST); a restarted
  // node rebinds its port at once.
  lwip_setsockopt(s, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
  lwip_setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_storage ss;
  const socklen_t len = to_sockaddr(local, ss);
  if (lwip_bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const int err = errno;
    lwip_close(s);
    return Error{Errc::io_error, "udp_open: bind to ", describe(local, where), ": lwip errno ", err};
  }
  socket_ = s;
  family_ = local.family;
  receive_timeout_ms_ = -1;
  return {};
}

Result<void> LwipPlatform::udp_join(const Endpoint& group) noexcept {
  char where[64];
  if (socket_ < 0) return Error{Errc::io_error, "udp_join: the socket is not open"};
  if (group.family == Endpoint::Family::ipv4 && family_ == Endpoint::Family::ipv4) {
    if ((group.address[0] & 0xf0) != 0xe0)
      return Error{Errc::invalid_argument, "udp_join: ", describe(group, where), " is not an IPv4 multicast group"};
    ip_mreq mreq;
    std::memset(&mreq, 0, sizeof mreq);
    std::memcpy(&mreq.imr_multiaddr, group.address.data(), 4);  // imr_interface: any (0.0.0.0)
    if (lwip_setsockopt(socket_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0)
      return Error{Errc::io_error, "udp_join: ", describe(group, where), ": lwip errno ", errno};
    return {};
  }
  if (group.family == Endpoint::Family::ipv6 && family_ == Endpoint::Family::ipv6) {
    if (group.address[0] != 0xff)
      return Error{Errc::invalid_argument, "udp_join: ", describe(group, where), " is not an IPv6 multicast group"};
    ipv6_mreq mreq;
    std::memset(&mreq, 0, sizeof mreq);
    std::memcpy(&mreq.ipv6mr_multiaddr, group.address.data(), 16);
    mreq.ipv6mr_interface = group.scope_id;
    if (lwip_setsockopt(socket_, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof mreq) != 0)
      return Error{Errc::io_error, "udp_join: ", describe(group, where), ": lwip errno ", errno};
    return {};
  }
  return Error{Errc::invalid_argument, "udp_join: ", describe(group, where),
               " is not of the socket's address family"};
}

Result<void> LwipPlatform::udp_send(const Endpoint& to, Bytes datagram) noexcept {
  char where[64];
  if (socket_ < 0) return Error{Errc::io_error, "udp_send: the socket is not open"};
  sockaddr_storage ss;
  const socklen_t len = to_sockaddr(to, ss);
  if (len == 0) return Error{Errc::invalid_argument, "udp_send: no destination address"};
  const auto sent = lwip_sendto(socket_, datagram.data(), datagram.size(), 0,
                                reinterpret_cast<sockaddr*>(&ss), len);
  if (sent < 0 || static_cast<std::size_t>(sent) != datagram.size())
    return Error{Errc::io_error, "udp_send to ", describe(to, where), ": lwip errno ", errno};
  return {};
}

Result<ReceivedDatagram> LwipPlatform::udp_receive(MutableBytes buffer, Duration timeout) noexcept {
  if (socket_ < 0) return Error{Errc::io_error, "udp_receive: the socket is not open"};
  int flags = 0;
  if (timeout <= Duration{0}) {
    flags = MSG_DONTWAIT;
  } else {
    // SO_RCVTIMEO counts milliseconds in lwIP (0 would mean "forever"): round up, set only
    // when it changes (one lwip_setsockopt per change, not per call).
    const long ms = static_cast<long>((timeout.count() + 999) / 1000);
    if (ms != receive_timeout_ms_) {
      timeval tv{};
      tv.tv_sec = ms / 1000;
      tv.tv_usec = (ms % 1000) * 1000;
      if (lwip_setsockopt(socket_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
        return Error{Errc::io_error, "udp_receive: SO_RCVTIMEO: lwip errno ", errno};
      receive_timeout_ms_ = ms;
    }
  }
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  socklen_t len = sizeof ss;
  const auto got = lwip_recvfrom(socket_, buffer.data(), buffer.size(), flags,
                                 reinterpret_cast<sockaddr*>(&ss), &len);
  if (got < 0) {
    const int err = errno;
    if (err == EWOULDBLOCK || err == EAGAIN) return Error{Errc::timed_out, "udp_receive: nothing within the timeout"};
    return Error{Errc::io_error, "udp_receive: lwip errno ", err};
  }
  return ReceivedDatagram{from_sockaddr(ss), static_cast<std::size_t>(got)};
}

void LwipPlatform::udp_close() noexcept {
  if (socket_ >= 0) lwip_close(socket_);
  socket_ = -1;
  family_ = Endpoint::Family::none;
}

}  // namespace nomq
