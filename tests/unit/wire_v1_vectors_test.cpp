// Wire v1 against the original's known-answer vectors (tests/vectors/legacy-v1.json): every
// packet rebuilt byte for byte from its recorded inputs, every negative and quirk vector
// decoded to the verdict the codec owns (the rest are engine verdicts and must decode).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nomq/wire.hpp"
#include "unit/vector_file_support.hpp"
#include "unit/wire_test_support.hpp"

namespace nomq {
namespace {

using nlohmann::json;
using test::from_hex;
using test::to_hex;

const json& vectors() { return test::vector_file("legacy-v1.json"); }

std::vector<std::string> names_of(const char* section) {
  return test::vector_names(vectors(), section);
}

const json& find_vector(const char* section, const std::string& name) {
  return test::find_vector(vectors(), section, name);
}

Crypto& sample_crypto() {
  static const auto c = test::make_crypto(test::kSampleEncKey, test::kSampleHmacKey);
  return *c;
}

wire::DecodeOptions v1_options(double receiver_clock, std::uint32_t epoch_offset = 0) {
  wire::DecodeOptions o;
  o.version = WireVersion::v1;
  o.wall = test::clock_at(receiver_clock);
  o.epoch_offset = epoch_offset;
  return o;
}

struct Decoded {
  Result<wire::Packet> result{Errc::invalid_argument};
  std::vector<std::uint8_t> datagram;
  std::vector<std::uint8_t> scratch;
};

// Decoded views point into the datagram and scratch, so both live beside the result.
std::unique_ptr<Decoded> decode_hex(const std::string& hex, const wire::DecodeOptions& o) {
  auto d = std::make_unique<Decoded>();
  d->datagram = from_hex(hex);
  d->scratch.resize(d->datagram.size());
  d->result = wire::decode(d->datagram, sample_crypto(), o, d->scratch);
  return d;
}

// The header fields and body a packet vector's inputs describe.
wire::Packet packet_from_inputs(const json& in, std::vector<std::uint8_t>& message_storage,
                                std::string& channel_storage) {
  wire::Packet p = test::header_from_inputs(in, WireVersion::v1);
  if (in.contains("channel_id") && in["channel_id"].is_string()) {
    p.channel_id = test::array_from_hex<wire::ChannelId>(in["channel_id"].get<std::string>());
  }
  const auto plaintext = from_hex(in["plaintext"].get<std::string>());
  switch (p.type) {
    case wire::PacketType::publish: {
      const json& pub = in["publish"];
      p.body.message_id = pub["inner_nonce"].get<std::uint32_t>();
      p.body.inner_timestamp = pub["inner_timestamp"].get<std::uint64_t>();
      const auto layout = pub["inner_layout"].get<std::string>();
      p.body.v1_layout =
          layout.rfind("device16", 0) == 0 ? wire::V1Layout::device16 : wire::V1Layout::gap20;
      message_storage = from_hex(pub["message_utf8"].get<std::string>());
      p.body.message = message_storage;
      break;
    }
    case wire::PacketType::subscribe:
    case wire::PacketType::unsubscribe:
      channel_storage = in["channel"].get<std::string>();
      p.body.channel = channel_storage;
      break;
    case wire::PacketType::ack:
    case wire::PacketType::pubrec:
    case wire::PacketType::pubrel:
    case wire::PacketType::pubcomp:
      p.body.acked_id = load_be32(plaintext.data());
      break;
    case wire::PacketType::heartbeat:
      break;
  }
  return p;
}

TEST(WireV1Vectors, FileLoadsWithTheExpectedCounts) {
  ASSERT_FALSE(vectors().is_discarded()) << "cannot read " << NOMQ_VECTORS_DIR;
  EXPECT_EQ(vectors()["format"], "nomq-legacy-v1-known-answer-vectors");
  EXPECT_EQ(names_of("packet_vectors").size(), 29u);
  EXPECT_EQ(names_of("negative_vectors").size(), 25u);
  EXPECT_EQ(names_of("receiver_quirk_vectors").size(), 7u);
}

// ---------------------------------------------------------------- packet vectors

class PacketVector : public ::testing::TestWithParam<std::string> {};

TEST_P(PacketVector, RebuiltByteForByteFromInputs) {
  const json& v = find_vector("packet_vectors", GetParam());
  ASSERT_FALSE(v.is_null());
  std::vector<std::uint8_t> message;
  std::string channel;
  const json& in = v["inputs"];
  const wire::Packet p = packet_from_inputs(in, message, channel);

  // The recorded flags and channel id follow from the recorded arguments.
  if (p.type == wire::PacketType::publish) {
    EXPECT_EQ(p.flags, wire::publish_flags(in["qos"].get<int>(), in["retain"].get<bool>(),
                                           in["priority_arg"].get<int>()));
  } else if (p.type == wire::PacketType::subscribe) {
    EXPECT_EQ(p.flags, wire::v1_subscribe_flags(in["priority_arg"].get<int>()));
  }
  if (in["channel"].is_string()) {
    EXPECT_EQ(to_hex(wire::channel_id(sample_crypto(), in["channel"].get<std::string>())),
              in["channel_id"].get<std::string>());
  }

  const std::size_t expected_len = v["length"].get<std::size_t>();
  EXPECT_EQ(wire::encoded_size(p), expected_len);
  std::vector<std::uint8_t> out(wire::kMaxDatagram);
  const auto n = wire::encode(p, sample_crypto(), out);
  ASSERT_TRUE(n.ok()) << n.error();
  EXPECT_EQ(*n, expected_len);
  EXPECT_EQ(to_hex(Bytes{out.data(), *n}), v["packet"].get<std::string>());
}

TEST_P(PacketVector, DecodesAtTheSenderClockToTheRecordedFields) {
  const json& v = find_vector("packet_vectors", GetParam());
  ASSERT_FALSE(v.is_null());
  const json& in = v["inputs"];
  const double sender_clock = v["sender_clock"].get<double>();
  // The epoch-2000 vector's timestamps are Unix time - 946684800 (a device clock).
  const auto whole = static_cast<std::int64_t>(std::floor(sender_clock));
  const auto epoch = static_cast<std::uint32_t>(whole - in["timestamp"].get<std::int64_t>());
  ASSERT_TRUE(epoch == 0 || epoch == kEpoch2000Offset) << epoch;

  const auto d = decode_hex(v["packet"].get<std::string>(), v1_options(sender_clock, epoch));
  ASSERT_TRUE(d->result.ok()) << d->result.error();
  const wire::Packet& p = *d->result;
  EXPECT_EQ(p.version, WireVersion::v1);
  test::expect_header_matches_inputs(p, in);
  EXPECT_EQ(wire::to_string(p.type), in["type_name"].get<std::string>());
  if (in["channel_id"].is_string()) {
    EXPECT_EQ(to_hex(p.channel_id), in["channel_id"].get<std::string>());
  } else {
    EXPECT_EQ(p.channel_id, wire::ChannelId{});  // HEARTBEAT: 16 zero bytes
  }
  EXPECT_EQ(to_hex(p.plaintext), in["plaintext"].get<std::string>());
  switch (p.type) {
    case wire::PacketType::publish: {
      const json& pub = in["publish"];
      EXPECT_EQ(p.body.message_id, pub["inner_nonce"].get<std::uint32_t>());
      EXPECT_EQ(p.body.inner_timestamp, pub["inner_timestamp"].get<std::uint64_t>());
      EXPECT_EQ(as_string_view(p.body.message), pub["message"].get<std::string>());
      EXPECT_EQ(std::string(wire::to_string(p.body.v1_layout)),
                pub["inner_layout"].get<std::string>().substr(0, std::string(
                    wire::to_string(p.body.v1_layout)).size()));
      EXPECT_EQ(p.qos(), in["qos"].get<int>());
      EXPECT_EQ(p.retain(), in["retain"].get<bool>());
      break;
    }
    case wire::PacketType::subscribe:
    case wire::PacketType::unsubscribe:
      EXPECT_EQ(p.body.channel, in["channel"].get<std::string>());
      break;
    case wire::PacketType::heartbeat:
      EXPECT_TRUE(p.plaintext.empty());
      break;
    default:
      EXPECT_EQ(to_hex(Bytes{from_hex(in["plaintext"].get<std::string>())}),
                [&] {
                  std::uint8_t b[4];
                  store_be32(b, p.body.acked_id);
                  return to_hex(b);
                }());
      EXPECT_EQ(p.body.acked_id, p.packet_id);  // the original echoes the publish's id
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(Legacy, PacketVector, ::testing::ValuesIn(names_of("packet_vectors")),
                         test::vector_param_name);

// ---------------------------------------------------------------- negative and quirk vectors

// What the codec must say about each vector. `ok` = the datagram decodes (the verdict, if any,
// is the engine's); anything else is the decode error.
struct Expectation {
  Errc decode = Errc::ok;
  const char* why = "";
};

// The JSON reason tag -> the codec's reason code, for the tags the codec owns.
const std::map<std::string, Errc>& codec_reasons() {
  static const std::map<std::string, Errc> m = {
      {"too_short", Errc::too_short},
      {"bad_magic", Errc::bad_magic},
      {"bad_version", Errc::bad_version},
      {"stale_timestamp", Errc::stale_timestamp},
      {"bad_length", Errc::bad_length},
      {"bad_mac", Errc::bad_mac},
      {"bad_padding", Errc::bad_padding},
      {"bad_block_size", Errc::bad_block_size},
      {"empty_plaintext", Errc::empty_plaintext},
      {"publish_bad_msg_len", Errc::publish_bad_msg_len},
      {"publish_bad_utf8", Errc::publish_bad_utf8},
      {"publish_payload_short", Errc::publish_payload_short},
  };
  return m;
}

// Tags whose verdict needs receiver state: the datagram itself is valid and must decode.
const std::set<std::string>& engine_reasons() {
  static const std::set<std::string> s = {"unknown_channel", "replay_nonce"};
  return s;
}

// Negative vectors the codec deliberately decides differently from the original.
const std::map<std::string, const char*>& accepted_by_design() {
  static const std::map<std::string, const char*> m = {
      {"device_layout_publish",
       "the original sender's own layout: the HEAD receiver rejects it (msg_len > bytes at 20), "
       "we read it intact (docs/protocol.md, v1 PUBLISH layouts)"},
  };
  return m;
}

// Quirk vectors whose outcome is an engine verdict on a valid datagram.
const std::map<std::string, const char*>& engine_quirks() {
  static const std::map<std::string, const char*> m = {
      {"heartbeat_dropped", "zero channel id is never subscribed: the engine drops it"},
      {"ack_not_for_us_ignored", "ACK for an unknown packet id: the engine ignores it"},
  };
  return m;
}

TEST(WireV1Vectors, EveryReasonTagIsClassified) {
  for (const auto& [tag, log] : vectors()["reason_tags"].items()) {
    EXPECT_TRUE(codec_reasons().count(tag) + engine_reasons().count(tag) == 1)
        << "reason tag '" << tag << "' (" << log << ") is not classified";
  }
}

TEST(WireV1Vectors, EveryNegativeAndQuirkVectorIsClassified) {
  for (const auto& v : vectors()["negative_vectors"]) {
    const auto name = v["name"].get<std::string>();
    const auto reason = v["reason"].get<std::string>();
    const bool known = accepted_by_design().count(name) ||
                       (codec_reasons().count(reason) && !accepted_by_design().count(name)) ||
                       engine_reasons().count(reason);
    EXPECT_TRUE(known) << "negative vector " << name << " (reason " << reason
                       << ") is not classified";
  }
  for (const auto& v : vectors()["receiver_quirk_vectors"]) {
    const auto name = v["name"].get<std::string>();
    const auto expect = v["expect"].get<std::string>();
    EXPECT_TRUE(expect == "accepted" || engine_quirks().count(name))
        << "quirk vector " << name << " (expect " << expect << ") is not classified";
  }
  // Names the tables mention must exist (a renamed vector must not leave a dead entry).
  for (const auto& [name, why] : accepted_by_design()) {
    EXPECT_FALSE(find_vector("negative_vectors", name).is_null()) << name;
  }
  for (const auto& [name, why] : engine_quirks()) {
    EXPECT_FALSE(find_vector("receiver_quirk_vectors", name).is_null()) << name;
  }
}

// Every vector by name, with the codec's verdict (ok = decodes; the verdict is the engine's or,
// for device_layout_publish, a deliberate difference). A vector added to the file, removed from
// it, or given another reason fails this test until it is classified here.
TEST(WireV1Vectors, EveryVectorIsClassifiedByName) {
  const std::map<std::string, Errc> negative = {
      {"mac_last_byte_flipped", Errc::bad_mac},
      {"header_flags_modified", Errc::bad_mac},
      {"ciphertext_byte_flipped", Errc::bad_mac},
      {"header_iv_modified", Errc::bad_mac},
      {"wrong_hmac_key", Errc::bad_mac},
      {"trailing_byte", Errc::bad_mac},
      {"bad_magic", Errc::bad_magic},
      {"bad_version", Errc::bad_version},
      {"truncated_below_minimum", Errc::too_short},
      {"truncated_body", Errc::bad_length},
      {"stale_timestamp", Errc::stale_timestamp},
      {"future_timestamp", Errc::stale_timestamp},
      {"stale_by_fraction", Errc::stale_timestamp},
      {"bad_padding_zero", Errc::bad_padding},
      {"bad_padding_inconsistent", Errc::bad_padding},
      {"bad_padding_17", Errc::bad_padding},
      {"ciphertext_not_block_multiple", Errc::bad_block_size},
      {"empty_ciphertext", Errc::empty_plaintext},
      {"wrong_encryption_key", Errc::bad_padding},
      {"unsubscribed_channel", Errc::ok},   // engine: unknown_channel
      {"device_layout_publish", Errc::ok},  // accepted by design, message intact
      {"msg_len_too_large", Errc::publish_bad_msg_len},
      {"invalid_utf8", Errc::publish_bad_utf8},
      {"inner_payload_too_short", Errc::publish_payload_short},
      {"replayed_publish", Errc::ok},       // engine: replay_nonce
  };
  const std::set<std::string> quirks = {
      "timestamp_plus_30_accepted", "timestamp_minus_30_accepted",
      "header_iv_differs_from_payload_iv", "ttl_zero_session_any", "trailing_plaintext_ignored",
      "heartbeat_dropped" /* engine: unknown_channel */,
      "ack_not_for_us_ignored" /* engine: no pending id */};

  std::set<std::string> seen;
  for (const auto& v : vectors()["negative_vectors"]) {
    const auto name = v["name"].get<std::string>();
    seen.insert(name);
    const auto it = negative.find(name);
    if (it == negative.end()) {
      ADD_FAILURE() << "negative vector " << name << " is not classified";
      continue;
    }
    const auto reason = v["reason"].get<std::string>();
    const Errc from_tag = codec_reasons().count(reason) ? codec_reasons().at(reason) : Errc::ok;
    if (!accepted_by_design().count(name)) {
      EXPECT_EQ(to_string(it->second), to_string(from_tag)) << name << " (tag " << reason << ")";
    }
    const auto d = decode_hex(v["packet"].get<std::string>(),
                              v1_options(v["receiver_clock"].get<double>()));
    EXPECT_EQ(to_string(d->result.error()), to_string(it->second)) << name;
  }
  EXPECT_EQ(seen.size(), negative.size()) << "a classified negative vector left the file";
  seen.clear();
  for (const auto& v : vectors()["receiver_quirk_vectors"]) {
    const auto name = v["name"].get<std::string>();
    seen.insert(name);
    EXPECT_TRUE(quirks.count(name)) << "quirk vector " << name << " is not classified";
    const auto d = decode_hex(v["packet"].get<std::string>(),
                              v1_options(v["receiver_clock"].get<double>()));
    EXPECT_TRUE(d->result.ok()) << name << ": " << d->result.error();
  }
  EXPECT_EQ(seen, quirks);
}

// The datagrams whose original verdict needs receiver state decode; the engine judges them.
TEST(WireV1Vectors, EngineVerdictVectorsDecode) {
  const std::pair<const char*, const char*> engine_level[] = {
      {"negative_vectors", "unsubscribed_channel"},
      {"negative_vectors", "replayed_publish"},
      {"receiver_quirk_vectors", "heartbeat_dropped"},
      {"receiver_quirk_vectors", "ack_not_for_us_ignored"},
  };
  for (const auto& [section, name] : engine_level) {
    const json& v = find_vector(section, name);
    ASSERT_FALSE(v.is_null()) << name;
    const auto d = decode_hex(v["packet"].get<std::string>(),
                              v1_options(v["receiver_clock"].get<double>()));
    EXPECT_TRUE(d->result.ok()) << name << ": " << d->result.error();
  }
}

class NegativeVector : public ::testing::TestWithParam<std::string> {};

TEST_P(NegativeVector, DecodesToTheOriginalsVerdict) {
  const json& v = find_vector("negative_vectors", GetParam());
  ASSERT_FALSE(v.is_null());
  const auto reason = v["reason"].get<std::string>();
  const auto o = v1_options(v["receiver_clock"].get<double>());
  const auto d = decode_hex(v["packet"].get<std::string>(), o);

  if (accepted_by_design().count(GetParam())) {
    ASSERT_TRUE(d->result.ok()) << GetParam() << ": " << d->result.error();
    EXPECT_EQ(d->result->body.v1_layout, wire::V1Layout::device16);
    // The message as the base vector's sender wrote it, intact.
    const json& base = find_vector("packet_vectors", v["base"].get<std::string>());
    EXPECT_EQ(as_string_view(d->result->body.message),
              base["inputs"]["publish"]["message"].get<std::string>());
    return;
  }
  if (engine_reasons().count(reason)) {
    // A valid datagram: the engine gives this verdict with its subscription / nonce state.
    ASSERT_TRUE(d->result.ok()) << GetParam() << ": " << d->result.error();
    if (reason == "unknown_channel") {
      for (const auto& sub : v["receiver_subscriptions"]) {
        EXPECT_NE(d->result->channel_id, wire::channel_id(sample_crypto(), sub.get<std::string>()));
      }
    }
    if (reason == "replay_nonce") {
      // Stateless: the same datagram decodes again, with the same nonce for the engine to see.
      const auto again = decode_hex(v["packet"].get<std::string>(), o);
      ASSERT_TRUE(again->result.ok());
      EXPECT_EQ(again->result->body.message_id, d->result->body.message_id);
    }
    return;
  }
  ASSERT_TRUE(codec_reasons().count(reason)) << reason;
  ASSERT_FALSE(d->result.ok()) << GetParam() << " was accepted";
  EXPECT_EQ(to_string(d->result.error()), to_string(codec_reasons().at(reason)));
}

INSTANTIATE_TEST_SUITE_P(Legacy, NegativeVector,
                         ::testing::ValuesIn(names_of("negative_vectors")), test::vector_param_name);

class QuirkVector : public ::testing::TestWithParam<std::string> {};

TEST_P(QuirkVector, DecodesAndDeliversTheRecordedMessage) {
  const json& v = find_vector("receiver_quirk_vectors", GetParam());
  ASSERT_FALSE(v.is_null());
  const auto d = decode_hex(v["packet"].get<std::string>(),
                            v1_options(v["receiver_clock"].get<double>()));
  // Accepted by the original, or a valid datagram the engine drops or ignores: decodes either way.
  ASSERT_TRUE(d->result.ok()) << GetParam() << ": " << d->result.error();
  const auto& delivered = v["delivered"];
  if (engine_quirks().count(GetParam())) {
    EXPECT_TRUE(delivered.empty());
    EXPECT_NE(d->result->type, wire::PacketType::publish);
    return;
  }
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(d->result->type, wire::PacketType::publish);
  EXPECT_EQ(as_string_view(d->result->body.message), delivered[0]["message"].get<std::string>());
  EXPECT_EQ(d->result->channel_id,
            wire::channel_id(sample_crypto(), delivered[0]["channel"].get<std::string>()));
}

TEST(WireV1Vectors, HeaderIvCopyIsReportedButThePayloadCopyDecrypts) {
  const json& v = find_vector("receiver_quirk_vectors", "header_iv_differs_from_payload_iv");
  const auto d = decode_hex(v["packet"].get<std::string>(),
                            v1_options(v["receiver_clock"].get<double>()));
  ASSERT_TRUE(d->result.ok());
  EXPECT_NE(to_hex(d->result->iv), to_hex(Bytes{d->datagram}.subspan(53, 16)));
}

INSTANTIATE_TEST_SUITE_P(Legacy, QuirkVector,
                         ::testing::ValuesIn(names_of("receiver_quirk_vectors")), test::vector_param_name);

// Every datagram of the recorded exchanges is a valid v1 packet.
TEST(WireV1Vectors, SequenceDatagramsDecode) {
  std::size_t count = 0;
  for (const auto& seq : vectors()["sequences"]) {
    if (!seq.contains("steps")) continue;
    for (const auto& step : seq["steps"]) {
      if (!step.contains("datagram") || !step["datagram"].is_string()) continue;
      auto o = v1_options(0);
      o.check_timestamp = false;
      const auto d = decode_hex(step["datagram"].get<std::string>(), o);
      EXPECT_TRUE(d->result.ok()) << step["step"] << ": " << d->result.error();
      for (const auto& msg : step["delivered"]) {
        ASSERT_TRUE(d->result.ok());
        EXPECT_EQ(as_string_view(d->result->body.message), msg["message"].get<std::string>());
      }
      ++count;
    }
  }
  EXPECT_GT(count, 0u);
}

}  // namespace
}  // namespace nomq
