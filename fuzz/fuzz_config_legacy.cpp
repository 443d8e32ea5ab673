// libFuzzer target: the original's obfuscated config format. The first input byte picks the
// mode: even -> the rest is the file text as is (base64, length, padding, decryption checks);
// odd -> the rest is the plaintext JSON, wrapped here with the fixed config key and a fixed IV,
// so the fuzzer reaches the legacy field reader behind the encryption. Properties: no crash, a
// failure carries an error code and one line, and an accepted config is wire v1 and survives
// to_legacy_text -> parse_config unchanged.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config_internal.hpp"
#include "fuzz_config_support.hpp"
#include "nomq/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest{reinterpret_cast<const char*>(data + 1), size - 1};
  constexpr nomq::Iv kIv = {0xdf, 0xdb, 0xf4, 0x7d, 0x40, 0x44, 0x23, 0x1d,
                            0x68, 0x7a, 0xcb, 0xec, 0xfb, 0xe5, 0x02, 0xb4};
  std::string file_text;
  if ((data[0] & 1) != 0) {
    auto wrapped = nomq::detail::legacy_wrap(rest, kIv);
    if (!wrapped) {
      std::fprintf(stderr, "legacy_wrap failed: %s\n", wrapped.error().c_str());
      std::abort();
    }
    file_text = std::move(*wrapped);
  } else {
    file_text.assign(rest);
  }
  const auto loaded = nomq::parse_config(file_text, "nomq_config.json");
  if (!loaded.ok()) {
    check_refused_config(loaded);
    return 0;
  }
  if (loaded->format != nomq::ConfigFormat::legacy) return 0;  // JSON text: the other target's
  NOMQ_FUZZ_CHECK(loaded->config.wire == nomq::WireVersion::v1);
  const auto rewritten = nomq::to_legacy_text(loaded->config, kIv);
  NOMQ_FUZZ_CHECK(rewritten.ok());
  const auto again = nomq::parse_config(*rewritten, "rewritten");
  if (!again.ok()) std::fprintf(stderr, "%s\n", again.error().c_str());
  NOMQ_FUZZ_CHECK(again.ok() && again->format == nomq::ConfigFormat::legacy);
  NOMQ_FUZZ_CHECK(nomq::to_json_text(again->config) == nomq::to_json_text(loaded->config));
  return 0;
}
