#include "bridge/bridge_store.hpp"

#include <sqlite3.h>

namespace nomq::bridge {

namespace {
Error sql_error(sqlite3* db, const char* what) {
  return Error{Errc::io_error, "store: ", what, ": ", db ? sqlite3_errmsg(db) : "out of memory"};
}
}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path, std::uint64_t max_messages,
                                           std::uint64_t max_bytes, std::uint64_t dedup_entries) {
  std::unique_ptr<Store> s{new Store()};
  s->max_messages_ = max_messages;
  s->max_bytes_ = max_bytes;
  s->dedup_entries_ = dedup_entries;
  // One connection, used under mu_ only: SQLite's own mutexes are not needed.
  if (sqlite3_open_v2(path.c_str(), &s->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                                 SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    Error e{Errc::io_error, "store ", path, ": ", s->db_ ? sqlite3_errmsg(s->db_) : "cannot open"};
    return e;
  }
  sqlite3_busy_timeout(s->db_, 1000);  // only another process contends (a second bridge)
  // Durability (docs/bridge.md "Store-and-forward"):
  // * WAL: a commit is an append to the log (one write() per page), no rollback journal.
  // * synchronous=NORMAL: the log is fsync'ed at checkpoints, not at each commit. A commit is
  //   in the kernel once write() returned, so it survives the bridge process dying (SIGKILL
  //   included); the last commits before a power loss or kernel crash may be rolled back (the
  //   database stays consistent). synchronous=FULL would keep them too, at one fsync per commit.
  // * locking_mode=EXCLUSIVE: one process owns the store. SQLite takes its file locks once and
  //   keeps them, instead of fcntl() lock/unlock pairs around every transaction (17 % of the
  //   bridge's time in the profile), and the WAL index lives in the heap, not in a shared
  //   -shm mapping. A second bridge on the same file is refused ("database is locked").
  for (const char* sql : {"PRAGMA locking_mode=EXCLUSIVE", "PRAGMA journal_mode=WAL",
                          "PRAGMA synchronous=NORMAL",
        "CREATE TABLE IF NOT EXISTS queue (row INTEGER PRIMARY KEY AUTOINCREMENT, dir INTEGER "
        "NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain "
        "INTEGER NOT NULL, priority INTEGER NOT NULL, expires_us INTEGER NOT NULL, origin_id "
        "TEXT NOT NULL, sender TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, n INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS seen_n ON seen(n)",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        // A write now takes the exclusive lock for the process's life: a second bridge on
        // this store fails here, at start, not at its first message.
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('store_format', 1)"}) {
    if (sqlite3_exec(s->db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      const int rc = sqlite3_errcode(s->db_);
      return Error{Errc::io_error, "store ", path, ": ", sqlite3_errmsg(s->db_),
                   rc == SQLITE_BUSY || rc == SQLITE_LOCKED
                       ? " (another nomq bridge uses this store?)"
                       : ""};
    }
  }
  const auto prep = [&](const char* sql, sqlite3_stmt** st) {
    return sqlite3_prepare_v2(s->db_, sql, -1, st, nullptr) == SQLITE_OK;
  };
  if (!prep("INSERT INTO queue (dir, topic, payload, qos, retain, priority, expires_us, "
            "origin_id, sender) VALUES (?,?,?,?,?,?,?,?,?)",
            &s->insert_) ||
      !prep("DELETE FROM queue WHERE row = ? RETURNING length(payload) + length(topic), dir",
            &s->delete_) ||
      !prep("SELECT 1 FROM seen WHERE id = ?", &s->dedup_find_) ||
      !prep("INSERT INTO seen (id, n) VALUES (?, (SELECT coalesce(max(n), 0) + 1 FROM seen))",
            &s->dedup_add_) ||
      !prep("DELETE FROM seen WHERE n <= (SELECT max(n) FROM seen) - ?", &s->dedup_trim_) ||
      !prep("BEGIN", &s->begin_) || !prep("COMMIT", &s->commit_) ||
      !prep("ROLLBACK", &s->rollback_)) {
    return sql_error(s->db_, "prepare");
  }
  sqlite3_stmt* st = nullptr;
  if (prep("SELECT dir, count(*), coalesce(sum(length(payload) + length(topic)), 0) FROM queue "
           "GROUP BY dir",
           &st)) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const auto n = static_cast<std::uint64_t>(sqlite3_column_int64(st, 1));
      s->dir_count_[sqlite3_column_int(st, 0) == 1 ? 1 : 0] += n;
      s->count_ += n;
      s->bytes_ += static_cast<std::uint64_t>(sqlite3_column_int64(st, 2));
    }
  }
  sqlite3_finalize(st);
  return s;
}

Store::~Store() {
  for (sqlite3_stmt* st :
       {insert_, delete_, dedup_find_, dedup_add_, dedup_trim_, begin_, commit_, rollback_}) {
    sqlite3_finalize(st);
  }
  sqlite3_close(db_);
}

Result<void> Store::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    Error e{Errc::io_error, "store: ", msg ? msg : "error"};
    sqlite3_free(msg);
    return e;
  }
  return {};
}

