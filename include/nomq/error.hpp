// Errors: a code (Errc) with a one-line reason (Error), and Result<T>, a T or an Error.
// How every NoMQ call reports failure: no exceptions, and no heap (an Error keeps its message in
// a fixed buffer inside itself, so the core can build one anywhere).
//
//   nomq::Result<nomq::MessageId> id = engine.publish("plant/line1/temp", bytes, {}, now);
//   if (!id) {
//     if (id.error() == nomq::Errc::too_many_pending) { /* wait for a report, retry */ }
//     std::fprintf(stderr, "%s\n", id.error().c_str());   // what, which limit, why
//   }
//
// Misuse policy: value(), operator* and operator-> on a Result holding an error are programming
// errors. They are checked in every build (not only without NDEBUG): the call prints
// "nomq: Result::value() on an error: <code>: <message>" to stderr and calls std::abort().
// A caller who is not sure tests ok() first, or uses value_or().
#pragma once

#include "nomq/export.hpp"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

// NOMQ_ERROR_TEXT=0 (a device build's choice, set for the whole program): an Error keeps its
// code alone, message() is the code's name, and no reason text is built or linked.
#ifndef NOMQ_ERROR_TEXT
#define NOMQ_ERROR_TEXT 1
#endif

namespace nomq {

// One enum for every failure, grouped by domain (see ErrorDomain). Values are contiguous so that
// counters can be kept in a plain array indexed by the code (see kErrcCount). Append new codes at
// the end of their domain's block only if you also update to_string(), domain() and kErrcCount.
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
  future_timestamp,       // v2: stamped further ahead of the receiver than timestamp_future_s
  sender_quota,           // v2: the source endpoint already holds max_senders_per_endpoint
                          // sender sessions, none of which may be evicted
  qos2_quota,             // v2: the sender session already holds max_qos2_per_session QoS 2
                          // states awaiting PUBREL (dropped unacknowledged)
  unverified_sender,      // v2: a PUBLISH that may predate this receiver's start, from a session
                          // not yet verified as live (dropped unacknowledged; issue 13 M4)
  old_key_epoch,          // v2: the session id's epoch tag names a key epoch this node retired
                          // (a node still on the old keys after the rotation's overlap)
  unknown_key_epoch,      // v2: the epoch tag names no epoch this node holds or retired
  sender_unverified,      // v2: a new sender session from an endpoint that has not answered a
                          // reachability challenge, while such sessions already hold their
                          // share (half) of the sender table; the endpoint is challenged
  no_channel_key,         // v2: marked as sealed with a channel key, and none this node holds
                          // verifies it (a channel it has no key for, or a forgery)
  wrong_channel_key,      // v2: authentic, but sealed with another key set than the one this
                          // node's channel keys give its channel name (a group member without
                          // the channel key sending on a keyed channel, or a key mismatch)

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
  config_insecure,  // a key file readable or writable by group or others (LoadOptions)
};

inline constexpr std::size_t kErrcCount = static_cast<std::size_t>(Errc::config_insecure) + 1;

// A stable snake_case name for the code, e.g. "bad_mac". Never empty.
NOMQ_EXPORT std::string_view to_string(Errc e) noexcept;

// The blocks of Errc: where a code comes from, and so what a caller can do about it.
enum class ErrorDomain : std::uint8_t {
  none,      // Errc::ok
  wire,      // a datagram did not decode (network input: counted, never returned by the API)
  engine,    // a datagram was refused by the receiver's state (counted, as above)
  api,       // a call was refused: bad argument or a limit reached (returned to the caller)
  platform,  // crypto backend, sockets, time-outs
  config,    // config files and settings
};
NOMQ_EXPORT std::string_view to_string(ErrorDomain d) noexcept;  // "none", "wire", "engine", ...

constexpr ErrorDomain domain(Errc e) noexcept {
  if (e == Errc::ok) return ErrorDomain::none;
  if (e <= Errc::bad_body) return ErrorDomain::wire;
  if (e <= Errc::wrong_channel_key) return ErrorDomain::engine;
  if (e <= Errc::closed) return ErrorDomain::api;
  if (e <= Errc::timed_out) return ErrorDomain::platform;
  return ErrorDomain::config;
}

// std::error_code interop: `std::error_code ec = nomq::Errc::bad_mac;` has category "nomq",
// value static_cast<int>(code) (0 is ok, as std::error_code expects) and message to_string().
// Codes with a standard meaning compare equal to it: invalid_argument, message_too_large
// (std::errc::message_size), buffer_too_small (no_buffer_space), io_error, timed_out.
// Hosted builds only (src/wire/error_category.cpp): a device build leaves the category out.
NOMQ_EXPORT const std::error_category& errc_category() noexcept;
inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), errc_category()};
}

