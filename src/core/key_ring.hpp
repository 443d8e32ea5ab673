// The engine's key ring (docs/engine.md §19, docs/protocol.md §6.1): the key set of the current
// key epoch, plus during a rotation the next one (accepted, not yet used to send) or the
// previous one (accepted until the overlap ends), and the last retired epoch (its datagrams are
// counted old_key_epoch). A receiver picks the set by the epoch tag of the session id, before
// any MAC is checked: one MAC computation per datagram, no trial decryption.
//
// The ring is itself a Crypto that forwards to the current set: every component encodes with
// it (the transmitter's datagrams carry the current epoch) and hashes channel names with it
// (plain SHA-256, the same in every set). Only Receiver::open() asks for a set by tag.
// No OS headers, no allocation: three pointers to Crypto objects the caller keeps alive.
#pragma once

#include <cstdint>
#include <optional>

#include "nomq/crypto.hpp"
#include "nomq/engine.hpp"
#include "nomq/error.hpp"
#include "nomq/wire.hpp"

namespace nomq::detail {

class KeyRing final : public Crypto {
 public:
  KeyRing(Crypto& current, std::uint32_t epoch, bool v2) noexcept
      : current_{&current, epoch}, v2_(v2) {}

  std::uint32_t epoch() const noexcept { return current_.epoch; }
  // The epoch tag this node's v2 session ids carry.
  std::uint32_t sending_epoch() const noexcept { return current_.epoch; }

  // The set that opens a v2 datagram whose session id is `session`, or the reason it cannot be
  // opened (old_key_epoch, unknown_key_epoch). Until this engine first rotates, a single set
  // opens every tag: nodes that never rotate interoperate with v2 nodes that predate the tag.
  Crypto* for_session(std::uint32_t session, Errc& why) const noexcept {
    if (!v2_ || !strict_) return current_.crypto;
    const std::uint8_t tag = wire::session_epoch_tag(session);
    if (tag == wire::epoch_tag(current_.epoch)) return current_.crypto;
    if (next_.crypto != nullptr && tag == wire::epoch_tag(next_.epoch)) return next_.crypto;
    if (previous_.crypto != nullptr && tag == wire::epoch_tag(previous_.epoch)) return previous_.crypto;
    why = retired_ && tag == wire::epoch_tag(*retired_) ? Errc::old_key_epoch : Errc::unknown_key_epoch;
    return nullptr;
  }

  // Rotation, step 1 (Engine::rotate_keys): `next` of epoch current+1 is accepted from now on;
  // a previous set still in its overlap is retired at once. Checked by the caller.
  void add_next(Crypto& next, std::uint32_t epoch, Instant switch_at, Instant retire_at) noexcept {
    if (previous_.crypto != nullptr) retire_previous();
    next_ = Set{&next, epoch};
    switch_at_ = switch_at;
    retire_at_ = retire_at;
    strict_ = true;
  }
  bool switch_pending() const noexcept { return next_.crypto != nullptr; }
  Instant switch_at() const noexcept { return switch_at_; }
  Instant retire_at() const noexcept { return retire_at_; }
  bool overlap_open() const noexcept { return previous_.crypto != nullptr; }
  // The previous epoch's set while its overlap lasts, else nullptr.
  Crypto* previous() const noexcept { return previous_.crypto; }
  // Step 2: the next set becomes current (sending switches); the old one stays accepted as
  // the previous set until retire_at.
  void switch_to_next() noexcept {
    previous_ = current_;
    current_ = next_;
    next_ = Set{};
  }
  // Step 3: the previous set is no longer accepted.
  void retire_previous() noexcept {
    if (previous_.crypto == nullptr) return;
    retired_ = previous_.epoch;
    previous_ = Set{};
  }
  // Whether `c` is still referenced (a caller may free the key sets no longer held).
  bool holds(const Crypto* c) const noexcept {
    return c == current_.crypto || c == next_.crypto || c == previous_.crypto;
  }
  std::optional<std::uint32_t> retired_epoch() const noexcept { return retired_; }
  std::optional<std::uint32_t> previous_epoch() const noexcept {
    if (previous_.crypto == nullptr) return std::nullopt;
    return previous_.epoch;
  }
  std::optional<std::uint32_t> next_epoch() const noexcept {
    if (next_.crypto == nullptr) return std::nullopt;
    return next_.epoch;
  }

  // Crypto: the current set.
  bool cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override {
    return current_.crypto->cbc_encrypt(iv, in, out);
  }
  bool cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override {
    return current_.crypto->cbc_decrypt(iv, in, out);
  }
  Digest hmac_sha256(Bytes data) noexcept override { return current_.crypto->hmac_sha256(data); }
  Digest keyed_sha256(Bytes data) noexcept override { return current_.crypto->keyed_sha256(data); }
  Digest sha256(Bytes data) noexcept override { return current_.crypto->sha256(data); }
  bool mac_equal(Bytes a, Bytes b) noexcept override { return current_.crypto->mac_equal(a, b); }

 private:
  struct Set {
    Crypto* crypto = nullptr;
    std::uint32_t epoch = 0;
  };
  Set current_;
  Set next_;
  Set previous_;
  std::optional<std::uint32_t> retired_;
  Instant switch_at_{};
  Instant retire_at_{};
  bool v2_ = true;
  bool strict_ = false;  // set by the first rotation: tags select, unknown tags are refused
};

}  // namespace nomq::detail
