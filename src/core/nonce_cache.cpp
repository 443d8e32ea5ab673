#include "core/nonce_cache.hpp"

namespace nomq::detail {

NonceCache::NonceCache(Arena& arena, std::size_t capacity, Duration lifetime) noexcept
    : lifetime_(lifetime),
      index_(arena, at_least_one(capacity)),
      ring_(arena.make<Item>(at_least_one(capacity))) {}

void NonceCache::pop_oldest() noexcept {
  index_.erase(ring_[head_].nonce);
  head_ = (head_ + 1) % ring_.size();
  --count_;
}

void NonceCache::purge(Instant now) noexcept {
  while (count_ > 0 && now - ring_[head_].at >= lifetime_) pop_oldest();
}

bool NonceCache::contains(std::uint32_t nonce, Instant now) noexcept {
  purge(now);
  return index_.find(nonce) != kNoSlot;
}

void NonceCache::insert(std::uint32_t nonce, Instant now) noexcept {
  purge(now);
  if (count_ == ring_.size()) {
    pop_oldest();
    ++forgotten_early_;
  }
  ring_[(head_ + count_) % ring_.size()] = Item{nonce, now};
  ++count_;
  index_.insert(nonce);
}

}  // namespace nomq::detail
