// Writes tests/vectors/v2-kat.json: wire v2 known-answer vectors made by our encoder with fixed
// keys and fixed IVs. Built with the tests, never run by them; rerun it only when the v2 format
// changes on purpose, and commit the result:
//   build/tests/vectors/gen_v2_kat > tests/vectors/v2-kat.json
// The vectors are checked twice: wire_v2_kat_test.cpp re-encodes and decodes them with the
// codec, and check_v2_kat.py rebuilds them from docs/protocol.md with python3-cryptography.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nomq/openssl_crypto.hpp"
#include "nomq/wire.hpp"

namespace {

using nlohmann::ordered_json;
using nomq::Bytes;
using nomq::wire::PacketType;

std::string hex(Bytes b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (const std::uint8_t x : b) {
    s.push_back(kDigits[x >> 4]);
    s.push_back(kDigits[x & 15]);
  }
  return s;
}

nomq::Key key_of(std::uint8_t first) {
  nomq::Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(first + i);
  return k;
}

struct Spec {
  std::string name;
  PacketType type;
  std::uint8_t flags = 0;
  std::string channel;  // PUBLISH/SUBSCRIBE/UNSUBSCRIBE name, or the channel an ACK refers to
  std::vector<std::uint8_t> message;
  std::uint32_t message_id = 0;
  std::uint32_t acked_id = 0;
  std::uint16_t ttl = 3600;
  std::uint32_t timestamp = 1700000000;
  std::string note;
};

std::vector<std::uint8_t> text(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<Spec> specs() {
  using nomq::wire::publish_flags;
  std::vector<Spec> v;
  v.push_back({"publish_q0_p0", PacketType::publish, publish_flags(0, false, 0), "sensors/temp",
               text("21.5 C"), 0x00000001, 0, 3600, 1700000000, "QoS 0, priority 0"});
  v.push_back({"publish_q1_p5", PacketType::publish, publish_flags(1, false, 5), "sensors/temp",
               text("temperature=21.5"), 0x00000002, 0, 3600, 1700000000,
               "QoS 1, priority 5: 4+1+12+16 = 33 plaintext bytes, 48 ciphertext bytes"});
  v.push_back({"publish_q2_retain_p9", PacketType::publish, publish_flags(2, true, 9),
               "actuators/valve", text("valve=closed"), 0xDEADBEEF, 0, 600, 1700000000,
               "QoS 2, retain, priority 9"});
  v.push_back({"publish_q1_retain_p15", PacketType::publish, publish_flags(1, true, 15),
               "alarms/fire", text("alarm: smoke detected"), 0x7FFFFFFF, 0, 3600, 1700000000,
               "QoS 1, retain, priority 15 (flags 0xF5)"});
  v.push_back({"publish_fullblock", PacketType::publish, publish_flags(0, false, 0), "a/b",
               text("0123456789abcdefghijklmn"), 3, 0, 3600, 1700000000,
               "4 + 1 + 3 + 24 = 32 plaintext bytes: a whole block of 0x10 padding is added"});
  v.push_back({"publish_empty_message", PacketType::publish, publish_flags(1, false, 0),
               "sensors/temp", {}, 4, 0, 3600, 1700000000, "a zero-length message"});
  std::vector<std::uint8_t> binary(64);
  for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<std::uint8_t>(255 - i * 3);
  v.push_back({"publish_binary_64", PacketType::publish, publish_flags(0, false, 3), "bin/blob",
               binary, 5, 0, 3600, 1700000000, "v2 messages are bytes: not UTF-8 here"});
  std::vector<std::uint8_t> big(1024);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>('0' + i % 10);
  v.push_back({"publish_1024", PacketType::publish, publish_flags(1, false, 0), "sensors/temp",
               big, 6, 0, 3600, 1700000000, "a 1024-byte message, the default limit"});
  v.push_back({"publish_utf8_channel", PacketType::publish, publish_flags(0, false, 0),
               "capteurs/temp\xC3\xA9rature", text("temp\xC3\xA9rature 21,5 \xC2\xB0" "C"), 7, 0,
               3600, 1700000000, "channel id = SHA-256 of the UTF-8 name"});
  v.push_back({"publish_channel_255", PacketType::publish, publish_flags(0, false, 0),
               std::string(255, 'c'), text("longest name"), 8, 0, 3600, 1700000000,
               "the longest channel name v2 carries"});
  v.push_back({"publish_epoch2000", PacketType::publish, publish_flags(1, false, 0),
               "sensors/temp", text("device clock"), 9, 0, 3600, 1700000000u - 946684800u,
               "timestamp counted from 2000-01-01 (receiver configured with that epoch)"});
  v.push_back({"subscribe_want_retained_p7", PacketType::subscribe,
               static_cast<std::uint8_t>((7 << 4) | nomq::wire::kFlagWantRetained),
               "sensors/temp", {}, 0, 0, 3600, 1700000000,
               "fresh subscription: priority 7 in bits 4-7, bit 3 asks for retained messages"});
  v.push_back({"subscribe_reannounce", PacketType::subscribe, 0, "sensors/temp", {}, 0, 0, 3600,
               1700000000, "heartbeat re-announcement: no retained messages wanted"});
  v.push_back({"unsubscribe", PacketType::unsubscribe, 0, "alarms/fire", {}, 0, 0, 3600,
               1700000000, ""});
  v.push_back({"ack", PacketType::ack, 1, "sensors/temp", {}, 0, 0x00000002, 3600, 1700000001,
               "acknowledges message id 2 (QoS 1)"});
  v.push_back({"pubrec", PacketType::pubrec, 0, "actuators/valve", {}, 0, 0xDEADBEEF, 3600,
               1700000001, ""});
  v.push_back({"pubrel", PacketType::pubrel, 0, "actuators/valve", {}, 0, 0xDEADBEEF, 3600,
               1700000002, ""});
  v.push_back({"pubcomp", PacketType::pubcomp, 0, "actuators/valve", {}, 0, 0xDEADBEEF, 3600,
               1700000003, ""});
  v.push_back({"heartbeat", PacketType::heartbeat, 0, "", {}, 0, 0, 3600, 1700000000,
               "empty body: one block of 0x10; channel id all zero"});
  return v;
}

}  // namespace

int main() {
  const nomq::Key enc = key_of(0x00);
  const nomq::Key mac = key_of(0x80);
  auto made = nomq::OpenSslCrypto::create(enc, mac);
  if (!made.ok()) {
    std::fprintf(stderr, "gen_v2_kat: %s\n", made.error().c_str());
    return 1;
  }
  nomq::Crypto& crypto = **made;

  ordered_json out;
  out["format"] = "nomq-v2-known-answer-vectors";
  out["version"] = 1;
  out["about"] = {
      "Wire v2 packets made by tests/vectors/gen_v2_kat.cpp; docs/protocol.md is the spec.",
      "Integers are JSON numbers; byte strings are lowercase hex.",
      "iv = SHA-256('nomq-v2-kat|' + name)[0:16] (fixed so that the packets are reproducible; "
      "real senders draw it from a CSPRNG).",
      "packet_id = 1000 + index, session_id = 0x5e55104e for every vector.",
      "plaintext is the body before PKCS#7 padding."};
  out["keys"] = {{"encryption_key", hex(enc)}, {"hmac_key", hex(mac)}};
  ordered_json vectors = ordered_json::array();

  std::uint32_t index = 0;
  for (const Spec& s : specs()) {
    nomq::wire::Packet p;
    p.version = nomq::WireVersion::v2;
    p.type = s.type;
    p.flags = s.flags;
    p.packet_id = 1000 + index++;
    p.session_id = 0x5e55104e;
    p.ttl = s.ttl;
    const std::string label = "nomq-v2-kat|" + s.name;
    const nomq::Digest ivd = crypto.sha256(nomq::as_bytes(label));
    std::copy_n(ivd.begin(), p.iv.size(), p.iv.begin());
    p.timestamp = s.timestamp;
    if (!s.channel.empty()) p.channel_id = nomq::wire::channel_id(crypto, s.channel);
    p.body.channel = s.channel;
    p.body.message = s.message;
    p.body.message_id = s.message_id;
    p.body.acked_id = s.acked_id;

    std::vector<std::uint8_t> buf(nomq::wire::encoded_size(p));
    const auto n = nomq::wire::encode(p, crypto, buf);
    if (!n.ok()) {
      std::fprintf(stderr, "gen_v2_kat: %s: %s\n", s.name.c_str(),
                   n.error().c_str());
      return 1;
    }
    buf.resize(*n);
    std::vector<std::uint8_t> scratch(buf.size());
    nomq::wire::DecodeOptions o;
    o.version = nomq::WireVersion::v2;
    o.check_timestamp = false;
    const auto back = nomq::wire::decode(buf, crypto, o, scratch);
    if (!back.ok()) {
      std::fprintf(stderr, "gen_v2_kat: %s does not decode: %s\n", s.name.c_str(),
                   back.error().c_str());
      return 1;
    }

    ordered_json in;
    in["packet_type"] = static_cast<int>(s.type);
    in["type_name"] = std::string(nomq::wire::to_string(s.type));
    in["flags"] = s.flags;
    in["qos"] = nomq::wire::flags_qos(s.flags);
    in["retain"] = nomq::wire::flags_retain(s.flags);
    in["priority"] = nomq::wire::flags_priority(s.flags);
    in["packet_id"] = p.packet_id;
    in["session_id"] = p.session_id;
    in["ttl"] = p.ttl;
    in["iv"] = hex(p.iv);
    in["timestamp"] = p.timestamp;
    in["channel"] = s.channel;
    in["channel_id"] = hex(p.channel_id);
    if (s.type == PacketType::publish) {
      in["message_id"] = s.message_id;
      in["message_hex"] = hex(s.message);
    }
    if (nomq::wire::is_ack_type(s.type)) in["acked_id"] = s.acked_id;

    ordered_json v;
    v["name"] = s.name;
    if (!s.note.empty()) v["note"] = s.note;
    v["inputs"] = in;
    v["plaintext"] = hex(back->plaintext);
    v["packet"] = hex(buf);
    v["length"] = buf.size();
    vectors.push_back(v);
  }
  out["vectors"] = vectors;
  std::cout << out.dump(1) << "\n";
  return 0;
}
