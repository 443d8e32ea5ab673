// A Crypto that forwards every call to another backend and counts the SHA-256 calls: the
// known-channel tests (codec and engine) check that a channel name the caller hashed already
// is not hashed again.
#pragma once

#include "nomq/crypto.hpp"

namespace nomq::test {

class Sha256CountingCrypto final : public Crypto {
 public:
  explicit Sha256CountingCrypto(Crypto& inner) : inner_(inner) {}
  bool cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override {
    return inner_.cbc_encrypt(iv, in, out);
  }
  bool cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override {
    return inner_.cbc_decrypt(iv, in, out);
  }
  Digest hmac_sha256(Bytes data) noexcept override { return inner_.hmac_sha256(data); }
  Digest keyed_sha256(Bytes data) noexcept override { return inner_.keyed_sha256(data); }
  Digest sha256(Bytes data) noexcept override {
    ++sha256_calls;
    return inner_.sha256(data);
  }

  int sha256_calls = 0;

 private:
  Crypto& inner_;
};

}  // namespace nomq::test
