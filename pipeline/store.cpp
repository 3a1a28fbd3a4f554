#include "pipeline/store.h"

#include <fmt/format.h>
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "pipeline/log.h"
#include "pipeline/paths.h"

namespace pl {
namespace {

// Another program's SQLite file where the run database belongs.
class NotRunDatabase : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

const char* kRunColumns =
    "r.id, r.status, r.error, r.started, r.finished, r.seconds, coalesce(r.host,''), "
    "coalesce(r.pid,0), coalesce((julianday('now') - julianday(r.heartbeat)) * 86400, 0)";

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS sweeps (
  name TEXT PRIMARY KEY, file TEXT, description TEXT, created TEXT, updated TEXT);
CREATE TABLE IF NOT EXISTS sweep_runs (
  sweep TEXT NOT NULL, run TEXT NOT NULL, position INTEGER NOT NULL,
  PRIMARY KEY (sweep, run));
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, config TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
  created TEXT, started TEXT, finished TEXT, seconds REAL DEFAULT 0,
  host TEXT, pid INTEGER, heartbeat TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS params (
  run TEXT NOT NULL, key TEXT NOT NULL, value TEXT, num REAL, PRIMARY KEY (run, key));
CREATE TABLE IF NOT EXISTS metrics (
  run TEXT NOT NULL, stage TEXT NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL,
  value REAL, PRIMARY KEY (run, stage, name, step));
CREATE TABLE IF NOT EXISTS stages (
  run TEXT NOT NULL, stage TEXT NOT NULL, key TEXT, status TEXT, started TEXT, finished TEXT,
  seconds REAL, error TEXT, PRIMARY KEY (run, stage));
CREATE TABLE IF NOT EXISTS artifacts (
  run TEXT NOT NULL, path TEXT NOT NULL, kind TEXT, checksum TEXT, bytes INTEGER,
  PRIMARY KEY (run, path));
CREATE TABLE IF NOT EXISTS sweep_metrics (
  sweep TEXT NOT NULL, name TEXT NOT NULL, run TEXT NOT NULL DEFAULT '', value REAL,
  PRIMARY KEY (sweep, name, run));
CREATE TABLE IF NOT EXISTS final (
  run TEXT NOT NULL, name TEXT NOT NULL, stage TEXT NOT NULL, step INTEGER NOT NULL, value REAL,
  PRIMARY KEY (run, name));
CREATE INDEX IF NOT EXISTS final_by_name ON final (name, value);
CREATE INDEX IF NOT EXISTS params_by_key ON params (key, num);
DROP VIEW IF EXISTS final_metrics;
CREATE VIEW final_metrics AS SELECT run, stage, name, step, value FROM final;
DROP VIEW IF EXISTS run_summary;
CREATE VIEW run_summary AS
  SELECT r.id AS run, r.status, r.seconds, r.error,
         (SELECT json_group_object(key, value) FROM params p WHERE p.run = r.id) AS params,
         (SELECT json_group_object(name, value) FROM final_metrics f WHERE f.run = r.id) AS metrics
  FROM runs r;
DROP VIEW IF EXISTS epoch_metrics;
CREATE VIEW epoch_metrics AS
  SELECT run, name, step AS epoch, value FROM metrics WHERE stage = 'train';
)sql";

// How long a statement waits for another process's lock before it fails:
// $PIPELINE_DB_TIMEOUT seconds, 30 by default.
int busy_timeout_ms() {
  static const int ms = [] {
    const char* text = std::getenv("PIPELINE_DB_TIMEOUT");
    double seconds = text != nullptr && *text != '\0' ? std::atof(text) : 30.0;
    return static_cast<int>(std::clamp(seconds, 0.0, 86400.0) * 1000);
  }();
  return ms;
}

// SQLite's message, with what to do when another process held the lock.
std::string database_error(sqlite3* db) {
  int code = sqlite3_errcode(db) & 0xff;
  std::string why = sqlite3_errmsg(db);
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
    why += fmt::format(
        " (another process held a lock on it for more than {:g} s, the wait set by "
        "PIPELINE_DB_TIMEOUT; let it finish, then run again)",
        busy_timeout_ms() / 1000.0);
  }
  return why;
}