// A failure: its code and one line saying what failed, with which field, file or limit, and
// why, e.g. `message_too_large` "message of 2000 bytes is above max_message_size (1024)".
// A plain value of fixed size (no heap, trivially copyable): the core builds these too. A
// message longer than kCapacity is cut and ends in "...".
class NOMQ_EXPORT Error {
 public:
  static constexpr bool kHasText = NOMQ_ERROR_TEXT != 0;
  static constexpr std::size_t kCapacity = kHasText ? 253 : 0;

  // A code without a reason: message() is the code's name. Implicit, so `return Errc::x;`
  // builds an error Result.
  constexpr Error(Errc code) noexcept : code_(code) {}  // NOLINT: implicit by design

  // A code and a reason joined from `parts`: strings (anything convertible to std::string_view),
  // integers, bool ("true"/"false") and char. For example
  //   Error{Errc::too_many_channels, "subscribed to ", n, " channels already: the limit (max_channels)"}
  template <class... Parts>
    requires(sizeof...(Parts) > 0)
  Error(Errc code, const Parts&... parts) noexcept : code_(code) {
    if constexpr (kHasText) {
      (append(parts), ...);
    } else {
      ((void)parts, ...);
    }
  }

  constexpr Errc code() const noexcept { return code_; }
  // The reason given at construction, or the code's name when none was.
  std::string_view message() const noexcept {
    return size_ == 0 ? to_string(code_) : std::string_view{text_, size_};
  }
  // message() as a NUL-terminated string, for printf.
  const char* c_str() const noexcept { return size_ == 0 ? to_string(code_).data() : text_; }
  std::string_view name() const noexcept { return to_string(code_); }  // "message_too_large"
  constexpr ErrorDomain domain() const noexcept { return nomq::domain(code_); }
  std::error_code error_code() const noexcept { return make_error_code(code_); }

  // The code, so that code written for plain codes keeps working: counters indexed by the code
  // (`drop(r.error())`), `switch (r.error())`, `Errc e = r.error();`.
  constexpr operator Errc() const noexcept { return code_; }  // NOLINT: implicit by design

  // Adds to the reason (cut at kCapacity as above). Returns *this for chaining. Out of line
  // (src/wire/error.cpp), as is the integer formatting: every error builder calls them, and
  // inlined they took about 3 KB of the core's flash on a Cortex-M4 (docs/embedded.md).
  Error& append(std::string_view text) noexcept;
  template <class T>
  Error& append(const T& part) noexcept {
    if constexpr (std::is_same_v<T, bool>) {
      return append(std::string_view{part ? "true" : "false"});
    } else if constexpr (std::is_same_v<T, char>) {
      return append(std::string_view{&part, 1});
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      const std::int64_t v = part;
      return append_integer(v < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(v)
                                  : static_cast<std::uint64_t>(v),
                            v < 0);
    } else if constexpr (std::is_integral_v<T>) {
      return append_integer(static_cast<std::uint64_t>(part), false);
    } else {
      static_assert(std::is_convertible_v<const T&, std::string_view>,
                    "an Error's message parts are strings, integers, bool or char");
      return append(std::string_view{part});
    }
  }

  // Errors compare by code: with a code (`r.error() == Errc::closed`) and with each other.
  friend constexpr bool operator==(const Error& a, Errc b) noexcept { return a.code_ == b; }
  friend constexpr bool operator==(const Error& a, const Error& b) noexcept {
    return a.code_ == b.code_;
  }

 private:
  // The decimal digits of `magnitude`, after a '-' when `negative`.
  Error& append_integer(std::uint64_t magnitude, bool negative) noexcept;

  Errc code_;
  std::uint8_t size_ = 0;
  char text_[kCapacity + 1]{};
};

// "<name>: <message>" (or the name alone) to any stream that takes a std::string_view, such as
// std::ostream (tests print errors this way); a template so that this header needs no <ostream>.
template <class Stream>
  requires requires(Stream& s, std::string_view v) { s << v; }
Stream& operator<<(Stream& s, const Error& e) {
  s << e.name();
  if (e.message() != e.name()) s << std::string_view{": "} << e.message();
  return s;
}
template <class Stream>
  requires requires(Stream& s, std::string_view v) { s << v; }
Stream& operator<<(Stream& s, Errc e) {
  return s << to_string(e);
}

namespace detail {
// The Error a successful Result reports from error(): code ok.
inline constexpr Error kNoError{Errc::ok};
// The misuse policy (see the top of this file): prints and aborts.
[[noreturn]] NOMQ_EXPORT void result_misuse(const char* call, const Error& error) noexcept;
}  // namespace detail

