#include "net/event_loop.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "net/log.hpp"

namespace nomq::detail {

Result<void> EventLoop::open() {
  epoll_ = Fd{::epoll_create1(EPOLL_CLOEXEC)};
  wake_ = Fd{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  if (!epoll_.valid() || !wake_.valid()) {
    return Error{Errc::io_error, epoll_.valid() ? "eventfd: " : "epoll_create1: ",
                 std::strerror(errno)};
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) {
    return Error{Errc::io_error, "epoll_ctl: ", std::strerror(errno)};
  }
  return {};
}

Result<EventLoop::Ready> EventLoop::wait(int timeout_ms, int unicast_fd, int group_fd) {
  std::array<epoll_event, 4> events{};
  const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
  if (n < 0 && errno != EINTR) {
    Error e{Errc::io_error, "epoll_wait: ", std::strerror(errno)};
    log().error("{}", e.message());
    return e;
  }
  Ready ready;
  for (int i = 0; i < n; ++i) {
    const int fd = events[static_cast<std::size_t>(i)].data.fd;
    if (fd == wake_.get()) {
      std::uint64_t v = 0;
      [[maybe_unused]] auto r = ::read(fd, &v, sizeof v);
    } else if (fd == unicast_fd) {
      ready.unicast = true;
    } else if (fd == group_fd) {
      ready.group = true;
    }
  }
  return ready;
}

void EventLoop::wake() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(wake_.get(), &one, sizeof one);
}

bool EventLoop::start(std::function<bool()> turn) {
  if (started_.exchange(true)) return false;
  thread_ = std::thread([this, turn = std::move(turn)] {
    std::lock_guard loop(turn_mutex_);
    while (!stopping_.load()) {
      if (!turn()) break;
    }
  });
  return true;
}

// Node::close() has stopped the thread already; this is for a node that failed half-way.
EventLoop::~EventLoop() { stop(); }

void EventLoop::stop() {
  if (!started_.load() || stopping_.exchange(true)) return;
  wake();
  if (thread_.joinable()) thread_.join();
}

}  // namespace nomq::detail
