// `pipeline-run task RUN_DIR`: one Slurm array task (hidden from --help).
#pragma once

#include <string>

namespace pl {

// Runs the run described by RUN_DIR/task.spec (slurm.h) into RUN_DIR,
// recording into RUN_DIR/journal.jsonl; never opens the run database.
// Exit status: 0 done, 1 failed, 2 bad spec, 143 stopped by SIGTERM
// (scancel, preemption, time limit) after a checkpoint.
int task_command(const std::string& run_dir);

}  // namespace pl
