// Shared by the two config fuzz targets.
#pragma once

#include <string>

#include "fuzz_support.hpp"
#include "nomq/config.hpp"

// A config the loader refused: one of the two config errors, with a non-empty one-line message.
inline void check_refused_config(const nomq::ConfigLoad& loaded) {
  NOMQ_FUZZ_CHECK(loaded.error == nomq::Errc::config_bad_format ||
                  loaded.error == nomq::Errc::config_bad_field);
  NOMQ_FUZZ_CHECK(!loaded.message.empty());
  NOMQ_FUZZ_CHECK(loaded.message.find('\n') == std::string::npos);
}
