// Shared by the two config fuzz targets.
#pragma once

#include <string>

#include "fuzz_support.hpp"
#include "nomq/config.hpp"

// A config the loader refused: one of the two config errors, with a one-line reason.
inline void check_refused_config(const nomq::Result<nomq::LoadedConfig>& loaded) {
  NOMQ_FUZZ_CHECK(loaded.error() == nomq::Errc::config_bad_format ||
                  loaded.error() == nomq::Errc::config_bad_field);
  NOMQ_FUZZ_CHECK(loaded.error().message() != loaded.error().name());
  NOMQ_FUZZ_CHECK(loaded.error().message().find('\n') == std::string_view::npos);
}
