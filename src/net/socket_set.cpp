#include "net/socket_set.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "net/log.hpp"
#include "nomq/endpoint_io.hpp"

namespace nomq::detail {

SocketSet::SocketSet(const NetworkOptions& network, GroupSetup setup, Endpoint unicast_bind)
    : reinit_initial_(network.reinit_initial),
      reinit_max_(network.reinit_max),
      listen_group_(network.listen_group),
      setup_(setup),
      family_(setup.group.family == Endpoint::Family::ipv6 ? AF_INET6 : AF_INET),
      unicast_bind_(unicast_bind) {}

Result<void> SocketSet::open(int epoll_fd) {
  Error err{Errc::io_error};
  Fd g;
  if (listen_group_) {
    g = open_group_socket(setup_, err);
    if (!g.valid()) {
      log().error("{}", err.message());
      return err;
    }
    // Group port 0: the kernel picked one (tests, the demo); later nodes are given it.
    if (setup_.group.port == 0) setup_.group.port = local_address(g.get()).port;
  }
  Fd u = open_unicast_socket(setup_, unicast_bind_, err);
  if (!u.valid()) {
    log().error("{}", err.message());
    return err;
  }
  unicast_local_ = local_address(u.get());
  unicast_bind_.port = unicast_local_.port;  // keep this port across re-initialisations
  for (int fd : {u.get(), g.get()}) {
    if (fd < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      Error e{Errc::io_error, "epoll_ctl: ", std::strerror(errno)};
      log().error("{}", e.message());
      return e;
    }
  }
  unicast_ = std::move(u);
  group_ = std::move(g);
  return {};
}

void SocketSet::close() noexcept {
  unicast_.reset();
  group_.reset();
}

std::optional<Instant> SocketSet::deadline() const noexcept {
  if (!broken_) return std::nullopt;
  return reinit_at_;
}

void SocketSet::mark_broken(Instant now, int err) {
  if (broken_) return;
  broken_ = true;
  delay_ = reinit_initial_;
  reinit_at_ = now;  // first attempt at once; the delay applies if it fails or fails again
  log().warn("socket failed ({}): re-initialising; pending QoS messages are kept", std::strerror(err));
}

void SocketSet::note_interface_error(Instant now, int err) {
  if (delay_ == Duration::zero()) {
    mark_broken(now, err);
    return;
  }
  // Failed again right after a re-initialisation: wait longer before the next one.
  broken_ = true;
  reinit_at_ = now + delay_;
  delay_ = std::min(delay_ * 2, reinit_max_);
}

bool SocketSet::maybe_reinit(Instant now, int epoll_fd) {
  if (!broken_ || now < reinit_at_) return false;
  close();
  if (open(epoll_fd).ok()) {
    broken_ = false;
    log().info("sockets re-initialised on {}", to_string(unicast_local_));
    // If the interface is still unusable the next send fails and we come back here later.
    reinit_at_ = now + delay_;
    return true;
  }
  close();
  reinit_at_ = now + delay_;
  log().warn("socket re-initialisation failed; next attempt in {} ms",
             std::chrono::duration_cast<std::chrono::milliseconds>(delay_).count());
  delay_ = std::min(delay_ * 2, reinit_max_);
  return false;
}

}  // namespace nomq::detail
