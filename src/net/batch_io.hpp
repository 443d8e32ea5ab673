// Batched datagram I/O between the sockets and the engine: recvmmsg into buffers owned here,
// each datagram handed to Engine::handle_datagram, and what Engine::poll_transmit produces sent
// with sendmmsg (sendto for a lone datagram). Buffers and message headers are allocated once.
// Not thread-safe: the node calls it with its mutex held.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "net/socket_set.hpp"
#include "net/udp.hpp"
#include "nomq/engine.hpp"
#include "nomq/node.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail {

class BatchIo {
 public:
  static constexpr std::size_t kBatch = 32;  // datagrams per recvmmsg/sendmmsg

  BatchIo();
  BatchIo(const BatchIo&) = delete;
  BatchIo& operator=(const BatchIo&) = delete;

  // Reads one batch (up to kBatch datagrams) from `fd` without blocking and hands each to the
  // engine. Returns how many were read: 0 when none was queued or the read failed (counted in
  // stats.receive_errors; a socket that itself failed is marked broken in `sockets`).
  std::size_t receive_batch(int fd, Engine& engine, SocketSet& sockets, Instant now, NodeStats& stats);

  // Sends everything the engine has queued, in batches of kBatch. Datagrams that cannot leave
  // (broken sockets, an IPv6 destination from an IPv4 node, a kernel refusal) are counted in
  // stats.send_errors; the engine retransmits what needs it.
  void flush(Engine& engine, SocketSet& sockets, Instant now, NodeStats& stats);

 private:
  using Buffer = std::array<std::uint8_t, nomq::wire::kMaxDatagram>;

  void send(std::size_t count, SocketSet& sockets, Instant now, NodeStats& stats);
  int send_one(int fd, const msghdr& h) noexcept;

  std::vector<Buffer> rx_buf_;
  std::array<mmsghdr, kBatch> rx_msgs_{};
  std::array<iovec, kBatch> rx_iov_{};
  std::array<SockAddr, kBatch> rx_addr_{};
  std::vector<Buffer> tx_buf_;
  std::array<mmsghdr, kBatch> tx_msgs_{};
  std::array<iovec, kBatch> tx_iov_{};
  std::array<SockAddr, kBatch> tx_addr_{};
};

}  // namespace nomq::detail
