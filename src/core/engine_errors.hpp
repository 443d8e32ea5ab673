// The errors the engine's API returns, each with the one line that says what was refused and
// which limit (and config key) refused it. Kept here so the engine's functions stay one line
// per refusal and every message is written once.
#pragma once

#include <cstddef>
#include <string_view>

#include "nomq/engine.hpp"
#include "nomq/error.hpp"

namespace nomq::detail::engine_error {

Error closed() noexcept;
Error empty_channel() noexcept;
Error channel_not_utf8() noexcept;
Error channel_name_too_long(std::size_t size) noexcept;
// A subscription name above limits.max_channel_name.
Error subscription_name_too_long(std::size_t size, std::size_t limit) noexcept;
// The first of: empty channel, priority above 15, QoS above 2.
Error bad_publish_options(std::string_view channel, const PublishOptions& options) noexcept;
Error bad_destination() noexcept;
Error message_too_large(std::size_t size, std::size_t limit) noexcept;
Error datagram_too_large(std::size_t channel_size, std::size_t message_size,
                         std::size_t encoded) noexcept;
Error v1_needs_destination() noexcept;
Error too_many_pending(std::size_t limit) noexcept;
Error qos0_queue_full(std::size_t limit) noexcept;
Error outbox_full(std::size_t limit) noexcept;
Error message_slots_full() noexcept;
Error too_many_retained(const EngineLimits& limits) noexcept;
Error already_subscribed(std::string_view channel) noexcept;
Error too_many_channels(std::size_t limit) noexcept;
Error not_subscribed() noexcept;
Error withdraw_subscribed(std::string_view channel) noexcept;
Error v1_no_withdraw() noexcept;
Error invalid_filter(std::string_view filter) noexcept;
Error v1_no_wildcards(std::string_view filter) noexcept;
Error wildcard_publish(std::string_view channel) noexcept;

}  // namespace nomq::detail::engine_error
