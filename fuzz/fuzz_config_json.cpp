// libFuzzer target: our JSON config format through nomq::parse_config (the in-memory loader,
// so no temp files). Properties: no crash or exception escapes, a failure carries an error
// code and a message, and an accepted config survives to_json_text -> parse_config unchanged.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_config_support.hpp"
#include "nomq/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text{reinterpret_cast<const char*>(data), size};
  const auto loaded = nomq::parse_config(text, "fuzz.json");
  if (!loaded.ok()) {
    check_refused_config(loaded);
    return 0;
  }
  NOMQ_FUZZ_CHECK(nomq::validate_config(loaded->config).ok());
  const std::string written = nomq::to_json_text(loaded->config);
  const auto again = nomq::parse_config(written, "rewritten.json");
  if (!again.ok()) std::fprintf(stderr, "%s\n%s\n", again.error().c_str(), written.c_str());
  NOMQ_FUZZ_CHECK(again.ok());
  NOMQ_FUZZ_CHECK(again->format == nomq::ConfigFormat::json);
  NOMQ_FUZZ_CHECK(nomq::to_json_text(again->config) == written);
  return 0;
}
