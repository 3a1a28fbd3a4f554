#include "pipeline/task.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include "pipeline/config.h"
#include "pipeline/h5file.h"
#include "pipeline/journal.h"
#include "pipeline/log.h"
#include "pipeline/paths.h"
#include "pipeline/runner.h"
#include "pipeline/slurm.h"
#include "stages/cloud.h"
#include "stages/ingest.h"

namespace pl {
namespace {

std::atomic<bool> g_task_stop{false};

void on_task_signal(int) { g_task_stop.store(true); }

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// The epoch of the checkpoint the run will resume from (0: none readable).
int64_t checkpoint_epoch(const std::string& dir) {
  for (const char* name : {"/checkpoint.h5", "/checkpoint.h5.prev"}) {
    std::string path = dir + name;
    if (!std::filesystem::exists(path)) continue;
    try {
      H5Reader reader(path);
      if (reader.has_attr("epoch")) return reader.attr_int("epoch");
    } catch (const std::exception&) {
      // Unreadable: training sets it aside and says so.
    }
  }
  return 0;
}

// One task per run folder at a time: a task of an earlier submission that
// is still writing its last checkpoint is waited for (up to two minutes).
int lock_run_dir(const std::string& dir) {
  std::string path = dir + "/task.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  for (int i = 0; i < 1200; ++i) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    if (i == 0) info("{}: another task holds the run folder; waiting for it", path);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::close(fd);
  throw std::runtime_error(fmt::format("{}: another task still holds the run folder", path));
}

}  // namespace

int task_command(const std::string& run_dir) {
  std::string spec_path = run_dir + "/task.spec";
  TaskSpec spec;
  RunConfig config;
  try {
    spec = parse_task_spec(read_file(spec_path), spec_path);
    std::vector<std::string> overrides;
    for (const std::string& line : spec.config) {
      std::size_t colon = line.find(": ");
      if (colon != std::string::npos)
        overrides.push_back(line.substr(0, colon) + "=" + line.substr(colon + 2));
    }
    // train.threads 0 means every core: on a cluster node, the task's cores.
    std::string cpus = env("SLURM_CPUS_PER_TASK");
    for (std::string& o : overrides) {
      if (o == "train.threads=0" && !cpus.empty()) o = "train.threads=" + cpus;
    }
    config = make_run_config(overrides);
    if (config.id() != spec.run) {
      throw std::runtime_error(fmt::format(
          "{}: the config hashes to run {}, not {}; written by another version of pipeline?",
          spec_path, config.id(), spec.run));
    }
  } catch (const std::exception& e) {
    error("{}", e.what());
    return 2;
  }

  int lock = -1;
  std::unique_ptr<JournalRecorder> opened;
  try {
    lock = lock_run_dir(run_dir);
    opened = std::make_unique<JournalRecorder>(run_dir + "/journal.jsonl", spec.done);
  } catch (const std::exception& e) {
    error("{}", e.what());
    return 1;
  }
  JournalRecorder& journal = *opened;
  std::string job = env("SLURM_ARRAY_JOB_ID");
  std::string task = env("SLURM_ARRAY_TASK_ID");
  if (job.empty()) job = env("SLURM_JOB_ID");
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  int64_t resume_epoch = checkpoint_epoch(run_dir);
  journal.attempt(
      {{"job", job},
       {"task", task},
       {"slurm_job_id", env("SLURM_JOB_ID")},
       {"restart", env("SLURM_RESTART_COUNT").empty() ? "0" : env("SLURM_RESTART_COUNT")},
       {"host", host},
       {"pid", std::to_string(getpid())},
       {"checkpoint_epoch", std::to_string(resume_epoch)}},
      {"restart", "pid", "checkpoint_epoch"});

  // scancel, preemption and the time limit send SIGTERM: training stops at
  // the next batch with a checkpoint, and the coordinator submits it again.
  std::signal(SIGTERM, on_task_signal);
  std::signal(SIGINT, on_task_signal);
  info("Slurm task {}_{} on {}: run {}{}", job, task, host, spec.run,
       resume_epoch > 0 ? fmt::format(", checkpoint at epoch {}", resume_epoch) : "");
  RunOutcome outcome = RunOutcome::kFailed;
  try {
    DataConfig data_config = config.data();
    CifarData data;
    std::unique_ptr<Cloud> cloud;
    if (data_config.source == "cloud" || data_config.source == "csv") {
      cloud = std::make_unique<Cloud>(ingest_cloud(data_config));
    } else {
      data = ingest_cifar(data_config, spec.root + "/cache");
    }
    outcome = run_stages(config, data, cloud.get(), journal, spec.root, spec.label, &g_task_stop);
  } catch (const std::exception& e) {
    error("{}: failed: {}", spec.label, e.what());
    journal.mark_finished(spec.run, "failed", e.what());
  }
  ::close(lock);
  switch (outcome) {
    case RunOutcome::kDone:
      return 0;
    case RunOutcome::kInterrupted:
      return 143;
    default:
      return 1;
  }
}

}  // namespace pl