Result<void> Store::step_done(sqlite3_stmt* st, const char* what) {
  const int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return sql_error(db_, what);
  return {};
}

Result<std::int64_t> Store::insert_locked(const StoredMessage& m) {
  const std::uint64_t size = m.payload.size() + m.topic.size();
  if (count_ + 1 > max_messages_) {
    return Error{Errc::queue_full, "store holds ", count_, " messages, the limit (store.max_messages)"};
  }
  if (bytes_ + size > max_bytes_) {
    return Error{Errc::queue_full, "store holds ", bytes_, " bytes, the limit (store.max_bytes) is ",
                 max_bytes_};
  }
  sqlite3_stmt* st = insert_;
  sqlite3_reset(st);
  sqlite3_bind_int(st, 1, static_cast<int>(m.dir));
  sqlite3_bind_text(st, 2, m.topic.data(), static_cast<int>(m.topic.size()), SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, m.payload.data(), static_cast<int>(m.payload.size()), SQLITE_STATIC);
  sqlite3_bind_int(st, 4, m.qos);
  sqlite3_bind_int(st, 5, m.retain ? 1 : 0);
  sqlite3_bind_int(st, 6, m.priority);
  sqlite3_bind_int64(st, 7, m.expires_us);
  sqlite3_bind_text(st, 8, m.origin_id.data(), static_cast<int>(m.origin_id.size()), SQLITE_STATIC);
  sqlite3_bind_text(st, 9, m.sender.data(), static_cast<int>(m.sender.size()), SQLITE_STATIC);
  if (auto r = step_done(st, "insert"); !r) return r.error();
  ++count_;
  ++dir_count_[m.dir == Dir::to_nomq ? 1 : 0];
  bytes_ += size;
  return sqlite3_last_insert_rowid(db_);
}

void Store::delete_locked(std::int64_t row) {
  sqlite3_reset(delete_);
  sqlite3_bind_int64(delete_, 1, row);
  while (sqlite3_step(delete_) == SQLITE_ROW) {
    const auto size = static_cast<std::uint64_t>(sqlite3_column_int64(delete_, 0));
    const int dir = sqlite3_column_int(delete_, 1) == 1 ? 1 : 0;
    if (count_ > 0) --count_;
    if (dir_count_[dir] > 0) --dir_count_[dir];
    bytes_ -= size < bytes_ ? size : bytes_;
  }
  sqlite3_reset(delete_);
}

Result<std::int64_t> Store::add(const StoredMessage& m, const std::string& dedup_id) {
  std::lock_guard lk(mu_);
  if (!dedup_id.empty() && seen_locked(dedup_id)) {
    return Error{Errc::duplicate, "message ", dedup_id, " was bridged before"};
  }
  const std::uint64_t count = count_, bytes = bytes_, dir_count = dir_count_[m.dir == Dir::to_nomq ? 1 : 0];
  if (auto r = step_done(begin_, "begin"); !r) return r.error();
  auto row = insert_locked(m);
  if (row && !dedup_id.empty()) mark_locked(dedup_id);
  if (row) {
    if (auto c = step_done(commit_, "commit"); !c) row = c.error();
  }
  if (!row) {
    (void)step_done(rollback_, "rollback");
    count_ = count;
    bytes_ = bytes;
    dir_count_[m.dir == Dir::to_nomq ? 1 : 0] = dir_count;
  }
  return row;
}

std::vector<Result<std::int64_t>> Store::commit(std::span<const StoredMessage* const> adds,
                                                std::span<const std::int64_t> removes) {
  std::vector<Result<std::int64_t>> out;
  out.reserve(adds.size());
  std::lock_guard lk(mu_);
  const std::uint64_t count = count_, bytes = bytes_;
  const std::uint64_t dir_count[2] = {dir_count_[0], dir_count_[1]};
  const auto fail_all = [&](const Error& e) {
    (void)step_done(rollback_, "rollback");
    count_ = count;
    bytes_ = bytes;
    dir_count_[0] = dir_count[0];
    dir_count_[1] = dir_count[1];
    out.clear();
    for (std::size_t i = 0; i < adds.size(); ++i) out.emplace_back(e);
    return std::move(out);
  };
  if (auto r = step_done(begin_, "begin"); !r) {
    out.assign(adds.size(), Result<std::int64_t>{r.error()});
    return out;
  }
  // Deletes first: the room they free is usable by this batch's inserts.
  for (const std::int64_t row : removes) delete_locked(row);
  for (const StoredMessage* m : adds) {
    auto row = insert_locked(*m);
    if (!row && row.error() == Errc::io_error) return fail_all(row.error());
    out.push_back(std::move(row));
  }
  if (auto c = step_done(commit_, "commit"); !c) return fail_all(c.error());
  return out;
}

