// The target's test::vector_file() (the host's is tests/unit/vector_file_support.hpp, which
// parses tests/vectors/<file> with nlohmann::json at run time): the same files, embedded at
// build time by tests/mcu/gen_json_vectors.py (mcu/CMakeLists.txt names the files and, for a
// large one, the sections the target tests read). Only vector_file() is offered: the other
// helpers of the host header serve test files that do not run on the target.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace nomq::test {

struct EmbeddedVectorFile {
  const char* name;  // as in tests/vectors, e.g. "key-schedule-kat.json"
  const nlohmann::json* root;
};

#include "json_vectors.inc"

// tests/vectors/<file_name> as embedded; a file that was not embedded gives a discarded value,
// as a missing file does on the host.
inline const nlohmann::json& vector_file(const std::string& file_name) {
  for (const EmbeddedVectorFile& f : kEmbeddedVectorFiles) {
    if (file_name == f.name) return *f.root;
  }
  return nlohmann::json::discarded();
}

}  // namespace nomq::test
