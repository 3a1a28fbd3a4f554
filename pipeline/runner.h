// `pipeline run`: expands an experiment and runs each point's stages
// (ingest -> train -> evaluate -> modify), then the sweep's report.
//
// Safe to repeat: finished stages are skipped, interrupted training resumes
// from its checkpoint, failed runs are skipped unless retry_failed.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/slurm.h"

namespace pl {

class RunConfig;
class RunRecorder;
struct CifarData;
struct Cloud;

struct RunOptions {
  std::string file;
  std::vector<std::string> overrides;  // --set key=value
  std::string root;                    // --root (empty: default)
  bool dry_run = false;
  bool retry_failed = false;
  bool force = false;              // allow sweeps above the size cap
  std::string executor = "local";  // local, or slurm: the runs as a Slurm job array
  SlurmOptions slurm;              // --partition, --time, ... (executor slurm)
  // Points run side by side, each process with cores / jobs threads (at
  // least one), so the cores are never oversubscribed.
  int jobs = 1;
};

// The keys a stage's results are recorded under: a hash of its code version,
// its slice of the config and its inputs' keys.
struct StageKeys {
  std::string train, evaluate, modify;
};
StageKeys stage_keys(const RunConfig& config, const std::string& data_key);

enum class RunOutcome { kDone, kFailed, kInterrupted };

// Runs one run's stages (train, evaluate, modify; those recorded done with
// today's key are skipped) in `root`/<run id>, recording through `recorder`,
// and records the outcome with recorder.mark_finished. Stops at the next
// batch when *stop becomes true. Used by `run` (recorder: the run database)
// and by a Slurm task (recorder: the run folder's journal).
// `cloud` is the run's point cloud, or null for CIFAR-10 data.
RunOutcome run_stages(const RunConfig& config, const CifarData& data, const Cloud* cloud,
                      RunRecorder& recorder, const std::string& root, const std::string& label,
                      const std::atomic<bool>* stop);

// Exit status: 0 every run done, 1 some run failed, 2 bad input (nothing
// written), 130 stopped by the user (resume by running it again).
// Defined in the `pipeline-run` program only: it links LibTorch.
int run_experiment(const RunOptions& options);

struct ModifyOptions {
  std::string root;
  std::string run;    // id or unique prefix
  std::string image;  // PNG or JPEG
  int64_t steps = 20;
  std::string fit = "crop";
  std::string out;  // the PNG strip: the picture, then each iteration
};

// `pipeline modify`: the user's picture through a trained run's net.
int modify_command(const ModifyOptions& options);

// Prints the runs the experiment expands to, with their ids (--dry-run).
int dry_run(const RunOptions& options);

// Replaces this process with `pipeline-run` (beside this program) and the
// same arguments, so the query commands start without loading LibTorch.
int exec_runner(char** argv);

}  // namespace pl
