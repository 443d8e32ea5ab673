// The reference device loop (nomq/device_loop.hpp). Keep it short: it is meant to be read and
// copied into a firmware project.
#include "nomq/device_loop.hpp"

#include <algorithm>

namespace nomq {

int platform_entropy_poll(void* context, unsigned char* out, std::size_t len) noexcept {
  auto* platform = static_cast<Platform*>(context);
  return platform->entropy(MutableBytes{out, len}) ? 0 : -1;
}

DeviceLoop::DeviceLoop(Engine& engine, Platform& platform, const Endpoint& group,
                       EventHandler on_event, void* context) noexcept
    : engine_(engine), platform_(platform), group_(group), on_event_(on_event), context_(context) {}

void DeviceLoop::flush() noexcept {
  const Instant now = platform_.monotonic_now();
  const WallTime wall = platform_.wall_now();
  while (auto tx = engine_.poll_transmit(now, wall, tx_)) {
    const Endpoint& to = tx->to_group ? group_ : tx->to;
    if (platform_.udp_send(to, Bytes{tx_.data(), tx->size}))
      ++stats_.sent;
    else
      ++stats_.send_errors;
  }
  while (auto event = engine_.poll_event()) {
    ++stats_.events;
    if (on_event_) on_event_(context_, *event);
  }
}

Result<void> DeviceLoop::run_once(Duration max_wait) noexcept {
  flush();  // what the application published since the last turn
  Instant now = platform_.monotonic_now();
  Duration wait = max_wait;
  if (auto deadline = engine_.next_deadline())
    wait = std::clamp(std::chrono::duration_cast<Duration>(*deadline - now), Duration{0}, max_wait);

  auto received = platform_.udp_receive(rx_, wait);
  now = platform_.monotonic_now();
  if (received) {
    ++stats_.received;
    engine_.handle_datagram(received->from, Bytes{rx_.data(), received->size}, now,
                            platform_.wall_now());
  } else if (received.error().code() != Errc::timed_out) {
    return received.error();
  }
  if (auto deadline = engine_.next_deadline(); deadline && *deadline <= now)
    engine_.handle_timeout(now);
  flush();  // answers, retransmissions, events
  return {};
}

}  // namespace nomq
