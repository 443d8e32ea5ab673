// libFuzzer target: wire v2 decode with the v2-kat.json keys and a fixed clock, so that the
// committed seeds (real v2 packets of every type) pass the MAC and the fuzzer explores the
// checks behind it. Property: whatever decodes re-encodes, with the IV it carried, to exactly the
// input bytes (the codec has one canonical encoding per packet).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "fuzz_support.hpp"
#include "nomq/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nomq;
  static fuzz::FuzzCrypto crypto{fuzz::kV2EncKey, fuzz::kV2HmacKey};
  static std::array<std::uint8_t, 65536> scratch;
  static std::array<std::uint8_t, wire::kMaxDatagram> out;

  const Bytes datagram{data, size};
  wire::DecodeOptions options;
  options.version = WireVersion::v2;
  options.now = fuzz::kFixedNow;
  const Result<wire::Packet> r = wire::decode(datagram, crypto, options, scratch);
  if (!r.ok()) {
    NOMQ_FUZZ_CHECK(r.error() != Errc::ok && r.error() != Errc::crypto_failure &&
                    r.error() != Errc::buffer_too_small);
    return 0;
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
  return 0;
}
