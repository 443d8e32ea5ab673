-- NoMQ dissector for Wireshark 4.0 (Lua 5.2): wire v1 (the original MicroPython format) and
-- wire v2 (NoMQ's own), as specified in docs/protocol.md and tests/vectors/LEGACY-WIRE-FORMAT.md.
--
-- Use: copy this file to ~/.local/lib/wireshark/plugins/ (or pass -X lua_script:nomq.lua to
-- tshark). Preferences (Edit > Preferences > Protocols > NoMQ, or tshark -o nomq.NAME:VALUE):
--   nomq.port     UDP port dissected as NoMQ (default 8888)
--   nomq.heuristic  find NoMQ on any UDP port by its first bytes (default on)
--   nomq.config   NoMQ config file(s) whose keys verify and decrypt packets, ';'-separated:
--                 our JSON format or the original's obfuscated nomq_config.json
--   nomq.epoch    epoch of wire timestamps: auto (the config's, else 1970), 1970 or 2000
--   nomq.window   timestamp window in seconds; 0 = the config's timestamp_window_s, else 30
-- Verification and decryption need lua-luaossl (Debian: apt-get install lua-luaossl). Without
-- it the dissector shows headers only and says so in the tree. docs/wireshark.md has the rest.

local nomq = Proto("nomq", "NoMQ")

---------------------------------------------------------------------------------------------
-- Optional crypto (lua-luaossl)
---------------------------------------------------------------------------------------------
local ossl = { ok = false, why = "" }
do
  local ok_c, cipher = pcall(require, "openssl.cipher")
  local ok_h, hmac = pcall(require, "openssl.hmac")
  local ok_d, digest = pcall(require, "openssl.digest")
  if ok_c and ok_h and ok_d then
    ossl = { ok = true, cipher = cipher, hmac = hmac, digest = digest }
  else
    local err = (not ok_c and cipher) or (not ok_h and hmac) or digest
    ossl.why = (tostring(err):match("^[^\n]*"):gsub(":%s*$", ""))  -- first line: the module
  end
end

local function sha256(data)
  return ossl.digest.new("sha256"):final(data)
end

local function hmac_sha256(key, data)
  return ossl.hmac.new(key, "sha256"):final(data)
end

-- AES-256-CBC without padding (PKCS#7 is checked by hand so that a bad pad has its own verdict).
local function aes256cbc_decrypt(key, iv, data)
  local c = ossl.cipher.new("AES-256-CBC")
  c:decrypt(key, iv, false)
  return c:final(data)
end

-- Constant time does not matter in a dissector; equality does.
local function tohex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function fromhex(s)
  if type(s) ~= "string" or #s % 2 ~= 0 or s:find("[^0-9a-fA-F]") then return nil end
  return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

---------------------------------------------------------------------------------------------
-- Config files: our JSON format and the original's base64(IV || AES-256-CBC(JSON))
---------------------------------------------------------------------------------------------

-- A strict JSON reader. Wireshark's Lua has none and a config is a flat object; this keeps the
-- dissector's only dependency lua-luaossl (docs/wireshark.md, "What is hand-written").
local json_null = setmetatable({}, { __tostring = function() return "null" end })

local function json_decode(text)
  local pos = 1
  local function fail(msg) error(string.format("not valid JSON: %s at byte %d", msg, pos), 0) end
  local function ws() pos = text:find("[^ \t\r\n]", pos) or (#text + 1) end
  local value
  local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
                    r = "\r", t = "\t" }
  local function utf8_char(cp)
    if cp < 0x80 then return string.char(cp) end
    if cp < 0x800 then
      return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64)
    end
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64,
                       0x80 + cp % 64)
  end
  local function str()
    pos = pos + 1
    local out = {}
    while true do
      local c = text:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then pos = pos + 1; return table.concat(out) end
      if c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        if e == "u" then
          local h = text:sub(pos + 2, pos + 5)
          if not h:match("^%x%x%x%x$") then fail("bad \\u escape") end
          out[#out + 1] = utf8_char(tonumber(h, 16))
          pos = pos + 6
        elseif escapes[e] then
          out[#out + 1] = escapes[e]
          pos = pos + 2
        else
          fail("bad escape")
        end
      elseif c:byte() < 0x20 then
        fail("control character in string")
      else
        out[#out + 1] = c
        pos = pos + 1
      end
    end
  end
  function value()
    ws()
    local c = text:sub(pos, pos)
    if c == "{" then
      local obj = {}
      pos = pos + 1
      ws()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return obj end
      while true do
        ws()
        if text:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        ws()
        if text:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        if obj[k] ~= nil then fail("key \"" .. k .. "\" appears twice") end
        obj[k] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local arr = {}
      pos = pos + 1
      ws()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return arr end
      while true do
        arr[#arr + 1] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return arr end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    else
      local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if num and #num > 0 then pos = pos + #num; return tonumber(num) end
      for lit, v in pairs({ ["true"] = true, ["false"] = false, ["null"] = json_null }) do
        if text:sub(pos, pos + #lit - 1) == lit then pos = pos + #lit; return v end
      end
      fail("unexpected character")
    end
  end
  local v = value()
  ws()
  if pos <= #text then fail("trailing characters") end
  return v
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64_decode(s)
  if #s == 0 or #s % 4 ~= 0 or not s:match("^[A-Za-z0-9+/]*=?=?$") then return nil end
  local pad = #s:match("=*$")
  local out = {}
  for i = 1, #s, 4 do
    local n = 0
    for j = 0, 3 do
      local c = s:sub(i + j, i + j)
      n = n * 64 + (c == "=" and 0 or (B64:find(c, 1, true) - 1))
    end
    out[#out + 1] = string.char(math.floor(n / 65536), math.floor(n / 256) % 256, n % 256)
  end
  local raw = table.concat(out)
  return raw:sub(1, #raw - pad)
end

local function pkcs7_unpad(data)
  local n = #data
  if n == 0 or n % 16 ~= 0 then return nil end
  local pad = data:byte(n)
  if pad < 1 or pad > 16 then return nil end
  for i = n - pad + 1, n do
    if data:byte(i) ~= pad then return nil end
  end
  return data:sub(1, n - pad), pad
end

-- The original's container (LEGACY-WIRE-FORMAT.md §10; src/config/legacy_config.cpp).
local function legacy_unwrap(text)
  local raw = base64_decode(text)
  if not raw then return nil, "neither a JSON config (no '{') nor the original's format (not base64)" end
  if #raw < 32 or #raw % 16 ~= 0 then
    return nil, "invalid encrypted config data length: " .. #raw .. " bytes after base64"
  end
  local plain = pkcs7_unpad(aes256cbc_decrypt(sha256("nomq_config_key"), raw:sub(1, 16), raw:sub(17)))
  if not plain then return nil, "incorrect padding in config data (not PKCS#7)" end
  return plain
end

-- Reads one config file. Returns {name, format, wire, epoch, window, encryption_key, hmac_key}
-- (keys as 32-byte strings) or nil and a one-line reason.
local function read_config(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot open: " .. tostring(err) end
  local text = f:read("*a")
  f:close()
  text = text:match("^%s*(.-)%s*$")
  local format, json_text = "json", text
  if text:sub(1, 1) ~= "{" then
    if not ossl.ok then return nil, "the original's format needs lua-luaossl to decode" end
    format = "legacy"
    local plain, why = legacy_unwrap(text)
    if not plain then return nil, why end
    json_text = plain
  end
  local ok, obj = pcall(json_decode, json_text)
  if not ok then return nil, obj end
  if type(obj) ~= "table" then return nil, "not a JSON object" end
  local cfg = { name = path:match("[^/\\]*$"), format = format }
  if format == "json" and obj.master_secret ~= nil then
    -- The master-secret form: every key derived (docs/protocol.md, key schedule).
    if not ossl.ok then return nil, "master_secret: deriving keys needs lua-luaossl" end
    cfg.master_secret = fromhex(obj.master_secret)
    if not cfg.master_secret or #cfg.master_secret ~= 32 then
      return nil, "master_secret: must be 64 hex digits (32 bytes)"
    end
    cfg.group_id = obj.group_id or ""
    if type(cfg.group_id) ~= "string" or #cfg.group_id > 64 then
      return nil, "group_id: must be a string of at most 64 bytes"
    end
    cfg.key_epoch = tonumber(obj.key_epoch or 0)
    if not cfg.key_epoch or cfg.key_epoch < 0 or cfg.key_epoch > 4294967295 or cfg.key_epoch % 1 ~= 0 then
      return nil, "key_epoch: must be an integer in 0..4294967295"
    end
  else
    for _, k in ipairs({ "encryption_key", "hmac_key" }) do
      local v = obj[k]
      if v == nil then return nil, k .. ": missing (64 hex digits, 32 bytes)" end
      cfg[k] = fromhex(v)
      if not cfg[k] or #cfg[k] ~= 32 then return nil, k .. ": must be 64 hex digits (32 bytes)" end
    end
  end
  cfg.wire = format == "legacy" and "v1" or (obj.wire or "v2")
  local epoch = tonumber(obj.epoch or 1970)
  if format == "json" and epoch ~= 1970 and epoch ~= 2000 then
    return nil, "epoch: must be 1970 or 2000"
  end
  cfg.epoch = format == "legacy" and nil or epoch
  cfg.window = format == "json" and tonumber(obj.timestamp_window_s) or nil
  return cfg
end

-- RFC 5869 HKDF-SHA256 for one 32-byte block (all the key schedule needs).
local function hkdf_sha256_32(salt, ikm, info)
  local prk = hmac_sha256(salt, ikm)
  return hmac_sha256(prk, info .. "\1")
end

-- The key schedule (docs/protocol.md section 13): key = HKDF-SHA256(salt "NoMQ-HKDF-SHA256",
-- IKM master_secret, info label || 00 || wire || key_epoch u32 BE || group_id).
local function derive_key(cfg, label, version)
  local e = cfg.key_epoch
  local epoch = string.char(math.floor(e / 16777216) % 256, math.floor(e / 65536) % 256,
                            math.floor(e / 256) % 256, e % 256)
  local info = label .. "\0" .. string.char(version) .. epoch .. cfg.group_id
  return hkdf_sha256_32("NoMQ-HKDF-SHA256", cfg.master_secret, info)
end

-- Every key set a packet of `version` may be protected with under `cfg`. Verification tries
-- each in turn and decryption uses the one whose MAC verified. A raw config's two keys serve
-- both versions as given; a master-secret config has keys derived per wire version (and key
-- epoch), computed once per version and kept.
local function wire_key_sets(cfg, version)
  if not cfg.master_secret then
    return { { label = cfg.name, enc = cfg.encryption_key, mac = cfg.hmac_key, cfg = cfg } }
  end
  cfg.derived = cfg.derived or {}
  if not cfg.derived[version] then
    cfg.derived[version] = { { label = cfg.name, enc = derive_key(cfg, "nomq encryption", version),
                               mac = derive_key(cfg, "nomq mac", version), cfg = cfg } }
  end
  return cfg.derived[version]
end

local keys = { configs = {}, errors = {} }

local function load_configs(spec)
  keys = { configs = {}, errors = {} }
  for path in (spec or ""):gmatch("[^;]+") do
    path = path:match("^%s*(.-)%s*$")
    if path ~= "" then
      local cfg, why = read_config(path)
      if cfg then
        keys.configs[#keys.configs + 1] = cfg
      else
        keys.errors[#keys.errors + 1] = path .. ": " .. why
      end
    end
  end
end

---------------------------------------------------------------------------------------------
-- Fields
---------------------------------------------------------------------------------------------
local TYPES = { [1] = "PUBLISH", [2] = "SUBSCRIBE", [3] = "ACK", [4] = "UNSUBSCRIBE",
                [5] = "HEARTBEAT", [6] = "PUBREC", [7] = "PUBREL", [8] = "PUBCOMP" }
local QOS = { [0] = "At most once", [1] = "At least once", [2] = "Exactly once", [3] = "Reserved" }
local MAC_STATUS = { [0] = "Bad", [1] = "Good", [2] = "Unverified" }

local F = {
  magic = ProtoField.string("nomq.magic", "Magic"),
  version = ProtoField.uint8("nomq.version", "Version", base.DEC),
  type = ProtoField.uint8("nomq.type", "Type", base.DEC, TYPES),
  flags = ProtoField.uint8("nomq.flags", "Flags", base.HEX),
  qos = ProtoField.uint8("nomq.qos", "QoS", base.DEC, QOS),
  retain = ProtoField.bool("nomq.retain", "Retain"),
  priority = ProtoField.uint8("nomq.priority", "Priority", base.DEC),
  want_retained = ProtoField.bool("nomq.want_retained", "Want retained"),
  solicit = ProtoField.bool("nomq.solicit", "Solicit"),
  channel_key = ProtoField.bool("nomq.channel_key", "Sealed with a channel key (docs/protocol.md 14.4)"),
  packet_id = ProtoField.uint32("nomq.packet_id", "Packet ID", base.DEC_HEX),
  seq = ProtoField.uint32("nomq.seq", "Sequence number", base.DEC),
  session = ProtoField.uint32("nomq.session", "Session", base.HEX),
  ttl = ProtoField.uint16("nomq.ttl", "TTL (s)", base.DEC),
  iv = ProtoField.bytes("nomq.iv", "IV"),
  timestamp = ProtoField.absolute_time("nomq.timestamp", "Timestamp", base.UTC),
  timestamp_raw = ProtoField.uint32("nomq.timestamp_raw", "Timestamp (wire seconds)", base.DEC),
  timestamp_epoch = ProtoField.uint16("nomq.timestamp_epoch", "Epoch", base.DEC),
  timestamp_delta = ProtoField.relative_time("nomq.timestamp_delta",
                                             "Sender clock minus capture time"),
  channel_id = ProtoField.bytes("nomq.channel_id", "Channel ID"),
  length = ProtoField.uint16("nomq.length", "Length", base.DEC),
  payload_iv = ProtoField.bytes("nomq.payload_iv", "IV (payload copy)"),
  ciphertext = ProtoField.bytes("nomq.ciphertext", "Ciphertext"),
  mac = ProtoField.bytes("nomq.mac", "MAC"),
  mac_status = ProtoField.uint8("nomq.mac_status", "MAC status", base.DEC, MAC_STATUS),
  mac_expected = ProtoField.bytes("nomq.mac_expected", "MAC expected"),
  key_set = ProtoField.string("nomq.key_set", "Verified with"),
  plaintext = ProtoField.bytes("nomq.plaintext", "Plaintext"),
  padding = ProtoField.uint8("nomq.padding", "PKCS#7 padding bytes", base.DEC),
  message_id = ProtoField.uint32("nomq.message_id", "Message ID", base.DEC_HEX),
  acked_id = ProtoField.uint32("nomq.acked_id", "Acknowledged ID", base.DEC_HEX),
  channel_len = ProtoField.uint8("nomq.channel_len", "Channel name length", base.DEC),
  channel = ProtoField.string("nomq.channel", "Channel", base.UNICODE),
  channel_id_ok = ProtoField.bool("nomq.channel_id_ok", "Channel ID matches SHA-256(channel)"),
  inner_timestamp = ProtoField.uint64("nomq.inner_timestamp", "Inner timestamp", base.DEC),
  msg_len = ProtoField.uint32("nomq.msg_len", "Message length", base.DEC),
  layout = ProtoField.string("nomq.layout", "Inner layout"),
  gap = ProtoField.bytes("nomq.gap", "Gap"),
  message = ProtoField.string("nomq.message", "Message", base.UNICODE),
  message_bytes = ProtoField.bytes("nomq.message_bytes", "Message (bytes)"),
  response_to = ProtoField.framenum("nomq.response_to", "Response to", base.NONE, frametype.REQUEST),
  response_in = ProtoField.framenum("nomq.response_in", "Response in", base.NONE, frametype.RESPONSE),
  response_time = ProtoField.relative_time("nomq.response_time", "Response time"),
  qos2_step = ProtoField.uint8("nomq.qos2.step", "QoS 2 step", base.DEC),
  qos2_publish = ProtoField.framenum("nomq.qos2.publish", "QoS 2 PUBLISH in", base.NONE,
                                     frametype.REQUEST),
  qos2_total = ProtoField.relative_time("nomq.qos2.time", "QoS 2 time since PUBLISH"),
  replay_of = ProtoField.framenum("nomq.replay_of", "First seen in", base.NONE, frametype.DUP_ACK),
}
local field_list = {}
for _, f in pairs(F) do field_list[#field_list + 1] = f end
nomq.fields = field_list

local E = {
  malformed = ProtoExpert.new("nomq.malformed", "Malformed NoMQ datagram", expert.group.MALFORMED,
                              expert.severity.ERROR),
  unknown_type = ProtoExpert.new("nomq.unknown_type", "Unknown packet type",
                                 expert.group.PROTOCOL, expert.severity.WARN),
  mac_bad = ProtoExpert.new("nomq.mac_bad", "Bad MAC", expert.group.CHECKSUM, expert.severity.ERROR),
  no_crypto = ProtoExpert.new("nomq.no_crypto", "Header only: lua-luaossl is missing",
                              expert.group.UNDECODED, expert.severity.NOTE),
  config_error = ProtoExpert.new("nomq.config_error", "NoMQ config file not usable",
                                 expert.group.UNDECODED, expert.severity.WARN),
  bad_padding = ProtoExpert.new("nomq.bad_padding", "Bad PKCS#7 padding", expert.group.MALFORMED,
                                expert.severity.ERROR),
  bad_body = ProtoExpert.new("nomq.bad_body", "Malformed decrypted body", expert.group.MALFORMED,
                             expert.severity.ERROR),
  channel_mismatch = ProtoExpert.new("nomq.channel_mismatch",
                                     "Channel ID is not SHA-256(channel name)[0:16]",
                                     expert.group.PROTOCOL, expert.severity.WARN),
  ts_stale = ProtoExpert.new("nomq.timestamp_stale", "Stale timestamp", expert.group.SEQUENCE,
                             expert.severity.WARN),
  ts_future = ProtoExpert.new("nomq.timestamp_future", "Timestamp in the future",
                              expert.group.SEQUENCE, expert.severity.WARN),
  replay = ProtoExpert.new("nomq.replay", "Replayed sequence number", expert.group.SEQUENCE,
                           expert.severity.WARN),
  nonce_repeat = ProtoExpert.new("nomq.nonce_repeat", "Repeated v1 nonce", expert.group.SEQUENCE,
                                 expert.severity.WARN),
  qos2 = ProtoExpert.new("nomq.qos2", "QoS 2 handshake", expert.group.SEQUENCE,
                         expert.severity.CHAT),
  qos2_complete = ProtoExpert.new("nomq.qos2_complete", "QoS 2 handshake complete",
                                  expert.group.SEQUENCE, expert.severity.NOTE),
  unanswered = ProtoExpert.new("nomq.no_request", "Reply without its request in the capture",
                               expert.group.SEQUENCE, expert.severity.NOTE),
}
nomq.experts = { E.malformed, E.unknown_type, E.mac_bad, E.no_crypto, E.config_error,
                 E.bad_padding, E.bad_body, E.channel_mismatch, E.ts_stale, E.ts_future, E.replay,
                 E.nonce_repeat, E.qos2, E.qos2_complete, E.unanswered }

---------------------------------------------------------------------------------------------
-- Preferences
---------------------------------------------------------------------------------------------
local EPOCHS = { { 1, "auto", 0 }, { 2, "1970", 1970 }, { 3, "2000", 2000 } }
nomq.prefs.port = Pref.uint("UDP port", 8888, "UDP port always dissected as NoMQ (the group "
  .. "port); datagrams on other ports starting with \"NM\" and version 1 or 2 are found heuristically")
nomq.prefs.heuristic = Pref.bool("Find NoMQ on any UDP port", true, "Dissect every UDP datagram "
  .. "that starts with \"NM\" and version 1 or 2 as NoMQ (the nodes' replies travel between their "
  .. "own unicast ports)")
nomq.prefs.config = Pref.string("Config file(s)", "", "NoMQ config file(s) whose keys verify and "
  .. "decrypt packets, separated by ';': JSON, or the original's nomq_config.json")
nomq.prefs.epoch = Pref.enum("Timestamp epoch", 0, "Epoch of the wire "
  .. "timestamps: auto (the config file's, else 1970), 1970 (Unix) or 2000 (ESP32/ESP8266 "
  .. "MicroPython)", EPOCHS, false)
nomq.prefs.window = Pref.uint("Timestamp window (s)", 0, "Timestamps further than this from the "
  .. "capture time are flagged; 0: the config's timestamp_window_s, else 30")
nomq.prefs.info = Pref.statictext(ossl.ok and "Crypto: lua-luaossl loaded"
  or ("Crypto: lua-luaossl not found (" .. ossl.why .. "): headers only"))

local registered_port = nil
local function register_port()
  local udp = DissectorTable.get("udp.port")
  if registered_port then udp:remove(registered_port, nomq) end
  registered_port = nomq.prefs.port
  if registered_port ~= 0 then udp:add(registered_port, nomq) end
end

---------------------------------------------------------------------------------------------
-- Per-capture state (filled on the first pass, keyed by frame number, read on every pass)
---------------------------------------------------------------------------------------------
local st

function nomq.init()
  load_configs(nomq.prefs.config)
  st = {
    first_seq = {},    -- "session:seq" (v2) -> first frame
    first_nonce = {},  -- "session:nonce" (v1 PUBLISH) -> first frame
    last_req = {},     -- link key -> latest request frame
    frame = {},        -- frame -> { time, request, publish, response }
  }
end

function nomq.prefs_changed()
  register_port()
  load_configs(nomq.prefs.config)
end

local function epoch_offset(cfg)
  local e = nomq.prefs.epoch
  if e == 0 then e = (cfg and cfg.epoch) or (keys.configs[1] and keys.configs[1].epoch) or 1970 end
  return e == 2000 and 946684800 or 0, e
end

local function time_window(cfg)
  if nomq.prefs.window ~= 0 then return nomq.prefs.window end
  return (cfg and cfg.window) or (keys.configs[1] and keys.configs[1].window) or 30
end

---------------------------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------------------------

-- Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
local function valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, min
    if c < 0x80 then len, min = 1, 0
    elseif c >= 0xC2 and c <= 0xDF then len, min = 2, 0x80
    elseif c >= 0xE0 and c <= 0xEF then len, min = 3, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then len, min = 4, 0x10000
    else return false end
    if i + len - 1 > n then return false end
    local cp = len == 1 and c or (c % (2 ^ (7 - len)))
    for j = i + 1, i + len - 1 do
      local b = s:byte(j)
      if b < 0x80 or b > 0xBF then return false end
      cp = cp * 64 + (b - 0x80)
    end
    if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return false end
    i = i + len
  end
  return true
end

-- NSTime from seconds; for a negative time both parts are negative, as Wireshark expects.
local function nstime(seconds)
  local sign = seconds < 0 and -1 or 1
  local a = math.abs(seconds)
  local s = math.floor(a)
  local ns = math.floor((a - s) * 1e9 + 0.5)
  if ns >= 1e9 then s, ns = s + 1, ns - 1e9 end
  return NSTime(sign * s, sign * ns)
end

local function frame_state(n)
  local f = st.frame[n]
  if not f then f = {}; st.frame[n] = f end
  return f
end

-- Tries every key set on the bytes before the MAC. Returns "good", key set | "bad", expected
-- MAC under the first key set | "unverified", reason.
local function verify(version, signed, mac)
  if not ossl.ok then return "unverified", "lua-luaossl is missing" end
  if #keys.configs == 0 then
    return "unverified", #keys.errors > 0 and "config file not usable" or "no keys (preference nomq.config)"
  end
  local expected
  for _, cfg in ipairs(keys.configs) do
    for _, ks in ipairs(wire_key_sets(cfg, version)) do
      local m = version == 2 and hmac_sha256(ks.mac, signed) or sha256(signed .. ks.mac)
      if m == mac then return "good", ks end
      expected = expected or m
    end
  end
  return "bad", expected
end

---------------------------------------------------------------------------------------------
-- QoS 1/2 exchanges: PUBLISH -> ACK, and PUBLISH -> PUBREC -> PUBREL -> PUBCOMP
---------------------------------------------------------------------------------------------
-- The publisher is the source of PUBLISH and PUBREL and the destination of ACK, PUBREC and
-- PUBCOMP. A v1 exchange shares the header packet id; a v2 one shares the message id inside the
-- ciphertext (so it needs the keys). Each step links to the latest earlier step it answers.
local STEP = { [1] = 1, [3] = 2, [6] = 2, [7] = 3, [8] = 4 }

local function follow_exchange(ptype, id, qos, pinfo, tree)
  local src = tostring(pinfo.src) .. ":" .. pinfo.src_port
  local dst = tostring(pinfo.dst) .. ":" .. pinfo.dst_port
  local n = pinfo.number
  local step = STEP[ptype]
  if not step or id == nil then return end
  if step == 1 and qos == 0 then return end
  if not pinfo.visited then
    local f = frame_state(n)
    f.time = pinfo.abs_ts
    local pub, sub = src, dst
    if ptype == 3 or ptype == 6 or ptype == 8 then pub, sub = dst, src end
    local base = pub .. "|" .. id
    local conv = base .. "|" .. sub
    local req
    if step == 1 then
      st.last_req["1|" .. base] = n
    elseif step == 2 then
      req = st.last_req["1|" .. base]
      st.last_req["2|" .. conv] = n
    elseif step == 3 then
      req = st.last_req["2|" .. conv]
      st.last_req["3|" .. conv] = n
    else
      req = st.last_req["3|" .. conv]
    end
    if req then
      f.request = req
      local r = frame_state(req)
      r.response = r.response or n
      f.publish = step == 2 and req or r.publish
    end
  end
  local f = st.frame[n]
  if not f then return end
  local name = TYPES[ptype]
  if f.response then
    tree:add(F.response_in, f.response):set_generated()
  end
  if step == 1 then return end
  local qos2 = ptype ~= 3
  if qos2 then tree:add(F.qos2_step, step):set_generated() end
  if not f.request then
    tree:add_proto_expert_info(E.unanswered, string.format("%s for id %d with no %s before it in the capture",
      name, id, step == 2 and "PUBLISH" or TYPES[ptype - 1]))
    return
  end
  local rt = f.time - st.frame[f.request].time
  tree:add(F.response_to, f.request):set_generated()
  tree:add(F.response_time, nstime(rt)):set_generated()
  if not qos2 then return end
  local total
  if f.publish and st.frame[f.publish] then
    total = f.time - st.frame[f.publish].time
    tree:add(F.qos2_publish, f.publish):set_generated()
    tree:add(F.qos2_total, nstime(total)):set_generated()
  end
  if step == 4 then
    tree:add_proto_expert_info(E.qos2_complete, string.format(
      "QoS 2 complete for id %d: PUBLISH in frame %s, %.3f ms in total", id,
      tostring(f.publish or "?"), (total or rt) * 1000))
  else
    tree:add_proto_expert_info(E.qos2, string.format("QoS 2 step %d/4 (%s) for id %d, answers frame %d after %.3f ms",
      step, name, id, f.request, rt * 1000))
  end
end

---------------------------------------------------------------------------------------------
-- Decrypted bodies
---------------------------------------------------------------------------------------------
local function add_channel(dtree, ptvb, off, len, channel_id_bytes)
  local name = ptvb:raw(off, len)
  local ok_utf8 = valid_utf8(name)
  local item = dtree:add(F.channel, ptvb(off, len), name)
  local cid = sha256(name):sub(1, 16)
  local matches = cid == channel_id_bytes
  dtree:add(F.channel_id_ok, matches):set_generated()
  if not ok_utf8 then item:add_proto_expert_info(E.bad_body, "channel name is not valid UTF-8") end
  if not matches then
    item:add_proto_expert_info(E.channel_mismatch, "header channel id " .. tohex(channel_id_bytes)
      .. " but SHA-256(\"" .. name .. "\")[0:16] = " .. tohex(cid))
  end
  return name
end

local function add_message(dtree, ptvb, off, len)
  local msg = len > 0 and ptvb:raw(off, len) or ""
  local range = len > 0 and ptvb(off, len) or nil
  local item
  if valid_utf8(msg) then
    item = range and dtree:add(F.message, range, msg) or dtree:add(F.message, msg)
  else
    item = dtree:add(F.message_bytes, range)
  end
  return msg, item
end

-- Returns the body summary for the Info column and the id that links QoS exchanges.
-- ptvb is the decrypted tvb, n the body length before padding.
local function dissect_v2_body(ptype, ptvb, n, dtree, channel_id_bytes)
  local function bad(msg) dtree:add_proto_expert_info(E.bad_body, msg) end
  if ptype == 1 then
    if n < 5 then return bad("PUBLISH body of " .. n .. " bytes: at least 5 needed") end
    local mid = ptvb(0, 4):uint()
    dtree:add(F.message_id, ptvb(0, 4))
    local nl = ptvb(4, 1):uint()
    dtree:add(F.channel_len, ptvb(4, 1))
    if nl == 0 or 5 + nl > n then return bad("channel name length " .. nl .. " does not fit") end
    local name = add_channel(dtree, ptvb, 5, nl, channel_id_bytes)
    local msg = add_message(dtree, ptvb, 5 + nl, n - 5 - nl)
    return string.format(" id=%d ch=%s len=%d", mid, name, #msg), mid, name, msg
  elseif ptype == 2 or ptype == 4 then
    if n < 1 then return bad("empty body: a channel name is needed") end
    local nl = ptvb(0, 1):uint()
    dtree:add(F.channel_len, ptvb(0, 1))
    if nl == 0 or 1 + nl ~= n then return bad("channel name length " .. nl .. " but body of " .. n .. " bytes") end
    local name = add_channel(dtree, ptvb, 1, nl, channel_id_bytes)
    return " ch=" .. name
  elseif ptype == 5 then
    if n ~= 0 then bad("HEARTBEAT body of " .. n .. " bytes: must be empty") end
    return ""
  elseif STEP[ptype] then
    if n ~= 4 then return bad(TYPES[ptype] .. " body of " .. n .. " bytes: must be 4") end
    local id = ptvb(0, 4):uint()
    dtree:add(F.acked_id, ptvb(0, 4))
    return " acked=" .. id, id
  end
  return ""
end

local function dissect_v1_body(ptype, ptvb, n, dtree, channel_id_bytes)
  local function bad(msg) dtree:add_proto_expert_info(E.bad_body, msg) end
  if ptype == 1 then
    if n < 16 then return bad("PUBLISH plaintext of " .. n .. " bytes: the inner header needs 16") end
    dtree:add(F.inner_timestamp, ptvb(0, 8))
    local nonce = ptvb(8, 4):uint()
    dtree:add(F.message_id, ptvb(8, 4)):append_text(" (nonce)")
    local ml = ptvb(12, 4):uint()
    dtree:add(F.msg_len, ptvb(12, 4))
    local at
    if n >= 20 and ml <= n - 20 then
      at = 20
      dtree:add(F.layout, "gap20"):set_generated()
      dtree:add(F.gap, ptvb(16, 4))
    elseif n == 16 + ml then
      at = 16
      dtree:add(F.layout, "device16"):set_generated()
    else
      return bad("message length " .. ml .. " fits neither layout (plaintext " .. n .. " bytes)")
    end
    local msg, item = add_message(dtree, ptvb, at, ml)
    if not valid_utf8(msg) then item:add_proto_expert_info(E.bad_body, "v1 message is not UTF-8") end
    return string.format(" nonce=%d len=%d", nonce, ml), nonce, nil, msg
  elseif ptype == 2 or ptype == 4 then
    if n == 0 then return "" end
    local name = add_channel(dtree, ptvb, 0, n, channel_id_bytes)
    return " ch=" .. name
  elseif ptype == 5 then
    return ""
  elseif STEP[ptype] then
    if n < 4 then return bad(TYPES[ptype] .. " plaintext of " .. n .. " bytes: 4 needed") end
    dtree:add(F.acked_id, ptvb(0, 4))
    return " acked=" .. ptvb(0, 4):uint()
  end
  return ""
end

---------------------------------------------------------------------------------------------
-- The dissector
---------------------------------------------------------------------------------------------
local HDR = 53
local MACLEN = 32

local function dissect(tvb, pinfo, tree)
  local len = tvb:len()
  if len < 3 or tvb(0, 2):uint() ~= 0x4E4D then return 0 end
  local version = tvb(2, 1):uint()
  if version ~= 1 and version ~= 2 then return 0 end
  if not st then nomq.init() end

  pinfo.cols.protocol = "NoMQ"
  local root = tree:add(nomq, tvb())
  root:add(F.magic, tvb(0, 2))
  root:add(F.version, tvb(2, 1))
  local ptype = len >= 4 and tvb(3, 1):uint() or nil
  local tname = ptype and (TYPES[ptype] or string.format("Unknown (%d)", ptype)) or "?"
  root:append_text(string.format(" v%d, %s", version, tname))
  local info = { string.format("v%d %s", version, tname) }
  pinfo.cols.info = info[1]

  if len < HDR then
    if ptype then root:add(F.type, tvb(3, 1)) end
    root:add_proto_expert_info(E.malformed, string.format("truncated: %d bytes, the header alone is %d", len, HDR))
    pinfo.cols.info:append(" [truncated]")
    return len
  end

  -- Header
  local type_item = root:add(F.type, tvb(3, 1))
  if not TYPES[ptype] then type_item:add_proto_expert_info(E.unknown_type) end
  local flags = tvb(4, 1):uint()
  local ftree = root:add(F.flags, tvb(4, 1))
  local qos
  if ptype == 1 then
    qos = flags % 4
    ftree:add(F.qos, tvb(4, 1), qos)
    ftree:add(F.retain, tvb(4, 1), math.floor(flags / 4) % 2 == 1)
    ftree:add(F.priority, tvb(4, 1), math.floor(flags / 16))
    info[#info + 1] = string.format("QoS %d", qos)
    if math.floor(flags / 4) % 2 == 1 then info[#info + 1] = "retain" end
  elseif ptype == 2 and version == 2 then
    ftree:add(F.want_retained, tvb(4, 1), math.floor(flags / 8) % 2 == 1)
    ftree:add(F.priority, tvb(4, 1), math.floor(flags / 16))
  elseif ptype == 2 then
    ftree:add(F.priority, tvb(4, 1), flags % 16):append_text(" (v1: low nibble)")
  elseif ptype == 5 and version == 2 then
    ftree:add(F.solicit, tvb(4, 1), math.floor(flags / 8) % 2 == 1)
  elseif ptype == 3 and version == 1 then
    ftree:add(F.qos, tvb(4, 1), flags % 4)
  elseif STEP[ptype] and version == 2 then
    -- NoMQ's v2 replies carry the answered PUBLISH's priority (src/core/engine.cpp send_reply)
    ftree:add(F.priority, tvb(4, 1), math.floor(flags / 16))
  end
  -- v2 per-channel keys: SUBSCRIBE bit 2, the other named/answer types bit 3 (never HEARTBEAT).
  -- Such a datagram is sealed with a channel key, not the group's: its MAC does not verify here.
  if version == 2 and ptype ~= 5 and TYPES[ptype] then
    local bit = (ptype == 2) and 4 or 8
    if math.floor(flags / bit) % 2 == 1 then
      ftree:add(F.channel_key, tvb(4, 1), true)
      info[#info + 1] = "channel key"
    end
  end
  local pid = tvb(5, 4):uint()
  local session = tvb(9, 4):uint()
  if version == 2 then
    root:add(F.seq, tvb(5, 4))
    root:add(F.packet_id, tvb(5, 4)):set_hidden()
    info[#info + 1] = "seq=" .. pid
  else
    root:add(F.packet_id, tvb(5, 4))
    info[#info + 1] = "id=" .. pid
  end
  root:add(F.session, tvb(9, 4))
  info[#info + 1] = string.format("session=0x%08x", session)
  root:add(F.ttl, tvb(13, 2))
  root:add(F.iv, tvb(15, 16))
  local L = tvb(51, 2):uint()

  -- Layout and MAC position
  local body_end = HDR + L
  local ct_off = version == 2 and HDR or HDR + 16
  local layout_ok = true
  local why
  if version == 2 then
    if HDR + L + MACLEN ~= len then
      layout_ok, why = false, string.format("length %d: datagram should be %d bytes, is %d", L, HDR + L + MACLEN, len)
    elseif L == 0 or L % 16 ~= 0 then
      layout_ok, why = false, string.format("ciphertext length %d is not a non-zero multiple of 16", L)
    end
  else
    if L < 16 or len < HDR + L + MACLEN then
      layout_ok, why = false, string.format("length %d: datagram should be %d bytes, is %d", L, HDR + L + MACLEN, len)
    end
  end
  -- v1: the MAC field is everything after the payload, so a datagram with bytes appended fails
  -- verification, as with the original (LEGACY-WIRE-FORMAT.md §3).
  local mac_len = version == 1 and layout_ok and len - body_end or MACLEN

  local status, detail = "unverified", nil
  if layout_ok and mac_len ~= MACLEN then
    status, detail = "bad", nil
  elseif layout_ok then
    status, detail = verify(version, tvb:raw(0, body_end), tvb:raw(body_end, MACLEN))
  end
  local cfg = status == "good" and detail.cfg or nil
  local offset, epoch = epoch_offset(cfg)

  -- Timestamp
  local ts_raw = tvb(31, 4):uint()
  local sent = ts_raw + offset
  -- The timestamp is added only now, once verification has told which config (and epoch) applies.
  local ts_item = root:add(F.timestamp, tvb(31, 4), NSTime(sent, 0))
  ts_item:add(F.timestamp_raw, tvb(31, 4))
  ts_item:add(F.timestamp_epoch, tvb(31, 4), epoch):set_generated()
  local delta = sent - pinfo.abs_ts
  ts_item:add(F.timestamp_delta, tvb(31, 4), nstime(delta)):set_generated()
  local window = time_window(cfg)
  if delta < -window then
    ts_item:add_proto_expert_info(E.ts_stale, string.format(
      "timestamp %.1f s before the capture time (window %d s): receivers drop it as stale", -delta, window))
  elseif delta > window then
    ts_item:add_proto_expert_info(E.ts_future, string.format(
      "timestamp %.1f s after the capture time (window %d s): receivers drop it as stale", delta, window))
  end
  local channel_id_bytes = tvb:raw(35, 16)
  root:add(F.channel_id, tvb(35, 16))
  root:add(F.length, tvb(51, 2))

  -- Replay of a v2 sequence number, per session, within the capture
  if version == 2 then
    local key = session .. ":" .. pid
    if not pinfo.visited and not st.first_seq[key] then st.first_seq[key] = pinfo.number end
    local first = st.first_seq[key]
    if first and first ~= pinfo.number then
      root:add(F.replay_of, tvb(5, 4), first)
      root:add_proto_expert_info(E.replay, string.format(
        "sequence number %d of session 0x%08x already seen in frame %d%s", pid, session, first,
        status == "good" and "" or " (MAC not verified)"))
      info[#info + 1] = "[replay]"
    end
  end

  if not layout_ok then
    root:add_proto_expert_info(E.malformed, why)
    local avail = len - ct_off
    if version == 1 and len >= HDR + 16 then root:add(F.payload_iv, tvb(HDR, 16)) end
    if avail > 0 then root:add(F.ciphertext, tvb(ct_off, avail)) end
    pinfo.cols.info = table.concat(info, " ") .. " [malformed]"
    return len
  end

  if version == 1 then root:add(F.payload_iv, tvb(HDR, 16)) end
  if body_end > ct_off then root:add(F.ciphertext, tvb(ct_off, body_end - ct_off)) end
  local mac_item = root:add(F.mac, tvb(body_end, mac_len))
  local code = status == "good" and 1 or status == "bad" and 0 or 2
  mac_item:add(F.mac_status, tvb(body_end, mac_len), code):set_generated()
  if status == "good" then
    mac_item:append_text(" [good]")
    mac_item:add(F.key_set, detail.label):set_generated()
  elseif status == "bad" then
    mac_item:append_text(" [bad]")
    if detail then
      mac_item:add(F.mac_expected, tvb(body_end, mac_len), detail):set_generated()
      mac_item:add_proto_expert_info(E.mac_bad, "bad MAC: not made with the configured keys (or altered)")
    else
      mac_item:add_proto_expert_info(E.mac_bad, string.format(
        "bad MAC: the MAC field is %d bytes, not 32 (bytes appended after the MAC?)", mac_len))
    end
    info[#info + 1] = "[bad MAC]"
  else
    mac_item:append_text(" [unverified: " .. detail .. "]")
    if not ossl.ok and (#keys.configs > 0 or #keys.errors > 0) then
      root:add_proto_expert_info(E.no_crypto, "header only: lua-luaossl not found (" .. ossl.why
        .. "); install it (apt-get install lua-luaossl) to verify and decrypt")
    end
    for _, e in ipairs(keys.errors) do root:add_proto_expert_info(E.config_error, e) end
  end

  -- Decryption (only of authenticated bytes, as a receiver does)
  local id_for_link = version == 1 and STEP[ptype] and pid or nil
  if status == "good" then
    local ct = tvb:raw(ct_off, body_end - ct_off)
    if #ct == 0 or #ct % 16 ~= 0 then
      root:add_proto_expert_info(E.malformed, string.format("ciphertext of %d bytes is not a non-zero multiple of 16", #ct))
    else
      local iv = version == 2 and tvb:raw(15, 16) or tvb:raw(HDR, 16)
      local padded = aes256cbc_decrypt(detail.enc, iv, ct)
      local plain, pad = pkcs7_unpad(padded)
      local ptvb = ByteArray.new(tohex(padded)):tvb("Decrypted NoMQ payload")
      local dtree = root:add(F.plaintext, ptvb())
      dtree:set_text("Decrypted payload (" .. (plain and #plain or #padded) .. " bytes)")
      if not plain then
        dtree:add_proto_expert_info(E.bad_padding, "bad PKCS#7 padding: last byte " .. padded:byte(#padded))
      else
        dtree:add(F.padding, ptvb(#plain, pad), pad)
        local summary, id, name, msg
        if version == 2 then
          summary, id, name, msg = dissect_v2_body(ptype, ptvb, #plain, dtree, channel_id_bytes)
          id_for_link = id
        else
          summary, id, name, msg = dissect_v1_body(ptype, ptvb, #plain, dtree, channel_id_bytes)
          if ptype == 1 and id then
            local key = session .. ":" .. id
            if not pinfo.visited and not st.first_nonce[key] then st.first_nonce[key] = pinfo.number end
            local first = st.first_nonce[key]
            if first and first ~= pinfo.number then
              root:add(F.replay_of, tvb(5, 4), first)
              root:add_proto_expert_info(E.nonce_repeat, string.format(
                "nonce %d of session 0x%08x already sent in frame %d: an original receiver drops it as a replay", id, session, first))
            end
          end
        end
        if summary and #summary > 1 then info[#info + 1] = summary:sub(2) end
        if msg and valid_utf8(msg) and #msg > 0 then
          info[#info + 1] = "\"" .. (#msg > 40 and msg:sub(1, 40) .. "..." or msg) .. "\""
        end
      end
    end
  end

  follow_exchange(ptype, id_for_link, qos, pinfo, root)
  pinfo.cols.info = table.concat(info, " ")
  return len
end

function nomq.dissector(tvb, pinfo, tree)
  return dissect(tvb, pinfo, tree)
end

local function heuristic(tvb, pinfo, tree)
  if not nomq.prefs.heuristic or tvb:len() < 3 or tvb(0, 2):uint() ~= 0x4E4D then return false end
  local v = tvb(2, 1):uint()
  if v ~= 1 and v ~= 2 then return false end
  dissect(tvb, pinfo, tree)
  return true
end

nomq:register_heuristic("udp", heuristic)
register_port()
