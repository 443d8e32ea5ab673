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
#include <span>
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
  // One transaction (group commit, docs/bridge.md "Batched commits"): keeps each message of
  // `adds` that fits the bounds, in order, and deletes the rows `removes`. One result per
  // message of `adds`: its row, or queue_full (nothing kept) or io_error (the whole
  // transaction failed: nothing kept, nothing deleted).
  std::vector<Result<std::int64_t>> commit(std::span<const StoredMessage* const> adds,
                                           std::span<const std::int64_t> removes);
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
  std::uint64_t count(Dir dir) const;
  std::uint64_t bytes() const;
  // true if a message of `size` bytes (topic + payload) fits now.
  bool has_room(std::uint64_t size) const;
  std::uint64_t expired_dropped() const;

 private:
  Store() = default;
  Result<void> exec(const char* sql);
  Result<void> step_done(sqlite3_stmt* st, const char* what);
  // The bounds check and the insert of one message (a transaction is open). queue_full or
  // io_error; on success the counters include it.
  Result<std::int64_t> insert_locked(const StoredMessage& m);
  void delete_locked(std::int64_t row);
  bool seen_locked(const std::string& id);
  void mark_locked(const std::string& id);
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* delete_ = nullptr;
  sqlite3_stmt* dedup_find_ = nullptr;
  sqlite3_stmt* dedup_add_ = nullptr;
  sqlite3_stmt* dedup_trim_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* rollback_ = nullptr;
  mutable std::mutex mu_;
  std::uint64_t max_messages_ = 0, max_bytes_ = 0, dedup_entries_ = 0;
  std::uint64_t count_ = 0, bytes_ = 0, expired_ = 0, dedup_adds_ = 0;
  std::uint64_t dir_count_[2] = {0, 0};
};

}  // namespace nomq::bridge