// A T or an Error, std::expected-like. T need not be default-constructible.
template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_reference_v<T> && !std::is_same_v<std::remove_cv_t<T>, Error> &&
                    !std::is_same_v<std::remove_cv_t<T>, Errc>,
                "Result<T>: T is a value type other than Error and Errc");

 public:
  using value_type = T;

  // A value: anything T is constructible from (explicit when T is only explicitly so).
  template <class U = T>
    requires(std::is_constructible_v<T, U &&> &&
             !std::is_same_v<std::remove_cvref_t<U>, Result> &&
             !std::is_same_v<std::remove_cvref_t<U>, Errc> &&
             !std::is_same_v<std::remove_cvref_t<U>, Error> &&
             !std::is_same_v<std::remove_cvref_t<U>, std::in_place_t>)
  explicit(!std::is_convertible_v<U&&, T>) Result(U&& value) noexcept(
      std::is_nothrow_constructible_v<T, U&&>)
      : storage_(std::in_place_index<0>, std::forward<U>(value)) {}
  // A value built in place from `args`.
  template <class... Args>
  explicit Result(std::in_place_t, Args&&... args) noexcept(
      std::is_nothrow_constructible_v<T, Args&&...>)
      : storage_(std::in_place_index<0>, std::forward<Args>(args)...) {}
  // An error. `code` must not be Errc::ok (a Result<T> that succeeded holds a T).
  Result(Errc code) noexcept  // NOLINT: implicit by design
      : storage_(std::in_place_index<1>, code) {
    if (code == Errc::ok) detail::result_misuse("Result<T>(Errc::ok)", detail::kNoError);
  }
  Result(const Error& error) noexcept  // NOLINT: implicit by design
      : storage_(std::in_place_index<1>, error) {
    if (error == Errc::ok) detail::result_misuse("Result<T>(Error{Errc::ok})", error);
  }

  bool ok() const noexcept { return storage_.index() == 0; }
  bool has_value() const noexcept { return ok(); }
  explicit operator bool() const noexcept { return ok(); }

  // The error; on a Result holding a value, an Error with code Errc::ok.
  const Error& error() const noexcept {
    const Error* e = std::get_if<1>(&storage_);
    return e != nullptr ? *e : detail::kNoError;
  }

  // The value. Precondition: ok(); checked, see the misuse policy at the top of this file.
  T& value() & noexcept { return *checked("Result::value()"); }
  const T& value() const& noexcept { return *checked("Result::value()"); }
  T&& value() && noexcept { return std::move(*checked("Result::value()")); }
  T& operator*() & noexcept { return *checked("Result::operator*"); }
  const T& operator*() const& noexcept { return *checked("Result::operator*"); }
  T&& operator*() && noexcept { return std::move(*checked("Result::operator*")); }
  T* operator->() noexcept { return checked("Result::operator->"); }
  const T* operator->() const noexcept { return checked("Result::operator->"); }

  // The value, or `fallback` converted to T when this holds an error.
  template <class U>
  T value_or(U&& fallback) const& {
    return ok() ? *std::get_if<0>(&storage_) : static_cast<T>(std::forward<U>(fallback));
  }
  template <class U>
  T value_or(U&& fallback) && {
    return ok() ? std::move(*std::get_if<0>(&storage_)) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  T* checked(const char* call) noexcept {
    T* v = std::get_if<0>(&storage_);
    if (v == nullptr) detail::result_misuse(call, error());
    return v;
  }
  const T* checked(const char* call) const noexcept {
    const T* v = std::get_if<0>(&storage_);
    if (v == nullptr) detail::result_misuse(call, error());
    return v;
  }

  std::variant<T, Error> storage_;
};

// Success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;

  Result() noexcept = default;
  // Errc::ok is success here (so `return Errc::ok;` means what it says); any other code fails.
  Result(Errc code) noexcept {  // NOLINT: implicit by design
    if (code != Errc::ok) error_.emplace(code);
  }
  Result(const Error& error) noexcept {  // NOLINT: implicit by design
    if (error != Errc::ok) error_.emplace(error);
  }

  bool ok() const noexcept { return !error_.has_value(); }
  bool has_value() const noexcept { return ok(); }
  explicit operator bool() const noexcept { return ok(); }
  const Error& error() const noexcept { return error_ ? *error_ : detail::kNoError; }

 private:
  std::optional<Error> error_;
};

}  // namespace nomq

template <>
struct std::is_error_code_enum<nomq::Errc> : std::true_type {};
