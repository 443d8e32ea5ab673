// The platform layer: what a port of NoMQ to a device implements so that the reference device
// loop (nomq/device_loop.hpp) can drive a nomq::Engine. Seven functions: two clocks, entropy,
// and one UDP socket (open, join a group, send, receive with a timeout, close). No OS headers
// here; an implementation (the lwIP one: nomq/lwip_platform.hpp; ESP-IDF and Zephyr notes in
// docs/embedded.md, "Porting guide") includes its stack's headers in its own .cpp.
//
// Contracts common to every call: no exceptions; failures come back as nomq::Error with a
// platform code (io_error, timed_out, crypto_failure) or invalid_argument, and a one-line
// reason naming the call and the stack's error ("udp_send to 10.0.0.2:8888: lwip errno 12").
// The engine is not thread-safe, and neither is a Platform: one thread (the loop's) calls both.
#pragma once

#include "nomq/export.hpp"

#include <cstddef>

#include "nomq/bytes.hpp"
#include "nomq/endpoint.hpp"
#include "nomq/error.hpp"
#include "nomq/time.hpp"

namespace nomq {

// One datagram taken by Platform::udp_receive: who sent it and how many bytes of the caller's
// buffer it filled.
struct ReceivedDatagram {
  Endpoint from;
  std::size_t size = 0;
};

class NOMQ_EXPORT Platform {
 public:
  virtual ~Platform() = default;

  // --- clocks (nomq/time.hpp): never fail.
  // A monotonic reading in microseconds from any origin (boot): never goes back, is not stepped
  // by NTP. ESP-IDF esp_timer_get_time(), Zephyr k_uptime_ticks(), FreeRTOS a tick count
  // widened to 64 bits. Every engine timer runs on it.
  virtual Instant monotonic_now() noexcept = 0;
  // Microseconds since 1970-01-01 UTC (gettimeofday after SNTP). Only stamped on the wire and
  // checked against peers' stamps: a device before its first SNTP answer is refused by peers
  // (clock_skew) but its timers still run right.
  virtual WallTime wall_now() noexcept = 0;

  // --- entropy: fills `out` with bytes from a true random source (a TRNG), to seed and reseed
  // the DRBG (never used directly as IVs). Errors: crypto_failure when no entropy is available
  // (the node must not start then).
  virtual Result<void> entropy(MutableBytes out) noexcept = 0;

  // --- one UDP socket, the node's only one.
  // Opens it bound to `local` (family ipv4 or ipv6; an all-zero address means any; port: the
  // group port, so that broadcast/multicast to it arrives). Errors: io_error (the stack's
  // reason), invalid_argument (family none). Opening an open socket closes it first.
  virtual Result<void> udp_open(const Endpoint& local) noexcept = 0;
  // Joins the multicast group `group` (IGMP / MLD) on the default interface. Not needed for
  // broadcast. Errors: io_error, invalid_argument (not a multicast address).
  virtual Result<void> udp_join(const Endpoint& group) noexcept = 0;
  // Sends one datagram (whole, never fragmented by the caller). Errors: io_error (no route, no
  // buffer: UDP loses it anyway, the engine retransmits what needs it), invalid_argument.
  virtual Result<void> udp_send(const Endpoint& to, Bytes datagram) noexcept = 0;
  // Waits at most `timeout` (0: do not wait) for one datagram and copies it into `buffer`
  // (a longer datagram is cut to the buffer; give wire::kMaxDatagram bytes). Errors: timed_out
  // when none came (the normal case of an idle loop), io_error.
  virtual Result<ReceivedDatagram> udp_receive(MutableBytes buffer, Duration timeout) noexcept = 0;
  // Closes the socket (and leaves its groups). Harmless when closed.
  virtual void udp_close() noexcept = 0;
};

// Platform::entropy with mbedTLS's f_entropy signature (`context` a Platform*), for
// nomq::EntropySource (nomq/mbedtls_crypto.hpp) so that the DRBG seeds from the platform:
//   nomq::EntropySource{&nomq::platform_entropy_poll, &platform}
// Returns 0 on success, -1 when Platform::entropy failed.
NOMQ_EXPORT int platform_entropy_poll(void* context, unsigned char* out, std::size_t len) noexcept;

}  // namespace nomq
