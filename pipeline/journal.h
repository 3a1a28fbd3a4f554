// The journal of a run trained by a Slurm task: `journal.jsonl` in the run
// folder, one JSON object per line, appended and fsynced, written only by the
// task that holds the run. The coordinator reads it into the run database,
// which no task opens.
//
// Lines ("op" says which):
//   attempt        a task started: job, task, host, pid, restart, checkpoint_epoch
//   metric         stage, name, step, value (numbers to 17 digits: exact)
//   clear          stage: its metric rows are dropped before it runs again
//   artifact       path, kind, checksum, bytes: a file the run wrote
//   remove         path: a file that is gone
//   stage_started  stage, key
//   stage_finished stage, key, status, seconds (the stage's total), error
//   finish         status (done, failed, interrupted), error
// Every line states a fact rather than a change, so reading any tail of the
// journal again leaves the database as it was: ingesting is idempotent.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "pipeline/recorder.h"

namespace pl {

class Store;

// One line: a flat object of text and number fields.
struct JournalEntry {
  std::map<std::string, std::string> fields;  // numbers as written
  std::string get(const std::string& key) const;
  double number(const std::string& key) const;
};

// Formats `fields` as one JSON line (with '\n'); `numbers` name the fields
// written as numbers.
std::string journal_line(const std::vector<std::pair<std::string, std::string>>& fields,
                         const std::vector<std::string>& numbers = {});
// Parses one line; false when it is not a flat JSON object.
bool parse_journal_line(const std::string& line, JournalEntry& entry);

struct JournalRecord {
  int64_t end = 0;  // byte offset just after the line
  JournalEntry entry;
};
// The complete lines of a journal (a torn last line is left out); an absent
// file has none. Lines that do not parse are skipped.
std::vector<JournalRecord> read_journal(const std::string& path);

// What the journal says about the task that last ran.
struct JournalSummary {
  int attempts = 0;
  std::string job, task, host;  // of the last attempt
  int64_t pid = 0;
  int64_t checkpoint_epoch = 0;  // the epoch the last attempt resumed from
  std::string final_status;      // after the last attempt: done, failed, interrupted or ""
  std::string final_error;
  int64_t progress = 0;  // lines that record work done (metric rows, files written)
};
JournalSummary summarize_journal(const std::vector<JournalRecord>& records);

// Applies the lines after byte `offset` to the run database and returns the
// offset after the last one applied.
int64_t ingest_journal(Store& store, const std::string& run,
                       const std::vector<JournalRecord>& records, int64_t offset);

// The recorder of a Slurm task: appends to the journal and answers the
// stages' questions (checksums, stages done) from what it holds, plus the
// stages the run database had done when the task was submitted.
class JournalRecorder : public RunRecorder {
 public:
  // Opens (creates) the journal, cuts a torn last line left by a killed
  // task, and reads what it holds. `done` maps stage to the key the run
  // database has it done with.
  JournalRecorder(std::string path, std::map<std::string, std::string> done);
  ~JournalRecorder() override;
  JournalRecorder(const JournalRecorder&) = delete;
  JournalRecorder& operator=(const JournalRecorder&) = delete;

  // The provable start of a task: written before any work.
  void attempt(const std::vector<std::pair<std::string, std::string>>& fields,
               const std::vector<std::string>& numbers);

  void put_metrics(const std::string& run, const std::string& stage,
                   const std::vector<Metric>& metrics) override;
  void clear_metrics(const std::string& run, const std::string& stage) override;
  void put_artifact(const std::string& run, const ArtifactRow& artifact) override;
  void move_artifact(const std::string& run, const std::string& from,
                     const std::string& to) override;
  void remove_artifact(const std::string& run, const std::string& path) override;
  std::string artifact_checksum(const std::string& run, const std::string& path) override;
  bool stage_done(const std::string& run, const std::string& stage,
                  const std::string& key) override;
  void stage_started(const std::string& run, const std::string& stage,
                     const std::string& key) override;
  void stage_finished(const std::string& run, const std::string& stage, const std::string& status,
                      double seconds, const std::string& error) override;
  void mark_finished(const std::string& id, const std::string& status,
                     const std::string& error) override;

 private:
  void append(const std::string& lines);

  std::string path_;
  int fd_ = -1;
  std::map<std::string, std::string> done_;  // stage -> key
  std::map<std::string, ArtifactRow> artifacts_;
  std::map<std::string, std::string> stage_key_;  // stage -> key of its last start
  std::map<std::string, double> stage_seconds_;   // stage -> seconds spent with that key
};

}  // namespace pl
