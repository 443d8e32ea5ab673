// The reference device loop: one nomq::Engine driven over a nomq::Platform (nomq/platform.hpp).
// This is the loop a firmware author copies into an ESP-IDF task or a Zephyr thread; the lwIP
// port's test program (tests/lwip/lwip_node.cpp) runs it on lwIP over a TAP device.
//
//   alignas(nomq::Engine::kStateAlign) static std::byte state[kStateBytes];  // >= state_bytes_for
//   auto engine = nomq::Engine::create(config, crypto, rng, platform.monotonic_now(), state);
//   nomq::DeviceLoop loop(*engine, platform, group, on_event, &app);
//   engine->subscribe("plant/valve", 0, platform.monotonic_now());
//   for (;;) {
//     if (auto r = loop.run_once(100ms); !r) { log(r.error().c_str()); /* reopen, or reboot */ }
//     /* the application's work: engine->publish(..., platform.monotonic_now()) */
//   }
//
// One turn: send what the engine has queued (the application may have published), wait for a
// datagram until the engine's next deadline (or `max_wait`), hand it to the engine, run its
// timers if due, send what that produced, and pass every event to the callback. Nothing here
// allocates: the two datagram buffers live in the loop object (2 x wire::kMaxDatagram).
#pragma once

#include "nomq/export.hpp"

#include <array>
#include <cstdint>

#include "nomq/engine.hpp"
#include "nomq/platform.hpp"
#include "nomq/wire.hpp"

namespace nomq {

// What the loop did, for a device's diagnostics.
struct DeviceLoopStats {
  std::uint64_t received = 0;     // datagrams handed to the engine
  std::uint64_t sent = 0;         // datagrams sent
  std::uint64_t send_errors = 0;  // udp_send failures (the datagram is lost; the engine retransmits QoS 1/2)
  std::uint64_t events = 0;       // events passed to the callback
};

class NOMQ_EXPORT DeviceLoop {
 public:
  // Called for every event (MessageEvent, DeliveryReport, PeerEvent). Views in the event are
  // valid only during the call. The callback may call engine.publish() and friends.
  using EventHandler = void (*)(void* context, const Event& event);

  // `group`: where datagrams the engine sends to the group go (the config's broadcast address
  // or multicast group, at the group port). `engine` and `platform` must outlive the loop; the
  // platform's socket must be open (and joined, for multicast).
  DeviceLoop(Engine& engine, Platform& platform, const Endpoint& group, EventHandler on_event,
             void* context) noexcept;

  // One turn, waiting at most `max_wait` for a datagram (less when a timer is due sooner).
  // Errors: what udp_receive returned other than timed_out (io_error: the socket is broken;
  // reopen it or restart). Send failures are counted, not returned.
  Result<void> run_once(Duration max_wait) noexcept;

  // Sends everything the engine has queued and passes every pending event to the callback
  // (run_once does this on both ends of its wait). Call after engine.publish() to send at once.
  void flush() noexcept;

  const DeviceLoopStats& stats() const noexcept { return stats_; }

 private:
  Engine& engine_;
  Platform& platform_;
  Endpoint group_;
  EventHandler on_event_;
  void* context_;
  DeviceLoopStats stats_;
  std::array<std::uint8_t, wire::kMaxDatagram> rx_{};
  std::array<std::uint8_t, wire::kMaxDatagram> tx_{};
};

}  // namespace nomq
