// libFuzzer target: wire v2 decode with the v2-kat.json keys and a fixed clock, so that the
// committed seeds (real v2 packets of every type) pass the MAC and the fuzzer explores the
// checks behind it. Each input is decoded three ways:
//   1. as it is (what an attacker without the keys can send: almost every mutation dies at the
//      MAC, which is the point);
//   2. with its MAC recomputed (a key holder's forgery: header mutations reach the later checks);
//   3. with the ciphertext region taken as plaintext, encrypted in place and MACed (the fuzzer
//      then writes plaintexts directly: padding and body parsing see structured input).
// Property: whatever decodes re-encodes, with the IV it carried, to exactly the decoded bytes
// (the codec has one canonical encoding per packet).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "nomq/wire.hpp"

namespace {

using namespace nomq;

Crypto& group_crypto() {
  static fuzz::FuzzCrypto c{fuzz::kV2EncKey, fuzz::kV2HmacKey};
  return c.crypto();
}

// The channel names of the seed packets (v2-kat.json), with their ids, as an engine would pass
// its subscriptions.
std::span<const wire::KnownChannel> known_channels() {
  static const auto table = [] {
    static constexpr std::string_view kNames[] = {
        "sensors/temp", "alarms/fire", "a/b", "actuators/valve", "bin/blob",
        "capteurs/temp\xc3\xa9rature",
        "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
        "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
        "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"};
    std::array<wire::KnownChannel, std::size(kNames)> t{};
    for (std::size_t i = 0; i < t.size(); ++i) {
      t[i].name = kNames[i];
      t[i].id = wire::channel_id(group_crypto(), kNames[i]);
    }
    return t;
  }();
  return table;
}

void check_one(const std::uint8_t* data, std::size_t size) {
  static std::array<std::uint8_t, 65536 + 128> scratch;
  static std::array<std::uint8_t, wire::kMaxDatagram> out;
  Crypto& crypto = group_crypto();

  const Bytes datagram{data, size};
  wire::DecodeOptions options;
  options.version = WireVersion::v2;
  options.wall = fuzz::wall_at(fuzz::kFixedNow);
  const Result<wire::Packet> r = wire::decode(datagram, crypto, options, scratch);
  // DecodeOptions::known_channels is a speed-up "with no effect on verdicts": check that.
  static std::array<std::uint8_t, 65536 + 128> scratch2;
  options.known_channels = known_channels();
  const Result<wire::Packet> k = wire::decode(datagram, crypto, options, scratch2);
  NOMQ_FUZZ_CHECK(k.ok() == r.ok() && k.error() == r.error());
  if (r.ok()) {
    NOMQ_FUZZ_CHECK(k->body.channel == r->body.channel && k->channel_id == r->channel_id &&
                    k->plaintext.size() == r->plaintext.size());
  }
  if (!r.ok()) {
    NOMQ_FUZZ_CHECK(r.error() != Errc::ok && r.error() != Errc::crypto_failure &&
                    r.error() != Errc::buffer_too_small);
    return;
  }
  const wire::Packet& p = *r;
  NOMQ_FUZZ_CHECK(p.version == WireVersion::v2);
  NOMQ_FUZZ_CHECK(size >= wire::kV2MinDatagram && size <= wire::kHeaderSize + 65535 + wire::kMacSize);
  NOMQ_FUZZ_CHECK(wire::encoded_size(p) == size);
  const Result<std::size_t> n = wire::encode(p, crypto, out);
  if (size <= wire::kMaxDatagram) {
    NOMQ_FUZZ_CHECK(n.ok());
    NOMQ_FUZZ_CHECK(*n == size);
    NOMQ_FUZZ_CHECK(std::equal(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*n), data));
  } else {
    // Larger than any sender may produce (the engine drops these before decoding).
    NOMQ_FUZZ_CHECK(!n.ok() && n.error() == Errc::message_too_large);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::vector<std::uint8_t> copy;
  check_one(data, size);
  if (size < wire::kHeaderSize + wire::kMacSize) return 0;
  const std::size_t mac_at = size - wire::kMacSize;
  copy.assign(data, data + size);
  Digest mac = group_crypto().hmac_sha256(Bytes{copy.data(), mac_at});
  std::copy(mac.begin(), mac.end(), copy.begin() + static_cast<std::ptrdiff_t>(mac_at));
  check_one(copy.data(), copy.size());
  const std::size_t body = mac_at - wire::kHeaderSize;
  if (body == 0 || body % kBlockSize != 0) return 0;
  Iv iv;
  std::copy_n(copy.begin() + 15, kIvSize, iv.begin());
  MutableBytes region{copy.data() + wire::kHeaderSize, body};
  if (!group_crypto().cbc_encrypt(iv, region, region)) return 0;
  mac = group_crypto().hmac_sha256(Bytes{copy.data(), mac_at});
  std::copy(mac.begin(), mac.end(), copy.begin() + static_cast<std::ptrdiff_t>(mac_at));
  check_one(copy.data(), copy.size());
  return 0;
}