// A prepared statement with positional binding, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(fmt::format("run database: {} in: {}", database_error(db), sql));
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }

  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Statement& bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& bind_null(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }

  // True while rows come; throws on error.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(fmt::format("run database: {}", database_error(db_)));
  }
  void run() {
    step();
    reset();
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  std::string text(int i) {
    const unsigned char* t = sqlite3_column_text(stmt_, i);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  double real(int i) { return sqlite3_column_double(stmt_, i); }
  int64_t integer(int i) { return sqlite3_column_int64(stmt_, i); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

std::string this_host() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

bool parse_number(const std::string& text, double& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return *end == '\0';
}

}  // namespace

bool is_stale(const RunRow& run, double stale_seconds) {
  if (run.status != "running") return false;
  if (run.host == this_host() && run.pid > 0) {
    bool alive = kill(static_cast<pid_t>(run.pid), 0) == 0 || errno == EPERM;
    if (!alive) return true;
  }
  return run.heartbeat_age > stale_seconds;
}

std::string shown_status(const RunRow& run) { return is_stale(run) ? "interrupted" : run.status; }

std::unique_ptr<Store> Store::open(const std::string& root, bool read_only) {
  std::string path = root + "/pipeline.db";
  if (read_only && !std::filesystem::exists(path)) {
    throw std::runtime_error(fmt::format(
        "{}: no run database here; run an experiment first or point --root at its output", path));
  }
  if (std::filesystem::is_directory(path)) {
    throw std::runtime_error(fmt::format(
        "{}: is a folder, not a run database; move it aside or choose another --root", path));
  }
  if (!read_only) make_dirs(root);

  sqlite3* db = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error(fmt::format("{}: cannot open the run database: {}", path, why));
  }
  std::unique_ptr<Store> store(new Store(db, path, read_only));
  sqlite3_busy_timeout(db, busy_timeout_ms());
  try {
    // Another program's database is refused, never given the run tables.
    QueryResult tables = store->query("SELECT name FROM sqlite_master WHERE type = 'table'");
    bool has_runs = false;
    std::string names;
    for (const auto& row : tables.rows) {
      has_runs = has_runs || row[0] == "runs";
      names += (names.empty() ? "" : ", ") + row[0];
    }
    if (read_only && tables.rows.empty()) {
      throw NotRunDatabase(fmt::format(
          "{}: an empty database, no runs in it yet; run an experiment first or point --root at "
          "its output",
          path));
    }
    if (!tables.rows.empty() && !has_runs) {
      throw NotRunDatabase(fmt::format(
          "{}: an SQLite database without the run tables (it holds {}): not a run database; "
          "point --root at a folder of the tool's output, or move the file aside",
          path, names));
    }
    if (!read_only) {
      // Switching a new file to WAL fails at once, without the busy handler,
      // while another process is doing the same: wait for it here.
      for (int attempt = 1;; ++attempt) {
        try {
          store->exec("PRAGMA journal_mode=WAL");
          break;
        } catch (const std::exception& e) {
          if (attempt >= 300 || std::string(e.what()).find("locked") == std::string::npos) throw;
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
      store->exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
      // One transaction, so two processes opening a new database at once
      // do not both create (or drop) the same views.
      store->transaction([&] {
        store->exec(kSchema);
        // Databases written before the `final` table existed get it filled once.
        store->exec(
            "INSERT OR IGNORE INTO final (run, name, stage, step, value) "
            "SELECT run, name, stage, step, value FROM metrics m WHERE step = (SELECT max(step) "
            "FROM metrics x WHERE x.run = m.run AND x.name = m.name) "
            "AND NOT EXISTS (SELECT 1 FROM final LIMIT 1)");
      });
    } else {
      store->exec("PRAGMA query_only = ON");
      if (store->query("SELECT 1 FROM sqlite_master WHERE name = 'final'").rows.empty()) {
        // Written by an older version: upgrade it once, then read.
        store.reset();
        open(root, false);
        return open(root, true);
      }
    }
  } catch (const NotRunDatabase&) {
    throw;
  } catch (const std::exception& e) {
    std::string why = e.what();
    bool damaged = why.find("malformed") != std::string::npos ||
                   why.find("not a database") != std::string::npos;
    if (why.find("another process held a lock") != std::string::npos) throw;
    throw std::runtime_error(fmt::format(
        "{}: {}; {}", path, why,
        damaged ? "the file is damaged or not a run database: move it aside and run again (the "
                  "run folders keep their checkpoints)"
        : why.find("readonly") != std::string::npos
            ? "the file or its folder is read-only: make both writable, or choose another --root"
            : "check that the folder is writable"));
  }
  return store;
}

Store::Store(sqlite3* db, std::string path, bool read_only)
    : db_(db), path_(std::move(path)), read_only_(read_only) {}

Store::~Store() { sqlite3_close(db_); }

template <typename F>
void Store::transaction(F body) {
  exec("BEGIN IMMEDIATE");
  try {
    body();
    exec("COMMIT");
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

void Store::exec(const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    int code = sqlite3_errcode(db_) & 0xff;
    std::string why = code == SQLITE_BUSY || code == SQLITE_LOCKED ? database_error(db_)
                      : message                                    ? message
                                                                   : "unknown error";
    sqlite3_free(message);
    throw std::runtime_error(fmt::format("run database {}: {}", path_, why));
  }
}

void Store::put_sweep(const SweepRow& sweep, const std::vector<std::string>& run_ids) {
  transaction([&] {
    Statement(db_,
              "INSERT INTO sweeps (name, file, description, created, updated) VALUES (?,?,?,?,?) "
              "ON CONFLICT(name) DO UPDATE SET file=excluded.file, "
              "description=excluded.description, updated=excluded.updated")
        .bind(1, sweep.name)
        .bind(2, sweep.file)
        .bind(3, sweep.description)
        .bind(4, utc_now_text())
        .bind(5, utc_now_text())
        .run();
    Statement(db_, "DELETE FROM sweep_runs WHERE sweep = ?").bind(1, sweep.name).run();
    Statement insert(db_, "INSERT INTO sweep_runs (sweep, run, position) VALUES (?,?,?)");
    for (std::size_t i = 0; i < run_ids.size(); ++i) {
      insert.bind(1, sweep.name).bind(2, run_ids[i]).bind(3, static_cast<int64_t>(i)).run();
    }
  });
}

void Store::put_run(const std::string& id, const std::string& config,
                    const std::map<std::string, std::string>& params) {
  transaction([&] {
    Statement(db_, "INSERT OR IGNORE INTO runs (id, config, status, created) VALUES (?,?,?,?)")
        .bind(1, id)
        .bind(2, config)
        .bind(3, std::string("pending"))
        .bind(4, utc_now_text())
        .run();
    Statement insert(db_, "INSERT OR REPLACE INTO params (run, key, value, num) VALUES (?,?,?,?)");
    for (const auto& [key, value] : params) {
      double number = 0;
      insert.bind(1, id).bind(2, key).bind(3, value);
      if (parse_number(value, number))
        insert.bind(4, number);
      else
        insert.bind_null(4);
      insert.run();
    }
  });
}

std::string Store::run_status(const std::string& id) {
  Statement select(db_, "SELECT status FROM runs WHERE id = ?");
  select.bind(1, id);
  return select.step() ? select.text(0) : "";
}

bool Store::claim_run(const std::string& id) {
  std::string host = this_host();
  bool claimed = false;
  transaction([&] {
    Statement select(db_,
                     "SELECT status, coalesce(host,''), coalesce(pid,0), "
                     "coalesce((julianday('now') - julianday(heartbeat)) * 86400, 0) "
                     "FROM runs WHERE id=?");
    select.bind(1, id);
    if (select.step() && select.text(0) == "running") {
      RunRow row;
      row.status = "running";
      row.host = select.text(1);
      row.pid = select.integer(2);
      row.heartbeat_age = select.real(3);
      if (!is_stale(row) && row.pid != getpid()) return;  // a live process has it
    }
    Statement(db_,
              "UPDATE runs SET status='running', started=coalesce(started, ?), heartbeat=?, "
              "host=?, pid=?, error=NULL WHERE id=?")
        .bind(1, utc_now_text())
        .bind(2, utc_now_text())
        .bind(3, host)
        .bind(4, static_cast<int64_t>(getpid()))
        .bind(5, id)
        .run();
    claimed = true;
  });
  return claimed;
}

void Store::mark_finished(const std::string& id, const std::string& status,
                          const std::string& error) {
  Statement update(db_,
                   "UPDATE runs SET status=?, finished=?, error=?, seconds=(SELECT "
                   "coalesce(sum(seconds),0) FROM stages WHERE run=?) WHERE id=?");
  update.bind(1, status).bind(2, utc_now_text());
  if (error.empty())
    update.bind_null(3);
  else
    update.bind(3, error);
  update.bind(4, id).bind(5, id).run();
}

bool Store::stage_done(const std::string& run, const std::string& stage, const std::string& key) {
  Statement select(db_, "SELECT 1 FROM stages WHERE run=? AND stage=? AND key=? AND status='done'");
  select.bind(1, run).bind(2, stage).bind(3, key);
  return select.step();
}

void Store::stage_started(const std::string& run, const std::string& stage,
                          const std::string& key) {
  Statement(db_,
            "INSERT INTO stages (run, stage, key, status, started) VALUES (?,?,?,'running',?) "
            "ON CONFLICT(run, stage) DO UPDATE SET seconds=CASE WHEN key=excluded.key THEN seconds "
            "ELSE 0 END, key=excluded.key, status='running', started=excluded.started, error=NULL")
      .bind(1, run)
      .bind(2, stage)
      .bind(3, key)
      .bind(4, utc_now_text())
      .run();
}

void Store::stage_finished(const std::string& run, const std::string& stage,
                           const std::string& status, double seconds, const std::string& error) {
  Statement update(db_,
                   "UPDATE stages SET status=?, finished=?, seconds=coalesce(seconds,0)+?, error=? "
                   "WHERE run=? AND stage=?");
  update.bind(1, status).bind(2, utc_now_text()).bind(3, seconds);
  if (error.empty())
    update.bind_null(4);
  else
    update.bind(4, error);
  update.bind(5, run).bind(6, stage).run();
}

void Store::put_metrics(const std::string& run, const std::string& stage,
                        const std::vector<Metric>& metrics) {
  transaction([&] {
    Statement insert(
        db_, "INSERT OR REPLACE INTO metrics (run, stage, name, step, value) VALUES (?,?,?,?,?)");
    Statement final(db_,
                    "INSERT INTO final (run, name, stage, step, value) VALUES (?,?,?,?,?) "
                    "ON CONFLICT(run, name) DO UPDATE SET stage=excluded.stage, "
                    "step=excluded.step, value=excluded.value WHERE excluded.step >= final.step");
    for (const Metric& m : metrics) {
      insert.bind(1, run).bind(2, stage).bind(3, m.name).bind(4, m.step).bind(5, m.value).run();
      final.bind(1, run).bind(2, m.name).bind(3, stage).bind(4, m.step).bind(5, m.value).run();
    }
    Statement(db_, "UPDATE runs SET heartbeat=? WHERE id=?")
        .bind(1, utc_now_text())
        .bind(2, run)
        .run();
  });
}

void Store::clear_metrics(const std::string& run, const std::string& stage) {
  transaction([&] {
    Statement(db_, "DELETE FROM metrics WHERE run=? AND stage=?").bind(1, run).bind(2, stage).run();
    Statement(db_, "DELETE FROM final WHERE run=? AND stage=?").bind(1, run).bind(2, stage).run();
  });
}

void Store::put_artifact(const std::string& run, const ArtifactRow& a) {
  Statement(
      db_, "INSERT OR REPLACE INTO artifacts (run, path, kind, checksum, bytes) VALUES (?,?,?,?,?)")
      .bind(1, run)
      .bind(2, a.path)
      .bind(3, a.kind)
      .bind(4, a.checksum)
      .bind(5, a.bytes)
      .run();
}

void Store::move_artifact(const std::string& run, const std::string& from, const std::string& to) {
  transaction([&] {
    Statement(db_, "DELETE FROM artifacts WHERE run=? AND path=?").bind(1, run).bind(2, to).run();
    Statement(db_, "UPDATE artifacts SET path=? WHERE run=? AND path=?")
        .bind(1, to)
        .bind(2, run)
        .bind(3, from)
        .run();
  });
}

void Store::remove_artifact(const std::string& run, const std::string& path) {
  Statement(db_, "DELETE FROM artifacts WHERE run=? AND path=?").bind(1, run).bind(2, path).run();
}

std::string Store::artifact_checksum(const std::string& run, const std::string& path) {
  Statement select(db_, "SELECT checksum FROM artifacts WHERE run=? AND path=?");
  select.bind(1, run).bind(2, path);
  return select.step() ? select.text(0) : "";
}

void Store::put_sweep_metrics(
    const std::string& sweep,
    const std::vector<std::tuple<std::string, std::string, double>>& rows) {
  transaction([&] {
    Statement(db_, "DELETE FROM sweep_metrics WHERE sweep=?").bind(1, sweep).run();
    Statement insert(db_, "INSERT INTO sweep_metrics (sweep, name, run, value) VALUES (?,?,?,?)");
    for (const auto& [name, run, value] : rows) {
      insert.bind(1, sweep).bind(2, name).bind(3, run).bind(4, value).run();
    }
  });
}

std::vector<SweepRow> Store::sweeps() {
  std::vector<SweepRow> rows;
  Statement select(db_, "SELECT name, file, description, updated FROM sweeps ORDER BY name");
  while (select.step())
    rows.push_back({select.text(0), select.text(1), select.text(2), select.text(3)});
  return rows;
}

std::vector<std::string> Store::sweep_run_ids(const std::string& sweep) {
  std::vector<std::string> ids;
  Statement select(db_, "SELECT run FROM sweep_runs WHERE sweep=? ORDER BY position");
  select.bind(1, sweep);
  while (select.step()) ids.push_back(select.text(0));
  return ids;
}

std::vector<RunRow> Store::runs(const std::string& sweep) {
  std::vector<RunRow> rows;
  Statement select(db_, sweep.empty() ? "SELECT " + std::string(kRunColumns) +
                                            " FROM runs r ORDER BY created, id"
                                      : "SELECT " + std::string(kRunColumns) +
                                            " FROM runs r JOIN sweep_runs s ON s.run = r.id "
                                            "WHERE s.sweep = ? ORDER BY s.position");
  if (!sweep.empty()) select.bind(1, sweep);
  while (select.step()) {
    RunRow row;
    row.id = select.text(0);
    row.status = select.text(1);
    row.error = select.text(2);
    row.started = select.text(3);
    row.finished = select.text(4);
    row.seconds = select.real(5);
    row.host = select.text(6);
    row.pid = select.integer(7);
    row.heartbeat_age = select.real(8);
    rows.push_back(std::move(row));
  }
  Statement params(db_, "SELECT key, value FROM params WHERE run=?");
  Statement metrics(db_, "SELECT name, value FROM final_metrics WHERE run=?");
  for (RunRow& row : rows) {
    params.bind(1, row.id);
    while (params.step()) row.params[params.text(0)] = params.text(1);
    params.reset();
    metrics.bind(1, row.id);
    while (metrics.step()) row.metrics[metrics.text(0)] = metrics.real(1);
    metrics.reset();
  }
  return rows;
}

std::vector<StageRow> Store::stages(const std::string& run) {
  std::vector<StageRow> rows;
  Statement select(db_,
                   "SELECT stage, key, status, coalesce(error,''), coalesce(seconds,0) FROM stages "
                   "WHERE run=? ORDER BY CASE stage WHEN 'train' THEN 1 WHEN 'evaluate' THEN 2 "
                   "WHEN 'modify' THEN 3 ELSE 4 END");
  select.bind(1, run);
  while (select.step()) {
    rows.push_back(
        {select.text(0), select.text(1), select.text(2), select.text(3), select.real(4)});
  }
  return rows;
}

std::vector<ArtifactRow> Store::artifacts(const std::string& run) {
  std::vector<ArtifactRow> rows;
  Statement select(db_,
                   "SELECT path, kind, checksum, bytes FROM artifacts WHERE run=? ORDER BY path");
  select.bind(1, run);
  while (select.step()) {
    rows.push_back({select.text(0), select.text(1), select.text(2), select.integer(3)});
  }
  return rows;
}

std::vector<std::pair<int64_t, double>> Store::series(const std::string& run,
                                                      const std::string& name) {
  std::vector<std::pair<int64_t, double>> points;
  Statement select(db_, "SELECT step, value FROM metrics WHERE run=? AND name=? ORDER BY step");
  select.bind(1, run).bind(2, name);
  while (select.step()) points.emplace_back(select.integer(0), select.real(1));
  return points;
}

QueryResult Store::query(const std::string& sql,
                         const std::vector<std::pair<bool, std::string>>& binds) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, &tail) != SQLITE_OK) {
    throw std::runtime_error(fmt::format("query: {}", database_error(db_)));
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);
  if (stmt == nullptr) throw std::runtime_error("query: the statement is empty");
  if (tail != nullptr && std::string(tail).find_first_not_of(" \t\n;") != std::string::npos) {
    throw std::runtime_error("query: give one statement at a time");
  }
  for (std::size_t i = 0; i < binds.size(); ++i) {
    int index = static_cast<int>(i + 1);
    if (binds[i].first)
      sqlite3_bind_double(stmt, index, std::strtod(binds[i].second.c_str(), nullptr));
    else
      sqlite3_bind_text(stmt, index, binds[i].second.c_str(), -1, SQLITE_TRANSIENT);
  }
  QueryResult result;
  int columns = sqlite3_column_count(stmt);
  for (int c = 0; c < columns; ++c) result.columns.push_back(sqlite3_column_name(stmt, c));
  while (true) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      std::string why = sqlite3_errmsg(db_);
      if (read_only_ && (rc == SQLITE_READONLY || why.find("readonly") != std::string::npos ||
                         why.find("query_only") != std::string::npos)) {
        throw std::runtime_error(
            "query: the run database is opened read-only here and was not changed; "
            "`pipeline query` runs SELECT statements (use sqlite3 to change the file)");
      }
      throw std::runtime_error(fmt::format("query: {}", database_error(db_)));
    }
    std::vector<std::string> row;
    std::vector<char> kinds;
    for (int c = 0; c < columns; ++c) {
      int type = sqlite3_column_type(stmt, c);
      const unsigned char* text = sqlite3_column_text(stmt, c);
      row.push_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
      kinds.push_back(type == SQLITE_NULL                              ? '0'
                      : type == SQLITE_INTEGER || type == SQLITE_FLOAT ? 'n'
                                                                       : 't');
    }
    result.rows.push_back(std::move(row));
    result.kinds.push_back(std::move(kinds));
  }
  return result;
}

std::vector<std::string> Store::metric_names() {
  std::vector<std::string> names;
  for (auto& row : query("SELECT DISTINCT name FROM final ORDER BY name").rows)
    names.push_back(row[0]);
  return names;
}

std::vector<std::string> Store::param_keys() {
  std::vector<std::string> keys;
  for (auto& row : query("SELECT DISTINCT key FROM params ORDER BY key").rows)
    keys.push_back(row[0]);
  return keys;
}

std::string Store::run_config(const std::string& run) {
  Statement select(db_, "SELECT config FROM runs WHERE id=?");
  select.bind(1, run);
  return select.step() ? select.text(0) : "";
}

}  // namespace pl
