// The bridge's store-and-forward queue (docs/bridge.md "Store"): QoS 1/2 messages in flight in
// either direction, kept in SQLite (WAL) from the moment the bridge takes them until the other
// side acknowledged them, bounded by count and bytes, expiry honoured; plus the ids of
// messages already bridged in (deduplication across redeliveries). Thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "nomq/error.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace nomq::bridge {

enum class Dir : int { to_mqtt = 0, to_nomq = 1 };

struct StoredMessage {
  std::int64_t row = 0;
  Dir dir = Dir::to_mqtt;
  std::string topic;  // destination name (MQTT topic or NoMQ channel)
  std::string payload;
  int qos = 1;
  bool retain = false;
  int priority = 0;
  std::int64_t expires_us = 0;  // wall clock (Unix microseconds); 0: never
  std::string origin_id;        // "<session hex>-<message id>" of the NoMQ original, or ""
  std::string sender;           // NoMQ sender endpoint text, or ""
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::string& path, std::uint64_t max_messages,
                                             std::uint64_t max_bytes, std::uint64_t dedup_entries);
  ~Store();

  // Keeps `m`, and records `dedup_id` (if not empty) as seen, in one transaction. Errors:
  // duplicate (dedup_id was seen before: nothing kept), queue_full (the count or byte bound;
  // nothing kept), io_error (SQLite's message).
  Result<std::int64_t> add(const StoredMessage& m, const std::string& dedup_id = {});
  void remove(std::int64_t row);
  // Every kept message of `dir`, oldest first, after dropping the expired ones (counted).
  std::vector<StoredMessage> load(Dir dir, std::int64_t now_us);
  // true if `id` was seen before (then nothing changes); else records it (QoS 0 messages).
  bool seen_before(const std::string& id);
  // Small durable values (the bridge's NoMQ session, docs/bridge.md): nullopt when unset.
  std::optional<std::int64_t> meta(const std::string& key);
  // Sets every (key, value) pair in one transaction. Errors: io_error.
  Result<void> set_meta(std::initializer_list<std::pair<const char*, std::int64_t>> values);
  std::uint64_t count() const;
  std::uint64_t bytes() const;
  std::uint64_t expired_dropped() const;

 private:
  Store() = default;
  Result<void> exec(const char* sql);
  bool seen_locked(const std::string& id);
  void mark_locked(const std::string& id);
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* delete_ = nullptr;
  sqlite3_stmt* dedup_find_ = nullptr;
  sqlite3_stmt* dedup_add_ = nullptr;
  sqlite3_stmt* dedup_trim_ = nullptr;
  mutable std::mutex mu_;
  std::uint64_t max_messages_ = 0, max_bytes_ = 0, dedup_entries_ = 0;
  std::uint64_t count_ = 0, bytes_ = 0, expired_ = 0, dedup_adds_ = 0;
};

}  // namespace nomq::bridge