void Store::remove(std::int64_t row) {
  std::lock_guard lk(mu_);
  delete_locked(row);
}

std::vector<StoredMessage> Store::load(Dir dir, std::int64_t now_us) {
  std::vector<StoredMessage> out;
  std::vector<std::int64_t> expired;
  {
    std::lock_guard lk(mu_);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_,
                       "SELECT row, topic, payload, qos, retain, priority, expires_us, origin_id, "
                       "sender FROM queue WHERE dir = ? ORDER BY row",
                       -1, &st, nullptr);
    sqlite3_bind_int(st, 1, static_cast<int>(dir));
    while (sqlite3_step(st) == SQLITE_ROW) {
      StoredMessage m;
      m.row = sqlite3_column_int64(st, 0);
      m.dir = dir;
      m.topic.assign(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)),
                     static_cast<std::size_t>(sqlite3_column_bytes(st, 1)));
      const void* blob = sqlite3_column_blob(st, 2);
      m.payload.assign(blob ? static_cast<const char*>(blob) : "",
                       static_cast<std::size_t>(sqlite3_column_bytes(st, 2)));
      m.qos = sqlite3_column_int(st, 3);
      m.retain = sqlite3_column_int(st, 4) != 0;
      m.priority = sqlite3_column_int(st, 5);
      m.expires_us = sqlite3_column_int64(st, 6);
      m.origin_id.assign(reinterpret_cast<const char*>(sqlite3_column_text(st, 7)),
                         static_cast<std::size_t>(sqlite3_column_bytes(st, 7)));
      m.sender.assign(reinterpret_cast<const char*>(sqlite3_column_text(st, 8)),
                      static_cast<std::size_t>(sqlite3_column_bytes(st, 8)));
      if (m.expires_us != 0 && m.expires_us <= now_us) {
        expired.push_back(m.row);
      } else {
        out.push_back(std::move(m));
      }
    }
    sqlite3_finalize(st);
    expired_ += expired.size();
  }
  for (auto row : expired) remove(row);
  return out;
}

bool Store::seen_before(const std::string& id) {
  std::lock_guard lk(mu_);
  if (seen_locked(id)) return true;
  mark_locked(id);
  return false;
}

bool Store::seen_locked(const std::string& id) {
  sqlite3_reset(dedup_find_);
  sqlite3_bind_text(dedup_find_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
  const bool seen = sqlite3_step(dedup_find_) == SQLITE_ROW;
  sqlite3_reset(dedup_find_);
  return seen;
}

void Store::mark_locked(const std::string& id) {
  sqlite3_reset(dedup_add_);
  sqlite3_bind_text(dedup_add_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
  sqlite3_step(dedup_add_);
  sqlite3_reset(dedup_add_);
  if (++dedup_adds_ % 1024 == 0) {  // keep the newest dedup_entries ids
    sqlite3_reset(dedup_trim_);
    sqlite3_bind_int64(dedup_trim_, 1, static_cast<std::int64_t>(dedup_entries_));
    sqlite3_step(dedup_trim_);
    sqlite3_reset(dedup_trim_);
  }
}

std::optional<std::int64_t> Store::meta(const std::string& key) {
  std::lock_guard lk(mu_);
  sqlite3_stmt* st = nullptr;
  std::optional<std::int64_t> v;
  if (sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE key = ?", -1, &st, nullptr) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return v;
}

Result<void> Store::set_meta(std::initializer_list<std::pair<const char*, std::int64_t>> values) {
  std::lock_guard lk(mu_);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", -1, &st,
                         nullptr) != SQLITE_OK) {
    return sql_error(db_, "prepare meta");
  }
  (void)exec("BEGIN");
  for (const auto& [key, value] : values) {
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, value);
    if (sqlite3_step(st) != SQLITE_DONE) {
      Error e = sql_error(db_, "meta");
      sqlite3_finalize(st);
      (void)exec("ROLLBACK");
      return e;
    }
  }
  sqlite3_finalize(st);
  return exec("COMMIT");
}

std::uint64_t Store::count() const {
  std::lock_guard lk(mu_);
  return count_;
}
std::uint64_t Store::count(Dir dir) const {
  std::lock_guard lk(mu_);
  return dir_count_[dir == Dir::to_nomq ? 1 : 0];
}
bool Store::has_room(std::uint64_t size) const {
  std::lock_guard lk(mu_);
  return count_ + 1 <= max_messages_ && bytes_ + size <= max_bytes_;
}
std::uint64_t Store::bytes() const {
  std::lock_guard lk(mu_);
  return bytes_;
}
std::uint64_t Store::expired_dropped() const {
  std::lock_guard lk(mu_);
  return expired_;
}

}  // namespace nomq::bridge
