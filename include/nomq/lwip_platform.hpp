// nomq::Platform on lwIP's socket API (lwip_socket, lwip_sendto, lwip_recvfrom with
// SO_RCVTIMEO, IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP): the calls ESP-IDF applications make. lwIP
// has no clock or entropy of its own that fits (sys_now() is 32-bit milliseconds), so those
// come from the board as three functions. Built when lwIP is found (CMake option NOMQ_LWIP,
// target nomq::lwip); tested on Linux with Debian's liblwip-dev over a TAP device
// (tests/lwip). No lwIP header here: lwip_platform.cpp includes them.
//
// Before udp_open, the board has brought lwIP up (tcpip_init, a netif added and up); the
// socket calls may then come from any one thread (lwIP's core lock serialises them).
#pragma once

#include "nomq/export.hpp"

#include "nomq/platform.hpp"

namespace nomq {

// The board's clocks and TRNG, as Platform's contracts say. `context` is passed back.
struct LwipBoard {
  Instant (*monotonic_now)(void* context) noexcept = nullptr;
  WallTime (*wall_now)(void* context) noexcept = nullptr;
  // Fills `out` with true random bytes; false when the source failed.
  bool (*entropy)(void* context, MutableBytes out) noexcept = nullptr;
  void* context = nullptr;
};

class NOMQ_EXPORT LwipPlatform final : public Platform {
 public:
  // Every function of `board` must be set.
  explicit LwipPlatform(const LwipBoard& board) noexcept;
  ~LwipPlatform() override;
  LwipPlatform(const LwipPlatform&) = delete;
  LwipPlatform& operator=(const LwipPlatform&) = delete;

  Instant monotonic_now() noexcept override;
  WallTime wall_now() noexcept override;
  Result<void> entropy(MutableBytes out) noexcept override;
  Result<void> udp_open(const Endpoint& local) noexcept override;
  Result<void> udp_join(const Endpoint& group) noexcept override;
  Result<void> udp_send(const Endpoint& to, Bytes datagram) noexcept override;
  Result<ReceivedDatagram> udp_receive(MutableBytes buffer, Duration timeout) noexcept override;
  void udp_close() noexcept override;

 private:
  LwipBoard board_;
  int socket_ = -1;
  Endpoint::Family family_ = Endpoint::Family::none;
  long receive_timeout_ms_ = -1;  // SO_RCVTIMEO currently set (-1: none yet)
};

}  // namespace nomq
