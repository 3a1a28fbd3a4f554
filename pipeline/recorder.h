// Where a run's stages record what they produce: metrics, files, stage and
// run states.
//
// The run database (Store) is one recorder; a Slurm task, which must not open
// the database, records into a journal in its run folder instead
// (JournalRecorder, journal.h), which the coordinator later reads into the
// database. The stages only see this interface.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pl {

struct Metric {
  std::string name;  // "copy.psnr"
  int64_t step = 0;  // epoch for training metrics, iteration for modify, 0 otherwise
  double value = 0;
};

struct ArtifactRow {
  std::string path, kind, checksum;
  int64_t bytes = 0;
};

class RunRecorder {
 public:
  virtual ~RunRecorder() = default;

  // Rows for the same (run, stage, name, step) replace the old ones.
  virtual void put_metrics(const std::string& run, const std::string& stage,
                           const std::vector<Metric>& metrics) = 0;
  // Removes a stage's metric rows before the stage runs again.
  virtual void clear_metrics(const std::string& run, const std::string& stage) = 0;
  virtual void put_artifact(const std::string& run, const ArtifactRow& artifact) = 0;
  // Renames the record of a file that was renamed (replacing one at `to`).
  virtual void move_artifact(const std::string& run, const std::string& from,
                             const std::string& to) = 0;
  virtual void remove_artifact(const std::string& run, const std::string& path) = 0;
  // The recorded checksum of a run's file, or "".
  virtual std::string artifact_checksum(const std::string& run, const std::string& path) = 0;

  // A stage is done when it was recorded done with this key.
  virtual bool stage_done(const std::string& run, const std::string& stage,
                          const std::string& key) = 0;
  virtual void stage_started(const std::string& run, const std::string& stage,
                             const std::string& key) = 0;
  virtual void stage_finished(const std::string& run, const std::string& stage,
                              const std::string& status, double seconds,
                              const std::string& error) = 0;
  // The run's outcome: done, failed or interrupted, with the reason.
  virtual void mark_finished(const std::string& id, const std::string& status,
                             const std::string& error) = 0;
};

}  // namespace pl
