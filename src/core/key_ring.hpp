// The engine's key ring (docs/engine.md §19, docs/protocol.md §6.1): the key set of the current
// key epoch, plus during a rotation the next one (accepted, not yet used to send) or the
// previous one (accepted until the overlap ends), and the last retired epoch (its datagrams are
// counted old_key_epoch). A receiver picks the set by the epoch tag of the session id, before
// any MAC is checked: one MAC computation per datagram, no trial decryption.
//
// The ring is itself a Crypto that forwards to the current set: every component encodes with
// it (the transmitter's datagrams carry the current epoch) and tags channel names with it
// (plain SHA-256 for the group's channels, the same in every epoch). Only Receiver::open()
// asks for a set by tag.
//
// It also holds the channel keys (docs/protocol.md §14.4, docs/engine.md §20): up to
// kMaxChannelKeys (pattern, key set) pairs. A channel name is sealed with the key set of the
// most specific pattern that matches it (channel_key_for), and its tag is that set's keyed
// tag (channel_tag below), so every component that computes a channel id gets the keyed one
// without knowing about channel keys. Key index 0 is the group (the ring's epoch sets);
// 1..kMaxChannelKeys name a channel key slot. Slots are stable: removing a key empties its
// slot (datagrams still queued for it are dropped when they would be sealed).
// No OS headers, no allocation: pointers to Crypto objects the caller keeps alive, and the
// patterns copied into fixed arrays.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

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
  // The tag of the key set that seals `name`: a channel key's keyed tag, else the group's.
  Digest channel_tag(Bytes name) noexcept override {
    const std::uint8_t k = v2_ ? channel_key_for(as_string_view(name)) : 0;
    return k == 0 ? current_.crypto->channel_tag(name) : channel_[k - 1].crypto->channel_tag(name);
  }

  // --- channel keys (v2)
  // Adds the key set of `pattern` (an exact channel name or a valid filter, 1..
  // kMaxChannelKeyPattern bytes; checked by the caller), or replaces the set of the same
  // pattern. Returns the key index (1..kMaxChannelKeys), 0 when every slot is taken.
  std::uint8_t add_channel_key(std::string_view pattern, Crypto& keys) noexcept {
    std::uint8_t free_slot = 0;
    for (std::size_t i = 0; i < channel_.size(); ++i) {
      ChannelKey& c = channel_[i];
      if (c.crypto != nullptr && c.pattern() == pattern) {
        c.crypto = &keys;
        return static_cast<std::uint8_t>(i + 1);
      }
      if (c.crypto == nullptr && free_slot == 0) free_slot = static_cast<std::uint8_t>(i + 1);
    }
    if (free_slot == 0) return 0;
    ChannelKey& c = channel_[free_slot - 1];
    std::memcpy(c.text.data(), pattern.data(), pattern.size());
    c.size = static_cast<std::uint8_t>(pattern.size());
    c.filter = wire::is_filter(pattern);
    c.crypto = &keys;
    return free_slot;
  }
  // Empties the slot of `pattern`; false if no key has that pattern.
  bool remove_channel_key(std::string_view pattern) noexcept {
    for (ChannelKey& c : channel_) {
      if (c.crypto != nullptr && c.pattern() == pattern) {
        c = ChannelKey{};
        return true;
      }
    }
    return false;
  }
  std::size_t channel_key_count() const noexcept {
    return static_cast<std::size_t>(std::count_if(channel_.begin(), channel_.end(),
                                                  [](const ChannelKey& c) { return c.crypto != nullptr; }));
  }
  // The key index that seals `name` (a channel, or a subscription filter whose wildcards are
  // read as plain levels): the exact pattern equal to it, else the longest filter pattern that
  // matches it (the first added on a tie), else 0 (the group). O(keys x name), no allocation.
  std::uint8_t channel_key_for(std::string_view name) const noexcept {
    std::uint8_t best = 0;
    std::size_t best_size = 0;
    for (std::size_t i = 0; i < channel_.size(); ++i) {
      const ChannelKey& c = channel_[i];
      if (c.crypto == nullptr) continue;
      if (!c.filter) {
        if (c.pattern() == name) return static_cast<std::uint8_t>(i + 1);
        continue;
      }
      if (c.size > best_size && wire::filter_matches(c.pattern(), name)) {
        best = static_cast<std::uint8_t>(i + 1);
        best_size = c.size;
      }
    }
    return best;
  }
  // The set of key index `k` (0: the current epoch's), nullptr for an empty slot.
  Crypto* channel_set(std::uint8_t k) const noexcept {
    if (k == 0) return current_.crypto;
    if (k > channel_.size()) return nullptr;
    return channel_[k - 1].crypto;
  }
  // Whether `c` is a channel key set held here.
  bool holds_channel_key(const Crypto* c) const noexcept {
    return std::any_of(channel_.begin(), channel_.end(),
                       [c](const ChannelKey& k) { return k.crypto == c; });
  }

 private:
  struct ChannelKey {
    std::array<char, kMaxChannelKeyPattern> text{};
    std::uint8_t size = 0;
    bool filter = false;
    Crypto* crypto = nullptr;  // nullptr: a free slot
    std::string_view pattern() const noexcept { return {text.data(), size}; }
  };
  std::array<ChannelKey, kMaxChannelKeys> channel_{};

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
