// Names of the error codes (stable: they appear in logs, stats and `nomq sub -d`), the
// std::error_category, and the misuse policy of Result.
#include "nomq/error.hpp"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <string>

namespace nomq {

Error& Error::append(std::string_view text) noexcept {
  if constexpr (!kHasText) {
    (void)text;
    return *this;
  }
  const std::size_t room = kCapacity - size_;
  const std::size_t n = text.size() < room ? text.size() : room;
  std::memcpy(text_ + size_, text.data(), n);
  size_ = static_cast<std::uint8_t>(size_ + n);
  if (n < text.size()) std::memcpy(text_ + kCapacity - 3, "...", 3);
  text_[size_] = '\0';
  return *this;
}

Error& Error::append_integer(std::uint64_t magnitude, bool negative) noexcept {
  char digits[24] = {};  // initialised: g++ 12 at -O3 reports a false maybe-uninitialized
  char* at = digits;
  if (negative) *at++ = '-';
  const auto end = std::to_chars(at, digits + sizeof digits, magnitude).ptr;
  return append(std::string_view{digits, static_cast<std::size_t>(end - digits)});
}

// Every name is a string literal: Error::c_str() relies on the NUL after it.
std::string_view to_string(Errc e) noexcept {
  switch (e) {
    case Errc::ok: return "ok";
    case Errc::too_short: return "too_short";
    case Errc::bad_magic: return "bad_magic";
    case Errc::bad_version: return "bad_version";
    case Errc::bad_type: return "bad_type";
    case Errc::bad_length: return "bad_length";
    case Errc::bad_mac: return "bad_mac";
    case Errc::bad_block_size: return "bad_block_size";
    case Errc::bad_padding: return "bad_padding";
    case Errc::empty_plaintext: return "empty_plaintext";
    case Errc::stale_timestamp: return "stale_timestamp";
    case Errc::publish_payload_short: return "publish_payload_short";
    case Errc::publish_bad_msg_len: return "publish_bad_msg_len";
    case Errc::publish_bad_utf8: return "publish_bad_utf8";
    case Errc::bad_body: return "bad_body";
    case Errc::unknown_channel: return "unknown_channel";
    case Errc::replayed: return "replayed";
    case Errc::replay_window_old: return "replay_window_old";
    case Errc::duplicate: return "duplicate";
    case Errc::expired: return "expired";
    case Errc::unexpected_packet: return "unexpected_packet";
    case Errc::own_packet: return "own_packet";
    case Errc::sender_table_full: return "sender_table_full";
    case Errc::inbox_full: return "inbox_full";
    case Errc::wrong_wire_version: return "wrong_wire_version";
    case Errc::future_timestamp: return "future_timestamp";
    case Errc::sender_quota: return "sender_quota";
    case Errc::qos2_quota: return "qos2_quota";
    case Errc::unverified_sender: return "unverified_sender";
    case Errc::old_key_epoch: return "old_key_epoch";
    case Errc::unknown_key_epoch: return "unknown_key_epoch";
    case Errc::sender_unverified: return "sender_unverified";
    case Errc::no_channel_key: return "no_channel_key";
    case Errc::wrong_channel_key: return "wrong_channel_key";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::channel_name_too_long: return "channel_name_too_long";
    case Errc::message_too_large: return "message_too_large";
    case Errc::buffer_too_small: return "buffer_too_small";
    case Errc::too_many_pending: return "too_many_pending";
    case Errc::too_many_channels: return "too_many_channels";
    case Errc::too_many_retained: return "too_many_retained";
    case Errc::peer_table_full: return "peer_table_full";
    case Errc::not_subscribed: return "not_subscribed";
    case Errc::already_subscribed: return "already_subscribed";
    case Errc::queue_full: return "queue_full";
    case Errc::no_subscribers: return "no_subscribers";
    case Errc::closed: return "closed";
    case Errc::crypto_failure: return "crypto_failure";
    case Errc::io_error: return "io_error";
    case Errc::timed_out: return "timed_out";
    case Errc::config_unreadable: return "config_unreadable";
    case Errc::config_bad_format: return "config_bad_format";
    case Errc::config_bad_field: return "config_bad_field";
    case Errc::config_insecure: return "config_insecure";
  }
  return "unknown_error";
}

std::string_view to_string(ErrorDomain d) noexcept {
  switch (d) {
    case ErrorDomain::none: return "none";
    case ErrorDomain::wire: return "wire";
    case ErrorDomain::engine: return "engine";
    case ErrorDomain::api: return "api";
    case ErrorDomain::platform: return "platform";
    case ErrorDomain::config: return "config";
  }
  return "unknown";
}

void detail::result_misuse(const char* call, const Error& error) noexcept {
  std::fprintf(stderr, "nomq: %s on an error: %s: %s\n", call, error.name().data(), error.c_str());
  std::abort();
}

}  // namespace nomq
