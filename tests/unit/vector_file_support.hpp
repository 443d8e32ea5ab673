// Helpers shared by the known-answer vector tests (legacy-v1.json, v2-kat.json): load a vector
// file once, list and find vectors by name, and name parameterised cases after them.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nomq::test {

// tests/vectors/<file_name>, parsed once per test run. A missing or malformed file gives a
// discarded value: the tests that check is_discarded() then fail with the file's name, and the
// parameterised suites built from it are empty (gtest reports an uninstantiated suite).
inline const nlohmann::json& vector_file(const std::string& file_name) {
  static std::map<std::string, nlohmann::json> parsed;
  auto it = parsed.find(file_name);
  if (it == parsed.end()) {
    std::ifstream in(std::string(NOMQ_VECTORS_DIR) + "/" + file_name);
    it = parsed.emplace(file_name, nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false))
             .first;
  }
  return it->second;
}

// The "name" of every vector in `section`; empty when the file or the section is missing.
inline std::vector<std::string> vector_names(const nlohmann::json& file, const char* section) {
  std::vector<std::string> names;
  if (file.is_discarded() || !file.contains(section)) return names;
  for (const auto& v : file[section]) names.push_back(v["name"].get<std::string>());
  return names;
}

// The vector named `name` in `section`, or a null value the caller must check.
inline const nlohmann::json& find_vector(const nlohmann::json& file, const char* section,
                                         const std::string& name) {
  if (!file.is_discarded() && file.contains(section)) {
    for (const auto& v : file[section]) {
      if (v["name"] == name) return v;
    }
  }
  static const nlohmann::json kNull;
  return kNull;
}

// Names a case of a suite parameterised by vector name after the vector.
inline std::string vector_param_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace nomq::test

#include "nomq/wire.hpp"
#include "unit/wire_test_support.hpp"

namespace nomq::test {

// The header fields a packet vector's "inputs" record, in either version's file.
inline wire::Packet header_from_inputs(const nlohmann::json& in, WireVersion version) {
  wire::Packet p;
  p.version = version;
  p.type = static_cast<wire::PacketType>(in["packet_type"].get<int>());
  p.flags = in["flags"].get<std::uint8_t>();
  p.packet_id = in["packet_id"].get<std::uint32_t>();
  p.session_id = in["session_id"].get<std::uint32_t>();
  p.ttl = in["ttl"].get<std::uint16_t>();
  p.iv = array_from_hex<Iv>(in["iv"].get<std::string>());
  p.timestamp = in["timestamp"].get<std::uint32_t>();
  return p;
}

// Checks that a decoded packet carries the header fields its vector's "inputs" record.
inline void expect_header_matches_inputs(const wire::Packet& p, const nlohmann::json& in) {
  EXPECT_EQ(static_cast<int>(p.type), in["packet_type"].get<int>());
  EXPECT_EQ(p.flags, in["flags"].get<int>());
  EXPECT_EQ(p.packet_id, in["packet_id"].get<std::uint32_t>());
  EXPECT_EQ(p.session_id, in["session_id"].get<std::uint32_t>());
  EXPECT_EQ(p.ttl, in["ttl"].get<int>());
  EXPECT_EQ(to_hex(p.iv), in["iv"].get<std::string>());
  EXPECT_EQ(p.timestamp, in["timestamp"].get<std::uint32_t>());
}

}  // namespace nomq::test
