// Helpers shared by the wire codec tests: hex, clocks, a crypto backend with given keys, and a
// raw v1/v2 sealer that builds datagrams the codec itself would refuse to build.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nomq/crypto.hpp"
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include "nomq/time.hpp"
#include "nomq/wire.hpp"

namespace nomq::test {

inline std::vector<std::uint8_t> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::uint8_t> out;
  if (hex.size() % 2 != 0) return out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return {};
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  return out;
}

inline std::string to_hex(Bytes b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (const std::uint8_t x : b) {
    s.push_back(kDigits[x >> 4]);
    s.push_back(kDigits[x & 15]);
  }
  return s;
}

template <class Array>
Array array_from_hex(std::string_view hex) {
  Array a{};
  const auto v = from_hex(hex);
  for (std::size_t i = 0; i < a.size() && i < v.size(); ++i) a[i] = v[i];
  return a;
}

// A receiver clock given as (possibly fractional) Unix seconds, e.g. 1700000030.5.
inline Time clock_at(double unix_seconds) {
  return Time{static_cast<std::int64_t>(std::llround(unix_seconds * 1e6))};
}

// Stop-gap reference backend (one-shot EVP calls) until OpenSslCrypto lands from `crypto`.
class RefCrypto final : public Crypto {
 public:
  RefCrypto(const Key& e, const Key& h) : enc_(e), mac_(h) {}
  bool cbc_encrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override {
    return run(iv, in, out, 1);
  }
  bool cbc_decrypt(const Iv& iv, Bytes in, MutableBytes out) noexcept override {
    return run(iv, in, out, 0);
  }
  Digest hmac_sha256(Bytes data) noexcept override {
    Digest d{};
    unsigned len = 0;
    HMAC(EVP_sha256(), mac_.data(), static_cast<int>(mac_.size()), data.data(), data.size(),
         d.data(), &len);
    return d;
  }
  Digest keyed_sha256(Bytes data) noexcept override {
    std::vector<std::uint8_t> v(data.begin(), data.end());
    v.insert(v.end(), mac_.begin(), mac_.end());
    return sha256(v);
  }
  Digest sha256(Bytes data) noexcept override {
    Digest d{};
    SHA256(data.data(), data.size(), d.data());
    return d;
  }
  void random_bytes(MutableBytes out) noexcept override {
    RAND_bytes(out.data(), static_cast<int>(out.size()));
  }

 private:
  bool run(const Iv& iv, Bytes in, MutableBytes out, int enc) noexcept {
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    int l1 = 0;
    int l2 = 0;
    bool ok = EVP_CipherInit_ex(c, EVP_aes_256_cbc(), nullptr, enc_.data(), iv.data(), enc) == 1 &&
              EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
              EVP_CipherUpdate(c, out.data(), &l1, in.data(), static_cast<int>(in.size())) == 1 &&
              EVP_CipherFinal_ex(c, out.data() + l1, &l2) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok;
  }
  Key enc_;
  Key mac_;
};

inline std::unique_ptr<Crypto> make_crypto(const Key& encryption_key, const Key& hmac_key) {
  return std::make_unique<RefCrypto>(encryption_key, hmac_key);
}

inline Key key_from_hex(std::string_view hex) { return array_from_hex<Key>(hex); }

// The sample keys of the original's config_gen.py (legacy-v1.json "keys").
inline const Key kSampleEncKey =
    key_from_hex("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
inline const Key kSampleHmacKey =
    key_from_hex("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");

// Builds a datagram around an arbitrary padded plaintext (a multiple of 16, padding included or
// deliberately wrong), with a valid MAC: lets tests reach the checks after the MAC.
inline std::vector<std::uint8_t> seal_raw(Crypto& crypto, WireVersion version,
                                          std::uint8_t type, std::uint32_t timestamp,
                                          const wire::ChannelId& channel,
                                          std::vector<std::uint8_t> padded_plaintext) {
  const Iv iv = array_from_hex<Iv>("000102030405060708090a0b0c0d0e0f");
  std::vector<std::uint8_t> ct(padded_plaintext.size());
  if (!ct.empty()) crypto.cbc_encrypt(iv, padded_plaintext, ct);
  std::vector<std::uint8_t> d(wire::kHeaderSize);
  store_be16(d.data(), wire::kMagic);
  d[2] = static_cast<std::uint8_t>(version);
  d[3] = type;
  store_be32(d.data() + 31, timestamp);
  for (std::size_t i = 0; i < iv.size(); ++i) d[15 + i] = iv[i];
  for (std::size_t i = 0; i < channel.size(); ++i) d[35 + i] = channel[i];
  const bool v1 = version == WireVersion::v1;
  store_be16(d.data() + 51, static_cast<std::uint16_t>(ct.size() + (v1 ? kIvSize : 0)));
  if (v1) d.insert(d.end(), iv.begin(), iv.end());
  d.insert(d.end(), ct.begin(), ct.end());
  const Digest mac = v1 ? crypto.keyed_sha256(d) : crypto.hmac_sha256(d);
  d.insert(d.end(), mac.begin(), mac.end());
  return d;
}

// PKCS#7-pads a plaintext.
inline std::vector<std::uint8_t> pkcs7(std::vector<std::uint8_t> pt) {
  const std::size_t pad = kBlockSize - pt.size() % kBlockSize;
  pt.insert(pt.end(), pad, static_cast<std::uint8_t>(pad));
  return pt;
}

}  // namespace nomq::test
