// Error codes and Result<T>: how every NoMQ call reports failure. No exceptions in the core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

namespace nomq {

// One enum for every failure, grouped by area. Values are contiguous so that counters can be
// kept in a plain array indexed by the code (see kErrcCount). Append new codes at the end of
// their group's block only if you also update to_string() and kErrcCount.
enum class Errc : std::uint8_t {
  ok = 0,

  // --- wire: stateless decode rejections (why a datagram was dropped)
  too_short,              // shorter than the version's minimum datagram
  bad_magic,              // first two bytes are not "NM"
  bad_version,            // version byte is not the one this node speaks
  bad_type,               // packet type is not 1..8
  bad_length,             // payload length field disagrees with the datagram length, or the
                          // datagram is longer than wire::kMaxDatagram
  bad_mac,                // MAC does not verify (wrong key, tampered, trailing bytes)
  bad_block_size,         // ciphertext is empty or not a multiple of 16 bytes
  bad_padding,            // PKCS#7 padding invalid after decryption
  empty_plaintext,        // v1: the encrypted payload holds only the IV
  stale_timestamp,        // timestamp outside the receiver's window
  publish_payload_short,  // v1 PUBLISH inner payload too short
  publish_bad_msg_len,    // v1 PUBLISH msg_len disagrees with the inner payload
  publish_bad_utf8,       // v1 PUBLISH message is not UTF-8 (the original rejects it)
  bad_body,               // type-specific plaintext malformed (v2 bodies, short ACK body...)

  // --- engine: verdicts that need receiver state
  unknown_channel,        // not subscribed to this channel (v1: every type, as the original)
  replayed,               // sequence number / nonce already seen
  replay_window_old,      // sequence number left of the sliding window
  duplicate,              // QoS 1/2 duplicate suppressed (acknowledged again, not delivered)
  expired,                // TTL ran out
  unexpected_packet,      // valid packet with no matching state (e.g. ACK for unknown id)
  own_packet,             // our own group traffic looped back
  sender_table_full,      // replay table full and no entry could be evicted
  inbox_full,             // received-message queue full
  wrong_wire_version,     // configured for the other wire version

  // --- API misuse and limits (returned to the caller)
  invalid_argument,
  channel_name_too_long,
  message_too_large,
  buffer_too_small,
  too_many_pending,
  too_many_channels,
  too_many_retained,
  peer_table_full,
  not_subscribed,
  already_subscribed,
  queue_full,
  no_subscribers,
  closed,

  // --- crypto and platform
  crypto_failure,
  io_error,
  timed_out,

  // --- config files
  config_unreadable,
  config_bad_format,
  config_bad_field,
};

inline constexpr std::size_t kErrcCount = static_cast<std::size_t>(Errc::config_bad_field) + 1;

// A stable snake_case name for the code, e.g. "bad_mac". Never empty.
std::string_view to_string(Errc e) noexcept;

// A value or an error code. T must be default-constructible (core types are).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT: implicit by design
      : value_(std::move(value)), error_(Errc::ok) {}
  Result(Errc error) noexcept : value_{}, error_(error) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return error_ == Errc::ok; }
  explicit operator bool() const noexcept { return ok(); }
  Errc error() const noexcept { return error_; }

  // Precondition: ok().
  T& value() & noexcept { return value_; }
  const T& value() const& noexcept { return value_; }
  T&& value() && noexcept { return std::move(value_); }
  T* operator->() noexcept { return &value_; }
  const T* operator->() const noexcept { return &value_; }
  T& operator*() & noexcept { return value_; }
  const T& operator*() const& noexcept { return value_; }

 private:
  T value_;
  Errc error_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() noexcept : error_(Errc::ok) {}
  Result(Errc error) noexcept : error_(error) {}  // NOLINT: implicit by design
  bool ok() const noexcept { return error_ == Errc::ok; }
  explicit operator bool() const noexcept { return ok(); }
  Errc error() const noexcept { return error_; }

 private:
  Errc error_;
};

}  // namespace nomq
