// UDP sockets for the node: the group socket (well-known port, shared by every node on a host)
// and the unicast socket (the node's own port, from which it sends). Linux only.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "nomq/endpoint.hpp"
#include "nomq/error.hpp"

namespace nomq::detail {

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
};

// `socket_family`: the family of the socket the address is used with. An IPv4 endpoint on an
// IPv6 socket becomes a v4-mapped address.
SockAddr to_sockaddr(const Endpoint& e, int socket_family) noexcept;
// v4-mapped IPv6 addresses come back as IPv4 endpoints, so a peer has one name.
Endpoint from_sockaddr(const sockaddr* sa, socklen_t length) noexcept;

bool is_multicast(const Endpoint& e) noexcept;


struct GroupSetup {
  Endpoint group;
  unsigned interface_index = 0;  // 0: kernel's choice
};

// The socket bound to the group port with SO_REUSEADDR (every node on the host hears broadcast
// and multicast), joined to the multicast group on the interface when the group is multicast.
Fd open_group_socket(const GroupSetup& g, Error& error);
// The node's own socket: bound to `bind` (port 0: ephemeral), SO_BROADCAST, multicast
// interface and loopback set for sending to the group.
Fd open_unicast_socket(const GroupSetup& g, const Endpoint& bind, Error& error);
// The address a socket is bound to.
Endpoint local_address(int fd) noexcept;

// Errors after which the sockets are re-created (the interface or its address went away), as
// opposed to transient ones (a full buffer, a firewall drop, an ICMP error from a dead peer).
bool is_interface_error(int err) noexcept;

}  // namespace nomq::detail
