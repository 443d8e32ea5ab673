#include "net/udp.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "nomq/endpoint_io.hpp"

namespace nomq::detail {

void Fd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

SockAddr to_sockaddr(const Endpoint& e, int socket_family) noexcept {
  SockAddr out;
  if (e.family == Endpoint::Family::ipv4 && socket_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(e.port);
    std::memcpy(&sin->sin_addr, e.address.data(), 4);
    out.length = sizeof(sockaddr_in);
    return out;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(e.port);
  if (e.family == Endpoint::Family::ipv4) {
    // ::ffff:a.b.c.d
    sin6->sin6_addr.s6_addr[10] = 0xff;
    sin6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&sin6->sin6_addr.s6_addr[12], e.address.data(), 4);
  } else {
    std::memcpy(&sin6->sin6_addr, e.address.data(), 16);
    sin6->sin6_scope_id = e.scope_id;
  }
  out.length = sizeof(sockaddr_in6);
  return out;
}

Endpoint from_sockaddr(const sockaddr* sa, socklen_t length) noexcept {
  Endpoint e;
  if (sa->sa_family == AF_INET && length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    e.family = Endpoint::Family::ipv4;
    std::memcpy(e.address.data(), &sin->sin_addr, 4);
    e.port = ntohs(sin->sin_port);
  } else if (sa->sa_family == AF_INET6 && length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    e.port = ntohs(sin6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      e.family = Endpoint::Family::ipv4;
      std::memcpy(e.address.data(), &sin6->sin6_addr.s6_addr[12], 4);
    } else {
      e.family = Endpoint::Family::ipv6;
      std::memcpy(e.address.data(), &sin6->sin6_addr, 16);
      e.scope_id = sin6->sin6_scope_id;
    }
  }
  return e;
}

bool is_multicast(const Endpoint& e) noexcept {
  if (e.family == Endpoint::Family::ipv4) return (e.address[0] & 0xF0) == 0xE0;
  if (e.family == Endpoint::Family::ipv6) return e.address[0] == 0xFF;
  return false;
}

namespace {

int family_of(const Endpoint& e) { return e.family == Endpoint::Family::ipv6 ? AF_INET6 : AF_INET; }

// Sets `error` to io_error "<what>: <strerror(errno)>", e.g. "bind 0.0.0.0:8888: Address already
// in use".
bool fail(Error& error, std::string_view what) {
  const int err = errno;
  error = Error{Errc::io_error, what, ": ", std::strerror(err)};
  return false;
}

bool set_int(int fd, int level, int name, int value, Error& error, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) return fail(error, what);
  return true;
}

Fd new_socket(int family, Error& error) {
  Fd fd{::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP)};
  if (!fd.valid()) {
    fail(error, "socket");
    return fd;
  }
  if (family == AF_INET6 && !set_int(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0, error, "IPV6_V6ONLY"))
    fd.reset();
  return fd;
}

bool set_multicast_send(int fd, const GroupSetup& g, Error& error) {
  if (g.group.family == Endpoint::Family::ipv4) {
    ip_mreqn mreq{};
    mreq.imr_ifindex = static_cast<int>(g.interface_index);
    if (g.interface_index != 0 &&
        ::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof mreq) != 0)
      return fail(error, "IP_MULTICAST_IF");
    return set_int(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1, error, "IP_MULTICAST_LOOP") &&
           set_int(fd, IPPROTO_IP, IP_MULTICAST_TTL, 1, error, "IP_MULTICAST_TTL");
  }
  if (g.interface_index != 0 &&
      !set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, static_cast<int>(g.interface_index), error,
               "IPV6_MULTICAST_IF"))
    return false;
  return set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1, error, "IPV6_MULTICAST_LOOP") &&
         set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 1, error, "IPV6_MULTICAST_HOPS");
}

// Large buffers absorb bursts (a batch of retransmissions, many nodes answering at once, a
// publisher sending QoS 0 back to back while the receiving thread waits for a core). Capped by
// net.core.rmem_max / wmem_max; a smaller buffer is no error.
void set_large_buffers(int fd) noexcept {
  int size = 1 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

}  // namespace

