// `pipeline run`: expands an experiment and runs each point's stages
// (ingest -> train -> evaluate -> modify), then the sweep's report.
//
// Safe to repeat: finished stages are skipped, interrupted training resumes
// from its checkpoint, failed runs are skipped unless retry_failed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pl {

struct RunOptions {
  std::string file;
  std::vector<std::string> overrides;  // --set key=value
  std::string root;                    // --root (empty: default)
  bool dry_run = false;
  bool retry_failed = false;
  bool force = false;  // allow sweeps above the size cap
  // Points run side by side, each process with cores / jobs threads (at
  // least one), so the cores are never oversubscribed.
  int jobs = 1;
};

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
