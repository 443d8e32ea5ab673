// A key kept in a page of its own: excluded from core dumps (MADV_DONTDUMP), locked in RAM
// where the limit allows (mlock: never swapped out), not inherited by fork() children
// (MADV_WIPEONFORK), wiped (wipe_secret) and unmapped when it goes away. The runtime keeps the
// keys it holds itself (the application-signature key) here; the wire keys live inside the
// crypto backend's contexts.
#pragma once

#include <cstddef>

#include "nomq/bytes.hpp"
#include "nomq/crypto.hpp"

namespace nomq::detail {

class SecretPage {
 public:
  SecretPage() = default;
  ~SecretPage();
  SecretPage(const SecretPage&) = delete;
  SecretPage& operator=(const SecretPage&) = delete;

  // Maps the page and copies `key` into it. False if the page cannot be mapped.
  bool store(const Key& key) noexcept;
  bool holds_key() const noexcept { return key_ != nullptr; }
  Bytes key() const noexcept { return key_ != nullptr ? Bytes{*key_} : Bytes{}; }
  // Whether MADV_DONTDUMP took effect (tests check it; older kernels may refuse).
  bool excluded_from_dumps() const noexcept { return dontdump_; }

 private:
  Key* key_ = nullptr;
  std::size_t size_ = 0;
  bool dontdump_ = false;
  bool locked_ = false;
};

}  // namespace nomq::detail
