// The engine API's error messages (see engine_errors.hpp). They name the limit and the config
// key (docs/config.md) that sets it, so a caller can tell "wait and retry" from "raise a limit".
#include "core/engine_errors.hpp"

#include "nomq/wire.hpp"

namespace nomq::detail::engine_error {

Error closed() noexcept { return Error{Errc::closed, "the engine is closed (close() was called)"}; }

Error empty_channel() noexcept { return Error{Errc::invalid_argument, "channel name is empty"}; }

Error channel_not_utf8() noexcept {
  return Error{Errc::invalid_argument, "channel name is not valid UTF-8"};
}

Error channel_name_too_long(std::size_t size) noexcept {
  return Error{Errc::channel_name_too_long, "channel name of ", size, " bytes: at most ",
               wire::kMaxChannelName};
}

Error subscription_name_too_long(std::size_t size, std::size_t limit) noexcept {
  return Error{Errc::channel_name_too_long, "channel name of ", size,
               " bytes: subscriptions take at most ", limit, " (config key max_channel_name)"};
}

Error bad_publish_options(std::string_view channel, const PublishOptions& options) noexcept {
  if (channel.empty()) return empty_channel();
  if (options.priority > 15) {
    return Error{Errc::invalid_argument, "priority ", options.priority, ": must be 0..15"};
  }
  return Error{Errc::invalid_argument, "qos ", static_cast<unsigned>(options.qos),
               ": must be 0, 1 or 2"};
}

Error bad_destination() noexcept {
  return Error{Errc::invalid_argument, "destination has no address family"};
}

Error message_too_large(std::size_t size, std::size_t limit) noexcept {
  return Error{Errc::message_too_large, "message of ", size, " bytes: at most ", limit,
               " (max_message_size)"};
}

Error datagram_too_large(std::size_t channel_size, std::size_t message_size,
                         std::size_t encoded) noexcept {
  return Error{Errc::message_too_large, "message of ", message_size, " bytes on a channel name of ",
               channel_size, " bytes needs a datagram of ", encoded, " bytes: at most ",
               wire::kMaxDatagram};
}

Error v1_needs_destination() noexcept {
  return Error{Errc::no_subscribers,
               "wire v1 has no discovery: a QoS 1/2 publish needs a destination"};
}

Error too_many_pending(std::size_t limit) noexcept {
  return Error{Errc::too_many_pending, limit,
               " QoS 1/2 publishes await acknowledgement, the limit (max_pending): wait for a "
               "delivery report, then retry"};
}

Error qos0_queue_full(std::size_t limit) noexcept {
  return Error{Errc::queue_full, limit,
               " QoS 0 publishes wait to be sent, the limit (max_queued_messages): send first "
               "(poll_transmit)"};
}

Error outbox_full(std::size_t limit) noexcept {
  return Error{Errc::queue_full, limit,
               " datagrams wait to be sent, the limit (max_outbox): send first (poll_transmit)"};
}

Error message_slots_full() noexcept {
  return Error{Errc::queue_full,
               "every message slot is in use, or the bytes of message_pool_bytes are: send "
               "first (poll_transmit) or wait for a delivery report"};
}

Error too_many_retained(const EngineLimits& limits) noexcept {
  return Error{Errc::too_many_retained, "retained store full: ", limits.max_retained_per_channel,
               " live messages on this channel (max_retained_per_channel) or ",
               limits.max_retained_channels, " channels (max_retained_channels)"};
}

Error already_subscribed(std::string_view channel) noexcept {
  return Error{Errc::already_subscribed, "already subscribed to '", channel,
               "' (its priority is updated)"};
}

Error too_many_channels(std::size_t limit) noexcept {
  return Error{Errc::too_many_channels, "subscribed to ", limit,
               " channels, the limit (config key max_channels)"};
}

Error not_subscribed() noexcept {
  return Error{Errc::not_subscribed, "not subscribed to this channel"};
}

Error withdraw_subscribed(std::string_view channel) noexcept {
  return Error{Errc::already_subscribed, "subscribed to '", channel,
               "': withdraw() is for a channel this node does not follow (use unsubscribe())"};
}

Error v1_no_withdraw() noexcept {
  return Error{Errc::invalid_argument,
               "wire v1 announces no subscriptions: there is nothing to withdraw"};
}

Error invalid_filter(std::string_view filter) noexcept {
  return Error{Errc::invalid_argument, "filter '", filter,
               "': '+' and '#' must fill a whole level, and '#' must be the last level"};
}

Error v1_no_wildcards(std::string_view filter) noexcept {
  return Error{Errc::invalid_argument, "filter '", filter,
               "': wire v1 has no wildcards, subscribe to exact channels"};
}

Error wildcard_publish(std::string_view channel) noexcept {
  return Error{Errc::invalid_argument, "channel '", channel,
               "' contains '+' or '#': wildcards are for subscribing, not publishing"};
}

}  // namespace nomq::detail::engine_error
