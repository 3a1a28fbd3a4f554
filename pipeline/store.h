// The run database: runs/pipeline.db, SQLite in WAL mode.
//
// Tables: sweeps, sweep_runs, runs, params, metrics, stages, artifacts (see
// the README's "Run database" section for the schema and views). Every write
// is one transaction, so a kill at any instant leaves a consistent database.
// A Store is used from one thread; other processes may open the same file
// (SQLite's locking, with a busy timeout).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "pipeline/recorder.h"

struct sqlite3;

namespace pl {

struct RunRow {
  std::string id;
  std::string status;  // pending, running, interrupted, done, failed
  std::string error;
  std::string started, finished;
  double seconds = 0;
  std::string host;
  int64_t pid = 0;
  double heartbeat_age = 0;  // seconds since the run last reported progress
  std::map<std::string, std::string> params;
  std::map<std::string, double> metrics;  // final value (last step) per name
};

struct StageRow {
  std::string stage, key, status, error;
  double seconds = 0;
};

// The rows of a query: every cell as text (empty for NULL), with its type.
struct QueryResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::vector<char>> kinds;  // per cell: 'n' number, 't' text, '0' null
};

struct SweepRow {
  std::string name, file, description, updated;
};

// A run marked running whose process is gone (same host, no such pid) or
// that has not reported for `stale_seconds`.
bool is_stale(const RunRow& run, double stale_seconds = 1800);

// The status to show: a stale 'running' run is 'interrupted'.
std::string shown_status(const RunRow& run);

class Store : public RunRecorder {
 public:
  // Opens (creating when absent) `root`/pipeline.db. Throws std::runtime_error
  // naming the file and the fix when it cannot be opened or written.
  static std::unique_ptr<Store> open(const std::string& root, bool read_only = false);
  ~Store() override;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }

  // Records the sweep and its current list of runs (replacing an older list).
  void put_sweep(const SweepRow& sweep, const std::vector<std::string>& run_ids);
  // Adds the run as 'pending' unless it exists; params are (re)written.
  void put_run(const std::string& id, const std::string& config,
               const std::map<std::string, std::string>& params);

  std::string run_status(const std::string& id);
  // Atomically marks the run 'running' by this process, unless another live
  // process holds it (then returns false and changes nothing). A run left
  // 'running' by a dead process is taken over.
  bool claim_run(const std::string& id);
  void mark_finished(const std::string& id, const std::string& status,
                     const std::string& error) override;

  // Stage bookkeeping; a stage is done when its row says so with this key.
  bool stage_done(const std::string& run, const std::string& stage,
                  const std::string& key) override;
  void stage_started(const std::string& run, const std::string& stage,
                     const std::string& key) override;
  void stage_finished(const std::string& run, const std::string& stage, const std::string& status,
                      double seconds, const std::string& error) override;

  // Writes rows in one transaction; a row for the same (run, stage, name,
  // step) replaces the old one, so a resumed run never duplicates rows.
  void put_metrics(const std::string& run, const std::string& stage,
                   const std::vector<Metric>& metrics) override;
  void put_artifact(const std::string& run, const ArtifactRow& artifact) override;
  // Removes a stage's metric rows before the stage runs again.
  void clear_metrics(const std::string& run, const std::string& stage) override;
  // Renames the record of a file that was renamed (replacing one at `to`).
  void move_artifact(const std::string& run, const std::string& from,
                     const std::string& to) override;
  void remove_artifact(const std::string& run, const std::string& path) override;
  // The recorded checksum of a run's file, or "".
  std::string artifact_checksum(const std::string& run, const std::string& path) override;

  // Replaces the sweep's analysis rows: (name, run, value); run is "" for a
  // sweep-wide value.
  void put_sweep_metrics(const std::string& sweep,
                         const std::vector<std::tuple<std::string, std::string, double>>& rows);

  std::vector<SweepRow> sweeps();
  std::vector<std::string> sweep_run_ids(const std::string& sweep);
  std::vector<RunRow> runs(const std::string& sweep);  // empty sweep: every run
  std::vector<StageRow> stages(const std::string& run);
  std::vector<ArtifactRow> artifacts(const std::string& run);
  // (step, value) pairs of one metric, by step.
  std::vector<std::pair<int64_t, double>> series(const std::string& run, const std::string& name);
  std::string run_config(const std::string& run);

  // Runs any statement with `binds` (numbers and text) and returns its rows.
  // On a read-only store a write fails with a message that says so.
  QueryResult query(const std::string& sql,
                    const std::vector<std::pair<bool, std::string>>& binds = {});
  std::vector<std::string> metric_names();
  std::vector<std::string> param_keys();

 private:
  Store(sqlite3* db, std::string path, bool read_only);
  void exec(const std::string& sql);
  // Runs `body` in one write transaction (BEGIN IMMEDIATE), rolled back when
  // it throws.
  template <typename F>
  void transaction(F body);

  sqlite3* db_;
  std::string path_;
  bool read_only_;
};

}  // namespace pl
