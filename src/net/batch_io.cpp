#include "net/batch_io.hpp"

#include <cerrno>
#include <cstring>

#include "net/clock.hpp"
#include "net/log.hpp"
#include "nomq/endpoint_io.hpp"

namespace nomq::detail {
namespace {

// Debug log: why the engine dropped a datagram (its drop counters moved).
void log_drop(const EngineStats& before, const EngineStats& after, const Endpoint& from) {
  for (std::size_t i = 0; i < kErrcCount; ++i) {
    // Our own group datagrams come back after every group send: a line for each would flood
    // the log (the summary at exit still counts them).
    if (after.dropped[i] != before.dropped[i] && static_cast<Errc>(i) != Errc::own_packet)
      log().debug("dropped datagram from {}: {}", to_string(from), to_string(static_cast<Errc>(i)));
  }
}

}  // namespace

BatchIo::BatchIo() : rx_buf_(kBatch), tx_buf_(kBatch) {
  // recvmmsg writes back msg_namelen, msg_len and msg_flags; the rest stays as set here.
  for (std::size_t i = 0; i < kBatch; ++i) {
    rx_iov_[i] = {rx_buf_[i].data(), rx_buf_[i].size()};
    rx_msgs_[i].msg_hdr.msg_name = rx_addr_[i].get();
    rx_msgs_[i].msg_hdr.msg_iov = &rx_iov_[i];
    rx_msgs_[i].msg_hdr.msg_iovlen = 1;
    tx_msgs_[i].msg_hdr.msg_name = tx_addr_[i].get();
    tx_msgs_[i].msg_hdr.msg_iov = &tx_iov_[i];
    tx_msgs_[i].msg_hdr.msg_iovlen = 1;
  }
}

std::size_t BatchIo::receive_batch(int fd, Engine& engine, SocketSet& sockets, Instant now,
                                   NodeStats& stats) {
  for (std::size_t i = 0; i < kBatch; ++i)
    rx_msgs_[i].msg_hdr.msg_namelen = static_cast<socklen_t>(sizeof rx_addr_[i].storage);
  const int n = ::recvmmsg(fd, rx_msgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
  if (n < 0) {
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return 0;
    // ICMP errors (a peer that died: ECONNREFUSED) surface here; they are not ours.
    ++stats.receive_errors;
    log().debug("receive: {}", std::strerror(err));
    if (err == EBADF || err == ENOTSOCK) sockets.mark_broken(now, err);
    return 0;
  }
  if (n == 0) return 0;
  const auto count = static_cast<std::size_t>(n);
  ++stats.batches_received;
  if (fd == sockets.unicast_fd()) stats.unicast_received += count;
  // Formatting arguments (to_string of an endpoint) are evaluated before spdlog checks the
  // level: check it once per batch.
  const bool debug = log_enabled(Severity::debug);
  const WallTime wall = wall_now();  // for the wire timestamps only
  for (std::size_t i = 0; i < count; ++i) {
    const auto& msg = rx_msgs_[i];
    const Endpoint from = from_sockaddr(rx_addr_[i].get(), msg.msg_hdr.msg_namelen);
    // A datagram longer than the buffer arrives truncated; hand over what we have and the
    // codec rejects it (as the original does with its 2048-byte buffer).
    const Bytes data{rx_buf_[i].data(), msg.msg_len};
    if (!debug) {
      engine.handle_datagram(from, data, now, wall);
      continue;
    }
    const EngineStats before = engine.stats();
    engine.handle_datagram(from, data, now, wall);
    if (engine.stats().dropped_total != before.dropped_total) log_drop(before, engine.stats(), from);
  }
  return count;
}

void BatchIo::flush(Engine& engine, SocketSet& sockets, Instant now, NodeStats& stats) {
  const WallTime wall = wall_now();  // for the wire timestamps only
  for (;;) {
    std::size_t count = 0;
    while (count < kBatch) {
      auto tx = engine.poll_transmit(now, wall, tx_buf_[count]);
      if (!tx) break;
      const Endpoint& to = tx->to_group ? sockets.group() : tx->to;
      if (sockets.send_family() == AF_INET && to.family == Endpoint::Family::ipv6) {
        ++stats.send_errors;
        log().warn("cannot send to {} from an IPv4 node; dropped", to_string(to));
        continue;
      }
      tx_addr_[count] = to_sockaddr(to, sockets.send_family());
      tx_iov_[count] = {tx_buf_[count].data(), tx->size};
      tx_msgs_[count].msg_hdr.msg_namelen = tx_addr_[count].length;
      ++count;
    }
    if (count == 0) return;
    send(count, sockets, now, stats);
    if (count < kBatch) return;
  }
}

// 1 if the datagram was sent, -1 with errno set otherwise (as sendmmsg would return).
int BatchIo::send_one(int fd, const msghdr& h) noexcept {
  const ssize_t r = ::sendto(fd, h.msg_iov[0].iov_base, h.msg_iov[0].iov_len, 0,
                             static_cast<const sockaddr*>(h.msg_name), h.msg_namelen);
  return r < 0 ? -1 : 1;
}

void BatchIo::send(std::size_t count, SocketSet& sockets, Instant now, NodeStats& stats) {
  if (sockets.broken() || sockets.unicast_fd() < 0) {
    // The engine retransmits QoS 1/2 once the sockets are back; QoS 0 is lost, and counted.
    stats.send_errors += count;
    return;
  }
  const int fd = sockets.unicast_fd();
  std::size_t done = 0;
  while (done < count) {
    // One datagram (a publish, an ACK): sendto, about 0.2 us cheaper than sendmmsg of one
    // here (docs/performance.md, "Optimisations"); same errors, same result.
    const int n = count - done == 1
                      ? send_one(fd, tx_msgs_[done].msg_hdr)
                      : ::sendmmsg(fd, tx_msgs_.data() + done, static_cast<unsigned>(count - done), 0);
    ++stats.batches_sent;
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      sockets.note_send_ok();
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    ++stats.send_errors;
    const Endpoint to = from_sockaddr(tx_addr_[done].get(), tx_addr_[done].length);
    if (is_interface_error(err)) {
      log().warn("send to {}: {}", to_string(to), std::strerror(err));
      sockets.note_interface_error(now, err);
      stats.send_errors += count - done - 1;
      return;
    }
    // EPERM (a firewall rule), ENOBUFS, ECONNREFUSED from an earlier ICMP: this datagram
    // only; the engine retransmits what needs it.
    log().debug("send to {}: {}", to_string(to), std::strerror(err));
    ++done;
  }
}

}  // namespace nomq::detail
