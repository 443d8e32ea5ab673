// The node's sockets: the group socket (well-known port, shared by every node on the host) and
// the node's own unicast socket, both registered with the loop's epoll set, and their
// re-initialisation with exponential backoff after an interface failure. Not thread-safe: the
// node calls it with its mutex held.
#pragma once

#include <optional>

#include "net/udp.hpp"
#include "nomq/node.hpp"

namespace nomq::detail {

class SocketSet {
 public:
  // `setup.group` is the group destination; `unicast_bind` what the unicast socket binds (its
  // port is kept across re-initialisations once the kernel has chosen one).
  SocketSet(const NetworkOptions& network, GroupSetup setup, Endpoint unicast_bind);

  // Opens the sockets and adds them to `epoll_fd`. On failure the log says which call failed;
  // io_error (or the socket error's code) is returned and nothing stays open.
  Result<void> open(int epoll_fd);
  // Closing a descriptor removes it from the epoll set.
  void close() noexcept;

  int unicast_fd() const noexcept { return unicast_.get(); }
  int group_fd() const noexcept { return group_.get(); }
  // The unicast socket's address, and the group destination (its port resolved when it was 0).
  const Endpoint& local() const noexcept { return unicast_local_; }
  const Endpoint& group() const noexcept { return setup_.group; }
  // The socket family datagrams are sent with (the group's).
  int send_family() const noexcept { return family_; }

  // True from an interface failure until a re-initialisation succeeds.
  bool broken() const noexcept { return broken_; }
  // When maybe_reinit() has work: nullopt while the sockets are healthy.
  std::optional<Instant> deadline() const noexcept;

  // A receive saw the socket itself fail: re-create the sockets at once (the first attempt).
  void mark_broken(Instant now, int err);
  // Re-creates the sockets when they are broken and their time has come. True when they were
  // re-created now (the caller counts it).
  bool maybe_reinit(Instant now, int epoll_fd);
  // A send succeeded: the next failure starts its backoff from the initial delay.
  void note_send_ok() noexcept {
    if (delay_ != Duration::zero() && !broken_) delay_ = Duration::zero();
  }
  // A send failed with an interface error (is_interface_error): the sockets are broken; when
  // that happens right after a re-initialisation, the next attempt waits longer.
  void note_interface_error(Instant now, int err);

 private:
  Duration reinit_initial_;
  Duration reinit_max_;
  bool listen_group_;
  GroupSetup setup_;
  int family_;
  Endpoint unicast_bind_;
  Endpoint unicast_local_;
  Fd group_;
  Fd unicast_;
  bool broken_ = false;
  Instant reinit_at_{};
  Duration delay_{0};
};

}  // namespace nomq::detail
