// The original's obfuscated config container: base64(IV || AES-256-CBC(SHA-256("nomq_config_key"),
// PKCS#7(JSON))) + "\n" (LEGACY-WIRE-FORMAT.md §10). The key is a published constant, so this is
// obfuscation, not protection: docs/config.md says so.
#include <openssl/evp.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "config/config_internal.hpp"

namespace nomq::detail {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

bool is_b64_char(unsigned char c) noexcept {
  return std::isalnum(c) != 0 || c == '+' || c == '/';
}

// Strict base64 (standard alphabet, '=' padding, no embedded garbage). OpenSSL's EVP_DecodeBlock
// does the decoding; it neither rejects misplaced '=' nor reports the padding length, hence the
// checks around it.
bool base64_decode(std::string_view text, std::vector<std::uint8_t>& out, std::string& why) {
  if (text.empty()) {
    why = "empty file";
    return false;
  }
  if (text.size() % 4 != 0) {
    why = "not base64: length " + std::to_string(text.size()) + " is not a multiple of 4";
    return false;
  }
  std::size_t pad = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '=') {
      if (i + 2 < text.size()) {  // '=' only in the last two positions
        why = "not base64: '=' at offset " + std::to_string(i);
        return false;
      }
      ++pad;
    } else if (!is_b64_char(c) || pad != 0) {
      why = "not base64: ";
      why += std::isprint(c) != 0 ? "character '" + std::string(1, static_cast<char>(c)) + "'"
                                  : "byte " + std::to_string(c);
      why += " at offset " + std::to_string(i);
      return false;
    }
  }
  out.resize(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) < pad) {
    why = "not base64";
    return false;
  }
  out.resize(static_cast<std::size_t>(n) - pad);
  return true;
}

std::string base64_encode(const std::vector<std::uint8_t>& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                                static_cast<int>(data.size()));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

// AES-256-CBC without OpenSSL's padding: we add and check PKCS#7 ourselves so that a bad pad
// gets the original's own message rather than a generic EVP failure.
bool cbc(bool encrypt, const Key& key, const std::uint8_t* iv, const std::uint8_t* in,
         std::size_t n, std::uint8_t* out) {
  CipherCtx ctx{EVP_CIPHER_CTX_new()};
  if (!ctx) return false;
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, key.data(), iv, encrypt ? 1 : 0) !=
      1)
    return false;
  EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
  int len = 0;
  int fin = 0;
  if (EVP_CipherUpdate(ctx.get(), out, &len, in, static_cast<int>(n)) != 1) return false;
  if (EVP_CipherFinal_ex(ctx.get(), out + len, &fin) != 1) return false;
  return static_cast<std::size_t>(len + fin) == n;
}

}  // namespace

bool legacy_config_key(Key& key) {
  static constexpr char kLabel[] = "nomq_config_key";
  unsigned int n = 0;
  return EVP_Digest(kLabel, sizeof kLabel - 1, key.data(), &n, EVP_sha256(), nullptr) == 1 &&
         n == key.size();
}

Result<std::string> legacy_unwrap(std::string_view file_text) {
  // The original strips surrounding whitespace before decoding.
  while (!file_text.empty() && std::isspace(static_cast<unsigned char>(file_text.front())) != 0)
    file_text.remove_prefix(1);
  while (!file_text.empty() && std::isspace(static_cast<unsigned char>(file_text.back())) != 0)
    file_text.remove_suffix(1);
  std::vector<std::uint8_t> raw;
  std::string why;
  if (!base64_decode(file_text, raw, why)) {
    return Error{Errc::config_bad_format,
                 "neither a JSON config (no '{') nor the original's format (", why, ")"};
  }
  if (raw.size() < kIvSize + kBlockSize || raw.size() % kBlockSize != 0) {
    return Error{Errc::config_bad_format, "invalid encrypted config data length: ", raw.size(),
                 " bytes after base64 (needs a 16-byte IV and a non-empty multiple of 16)"};
  }
  Key key{};
  const std::size_t n = raw.size() - kIvSize;
  std::vector<std::uint8_t> out(n);
  if (!legacy_config_key(key) || !cbc(false, key, raw.data(), raw.data() + kIvSize, n, out.data())) {
    return Error{Errc::crypto_failure, "cannot decrypt: OpenSSL AES-256-CBC failed"};
  }
  const std::uint8_t pad = out.back();
  bool pad_ok = pad >= 1 && pad <= kBlockSize;
  for (std::size_t i = 0; pad_ok && i < pad; ++i) pad_ok = out[n - 1 - i] == pad;
  if (!pad_ok) {
    return Error{Errc::config_bad_format,
                 "incorrect padding in config data (not PKCS#7): corrupt file or not a NoMQ config"};
  }
  return std::string{reinterpret_cast<const char*>(out.data()), n - pad};
}

Result<std::string> legacy_wrap(std::string_view plain, const Iv& iv) {
  const std::size_t pad = kBlockSize - plain.size() % kBlockSize;
  std::vector<std::uint8_t> padded(plain.begin(), plain.end());
  padded.resize(plain.size() + pad, static_cast<std::uint8_t>(pad));
  std::vector<std::uint8_t> raw(kIvSize + padded.size());
  std::memcpy(raw.data(), iv.data(), kIvSize);
  Key key{};
  if (!legacy_config_key(key) ||
      !cbc(true, key, iv.data(), padded.data(), padded.size(), raw.data() + kIvSize)) {
    return Error{Errc::crypto_failure, "cannot encrypt: OpenSSL AES-256-CBC failed"};
  }
  return base64_encode(raw) + "\n";
}

}  // namespace nomq::detail
