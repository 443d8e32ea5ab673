// Shared by the fuzz targets: a crypto backend with fixed keys and deterministic randomness, the
// fixed clock the seed corpus was made for, and a check that aborts with a message (libFuzzer
// and the replay main both report an abort as a failing input).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "nomq/crypto.hpp"
#include "nomq/openssl_crypto.hpp"
#include "nomq/time.hpp"
#include "sim/same_clock.hpp"
#include "sim/seeded_rng.hpp"

// A property violation: print where and why, then abort so the input is kept as a crash.
#define NOMQ_FUZZ_CHECK(cond)                                                          \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "fuzz property violated: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

// Bookkeeping loops of the harnesses (a PRNG, sums over counters) are left out of coverage
// instrumentation: their edges tell libFuzzer nothing about the code under test, and a
// coverage callback per loop iteration was a measurable share of each execution.
#if defined(__clang__)
#define NOMQ_FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NOMQ_FUZZ_NO_COVERAGE
#endif

namespace nomq::fuzz {

using sim::wall_at;

// The keys of the corpora: v1 seeds come from legacy-v1.json (the original's sample keys),
// v2 seeds from v2-kat.json. Anything the fuzzer builds "authentically" uses the same keys.
inline constexpr Key kV1EncKey = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45,
                                  0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                                  0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
inline constexpr Key kV1HmacKey = {0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                   0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45,
                                   0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89};
inline constexpr Key kV2EncKey = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                                  0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
                                  0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
inline constexpr Key kV2HmacKey = {0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
                                   0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95,
                                   0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f};

// The engine fuzzer's channel key (keyed mode): arbitrary fixed bytes, distinct from the above.
inline constexpr Key kChanEncKey = {0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
                                    0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5,
                                    0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf};
inline constexpr Key kChanMacKey = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a,
                                    0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55,
                                    0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f};
inline constexpr Key kChanTagKey = {0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
                                    0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75,
                                    0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f};

// Every corpus packet carries a timestamp within a few seconds of this (Unix seconds).
inline constexpr std::uint32_t kCorpusTime = 1700000000;
inline constexpr Instant kFixedNow{std::chrono::seconds(std::int64_t{kCorpusTime} + 1)};

// OpenSslCrypto with fixed keys and the tests' seeded generator (sim::SeededRng), so that an
// engine run (session ids, IVs, jitter) is a pure function of the fuzz input.
class FuzzCrypto {
 public:
  FuzzCrypto(const Key& enc, const Key& mac) {
    auto r = OpenSslCrypto::create(enc, mac);
    if (!r.ok()) {
      std::fprintf(stderr, "FuzzCrypto: OpenSslCrypto::create failed\n");
      std::abort();
    }
    inner_ = std::move(*r);
  }
  // The engine fuzzer's channel key set: fixed encryption, MAC and channel-tag keys, so that
  // channel_tag() is keyed as under a real channel key (docs/protocol.md §14.4).
  static FuzzCrypto channel_key_set() {
    FuzzCrypto c{kChanEncKey, kChanMacKey};
    c.inner_->set_channel_tag_key(kChanTagKey);
    return c;
  }
  void reseed(std::uint64_t seed) noexcept { rng_.reseed(seed); }
  Crypto& crypto() noexcept { return *inner_; }
  Rng& rng() noexcept { return rng_; }

 private:
  std::unique_ptr<OpenSslCrypto> inner_;
  sim::SeededRng rng_{1};
};

// Reads the fuzz input front to back; past the end every read yields zero.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
  bool empty() const noexcept { return pos_ >= size_; }
  std::size_t left() const noexcept { return pos_ < size_ ? size_ - pos_ : 0; }
  std::uint8_t u8() noexcept { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() noexcept {
    const auto hi = u8();
    return static_cast<std::uint16_t>((hi << 8) | u8());
  }
  std::uint32_t u32() noexcept {
    const std::uint32_t hi = u16();
    return (hi << 16) | u16();
  }
  // Up to n bytes (fewer at the end of the input).
  Bytes take(std::size_t n) noexcept {
    const std::size_t k = n < left() ? n : left();
    Bytes b{data_ + pos_, k};
    pos_ += k;
    return b;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace nomq::fuzz