Fd open_group_socket(const GroupSetup& g, Error& error) {
  const int family = family_of(g.group);
  Fd fd = new_socket(family, error);
  if (!fd.valid()) return fd;
  // SO_REUSEADDR is what lets several nodes on one host bind the group port and each receive
  // every broadcast and multicast datagram (Linux delivers those to all matching sockets).
  // SO_REUSEPORT is not set: with it, Linux would spread *unicast* datagrams over the sockets,
  // and it refuses sockets of other users; group traffic does not need it.
  if (!set_int(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, error, "SO_REUSEADDR")) return Fd{};
  // Bind the wildcard address: a broadcast datagram is addressed to 255.255.255.255 or the
  // subnet broadcast, a multicast one to the group; the wildcard hears all of them.
  Endpoint any;
  any.family = g.group.family;
  any.port = g.group.port;
  const SockAddr sa = to_sockaddr(any, family);
  if (::bind(fd.get(), sa.get(), sa.length) != 0) {
    fail(error, "bind group port " + std::to_string(g.group.port));
    return Fd{};
  }
  if (is_multicast(g.group)) {
    if (g.group.family == Endpoint::Family::ipv4) {
      ip_mreqn mreq{};
      std::memcpy(&mreq.imr_multiaddr, g.group.address.data(), 4);
      mreq.imr_ifindex = static_cast<int>(g.interface_index);
      if (::setsockopt(fd.get(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0) {
        fail(error, "IP_ADD_MEMBERSHIP " + to_string(g.group));
        return Fd{};
      }
      // Only the group we joined, not every group some other socket on the host joined.
      if (!set_int(fd.get(), IPPROTO_IP, IP_MULTICAST_ALL, 0, error, "IP_MULTICAST_ALL"))
        return Fd{};
    } else {
      ipv6_mreq mreq{};
      std::memcpy(&mreq.ipv6mr_multiaddr, g.group.address.data(), 16);
      mreq.ipv6mr_interface = g.interface_index;
      if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof mreq) != 0) {
        fail(error, "IPV6_JOIN_GROUP " + to_string(g.group));
        return Fd{};
      }
#ifdef IPV6_MULTICAST_ALL
      if (!set_int(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0, error, "IPV6_MULTICAST_ALL"))
        return Fd{};
#endif
    }
  }
  set_large_buffers(fd.get());
  return fd;
}

Fd open_unicast_socket(const GroupSetup& g, const Endpoint& bind, Error& error) {
  const int family = family_of(g.group);
  Fd fd = new_socket(family, error);
  if (!fd.valid()) return fd;
  // No SO_REUSEADDR here: with it, Linux may hand out as "ephemeral" a port that other
  // SO_REUSEADDR sockets already hold (such as the group port), and unicast replies would go
  // astray. Re-initialisation closes the old socket before binding its port again, and UDP has
  // no TIME_WAIT, so the port is free.
  if (family == AF_INET && !set_int(fd.get(), SOL_SOCKET, SO_BROADCAST, 1, error, "SO_BROADCAST"))
    return Fd{};
  if (is_multicast(g.group) && !set_multicast_send(fd.get(), g, error)) return Fd{};
  Endpoint b = bind;
  if (!b.valid()) b.family = g.group.family;
  const SockAddr sa = to_sockaddr(b, family);
  if (::bind(fd.get(), sa.get(), sa.length) != 0) {
    fail(error, "bind " + to_string(b));
    return Fd{};
  }
  set_large_buffers(fd.get());
  return fd;
}

Endpoint local_address(int fd) noexcept {
  SockAddr sa;
  sa.length = sizeof sa.storage;
  if (::getsockname(fd, sa.get(), &sa.length) != 0) return {};
  return from_sockaddr(sa.get(), sa.length);
}

bool is_interface_error(int err) noexcept {
  switch (err) {
    case ENETDOWN:
    case ENETUNREACH:
    case ENODEV:
    case ENXIO:
    case EADDRNOTAVAIL:
    case EBADF:
    case ENOTSOCK:
      return true;
    default:
      return false;
  }
}

}  // namespace nomq::detail
