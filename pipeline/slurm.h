// `pipeline run FILE --executor slurm`: the sweep's pending runs as a Slurm
// job array, followed to the end by this process, the coordinator.
//
// Each array task runs `pipeline-run task RUN_DIR`: it reads the run's spec
// (task.spec, written here), trains, evaluates and modifies into the run
// folder and records everything in the folder's journal (journal.h). It
// never opens the run database: the coordinator is its only writer. The
// coordinator polls squeue, reads each journal into the database as it grows,
// and submits again what ended without finishing (cancelled, preempted,
// timed out, lost with its node); the new task resumes from the checkpoint.
// The job of each run is kept in the `slurm_tasks` table, so a coordinator
// started again follows the jobs still queued instead of submitting twice.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pl {

class Store;

// Passed through to sbatch; empty or 0: the cluster's default.
struct SlurmOptions {
  std::string partition;
  std::string time;
  int cpus_per_task = 0;
  int gpus_per_task = 0;
};

// One run of the sweep, as the coordinator needs it.
struct SlurmRun {
  std::string id;
  std::string label;                        // "run 2/3 <id>"
  std::string config;                       // the resolved config: "key: value" lines
  std::map<std::string, std::string> keys;  // stage -> today's key
};

struct SlurmResult {
  int failed = 0;
  bool interrupted = false;  // stopped by the user; the jobs keep running
};

// Runs (or follows) every run of the sweep that is not done on the cluster
// and returns when each is done or failed, or when *stop becomes true.
// `program` is the pipeline-run binary the tasks execute.
SlurmResult run_on_slurm(Store& store, const std::string& root, const std::string& sweep,
                         const std::vector<SlurmRun>& runs, const SlurmOptions& options,
                         bool retry_failed, const std::string& program,
                         const std::atomic<bool>& stop);

// The slurm_tasks table (created when absent, in older databases too).
void ensure_slurm_table(Store& store);

// One array task as squeue lists it.
struct SlurmTaskState {
  std::string job, task, state, reason;
};
// Parses `squeue -h -r -o "%F|%K|%T|%r"` output.
std::vector<SlurmTaskState> parse_squeue(const std::string& text);
// True while a task in this state may still run (pending, running,
// completing, requeued, suspended...).
bool slurm_state_alive(const std::string& state);

// The task spec: what a task needs to run one run without the database.
struct TaskSpec {
  std::string run;
  std::string root;
  std::string label;
  std::vector<std::string> config;          // "key: value" lines
  std::map<std::string, std::string> done;  // stage -> key the database has it done with
};
std::string format_task_spec(const TaskSpec& spec);
// Throws std::runtime_error naming the file when it is not a spec.
TaskSpec parse_task_spec(const std::string& text, const std::string& file);

}  // namespace pl
