#include "pipeline/runner.h"

#include <fmt/format.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "pipeline/config.h"
#include "pipeline/h5file.h"
#include "pipeline/hash.h"
#include "pipeline/log.h"
#include "pipeline/paths.h"
#include "pipeline/slurm.h"
#include "pipeline/store.h"
#include "stages/cloud.h"
#include "stages/ingest.h"
#include "stages/picture.h"
#include "stages/report.h"
#include "stages/stages.h"

namespace pl {
namespace {

// Bump a stage's version when its code changes what it computes; runs done
// with the old code then redo that stage.
constexpr const char* kTrainVersion = "train-1";
constexpr const char* kEvaluateVersion = "evaluate-2";
constexpr const char* kModifyVersion = "modify-2";

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

class Interrupted : public std::exception {};

}  // namespace

StageKeys stage_keys(const RunConfig& config, const std::string& data_key) {
  StageKeys keys;
  keys.train = hash_text(fmt::format("{}\n{}\n{}{}", kTrainVersion, data_key,
                                     config.section_text("model"), config.section_text("train")));
  keys.evaluate = hash_text(
      fmt::format("{}\n{}\n{}", kEvaluateVersion, keys.train, config.section_text("evaluate")));
  keys.modify = hash_text(
      fmt::format("{}\n{}\n{}", kModifyVersion, keys.train, config.section_text("modify")));
  return keys;
}

namespace {

// A failure's reason as a person reads it: LibTorch's messages carry a C++
// stack trace, and running out of memory deserves the fix.
std::string failure_reason(std::string what) {
  std::size_t trace = what.find("\nException raised from");
  if (trace != std::string::npos) what.resize(trace);
  trace = what.find("Exception raised from");
  if (trace != std::string::npos) what.resize(trace);
  while (!what.empty() && std::isspace(static_cast<unsigned char>(what.back()))) what.pop_back();
  if (what.size() > 600) what = what.substr(0, 600) + "...";
  if (what.find("can't allocate memory") != std::string::npos ||
      what.find("std::bad_alloc") != std::string::npos) {
    what += " (out of memory: lower model.hidden or train.batch_size, or free memory)";
  }
  return what;
}

std::map<std::string, std::string> params_of(const RunConfig& config, int64_t input) {
  std::map<std::string, std::string> params;
  for (const auto& [key, value] : config.values()) params[key] = value_text(value);
  ModelConfig model = config.model();
  params["model.width"] = std::to_string(model.hidden.front());
  params["model.depth"] = std::to_string(model.hidden.size());
  params["model.architecture"] = config.architecture(input);
  return params;
}

// Runs `body` unless the stage is recorded done with this key (or `redo`).
void run_stage(RunRecorder& recorder, const RunConfig& config, const std::string& name,
               const std::string& key, const std::function<void()>& body, bool redo = false) {
  if (!redo && recorder.stage_done(config.id(), name, key)) {
    info("{}: done earlier, skipped", name);
    return;
  }
  info("{}: started", name);
  recorder.stage_started(config.id(), name, key);
  auto start = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  try {
    body();
  } catch (const Interrupted&) {
    recorder.stage_finished(config.id(), name, "interrupted", seconds(), "stopped by the user");
    throw;
  } catch (const std::exception& e) {
    recorder.stage_finished(config.id(), name, "failed", seconds(), e.what());
    throw;
  }
  recorder.stage_finished(config.id(), name, "done", seconds(), "");
  info("{}: finished in {:.1f} s", name, seconds());
}

// Why a finished run's checkpoint cannot be used ("" when it can): missing,
// not the file that was written, or not readable as a checkpoint.
std::string checkpoint_problem(const std::string& path, const std::string& recorded) {
  if (!std::filesystem::exists(path)) return "missing";
  if (!recorded.empty() && hash_file(path) != recorded) {
    return "its checksum differs from the one recorded";
  }
  try {
    H5Reader in(path);
    if (!in.has_attr("format")) return "not a pipeline checkpoint";
  } catch (const std::exception& e) {
    return "unreadable (truncated or corrupt)";
  }
  return "";
}

// A run's data: CIFAR-10 images, or a point cloud (then `images` is empty).
struct RunData {
  CifarData images;
  std::unique_ptr<Cloud> cloud;

  const std::string& key() const { return cloud ? cloud->key : images.key; }
};
using DataMap = std::map<std::string, std::unique_ptr<RunData>>;

std::string data_slice(const RunConfig& config) {
  return config.section_text("data") + config.data().dir;
}

// Reads every data config of the sweep before anything is written, so bad
// data stops the command with the store untouched.
DataMap read_data(const Experiment& experiment, const std::string& cache_dir) {
  DataMap data;
  for (const RunConfig& run : experiment.runs) {
    std::string slice = data_slice(run);
    if (data.count(slice) != 0) continue;
    DataConfig config = run.data();
    auto start = std::chrono::steady_clock::now();
    auto seconds = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    auto item = std::make_unique<RunData>();
    if (config.source == "cloud" || config.source == "csv") {
      item->cloud = std::make_unique<Cloud>(ingest_cloud(config));
      info("ingest: {}, {:.2f} s", item->cloud->description, seconds());
    } else {
      CifarData& set = item->images;
      set = ingest_cifar(config, cache_dir);
      info("ingest: {} training and {} test images of class '{}', {} foreign, {:.2f} s{}",
           set.train.count, set.test.count, config.class_name, set.foreign.count, seconds(),
           set.from_cache ? " (cached)" : "");
      if (set.train.count == 0 || set.test.count == 0) {
        throw DataError(
            fmt::format("class '{}' has no images in {}", config.class_name, config.dir));
      }
    }
    data.emplace(slice, std::move(item));
  }
  // What a point cloud's net can and cannot do is checked against its data.
  for (const RunConfig& run : experiment.runs) {
    const Cloud* cloud = data.at(data_slice(run))->cloud.get();
    if (cloud == nullptr) continue;
    ModelConfig model = run.model();
    if (model.bottleneck >= cloud->dim) {
      throw DataError(fmt::format(
          "run {}: model.bottleneck {} is not narrower than the data's {} columns ({}); choose "
          "fewer units",
          run.id(), model.bottleneck, cloud->dim, cloud->description));
    }
    std::string problem = float32_problem(*cloud, model.standardize);
    if (!problem.empty()) throw DataError(fmt::format("run {}: {}", run.id(), problem));
    if (cloud->closed && model.bottleneck == 1) {
      warn(
          "run {}: the cloud is a closed curve ({}); a continuous one-unit bottleneck cannot "
          "follow it and must tear it somewhere, so its fit measures the tear, not a nonlinear "
          "principal component; use data.angle below 360",
          run.id(), cloud->description);
    }
  }
  // The user's pictures are checked now too, so a bad one stops nothing half-way.
  for (const RunConfig& run : experiment.runs) {
    ModifyConfig modify = run.modify();
    if (modify.images.empty()) continue;
    for (const std::string& file : picture_files(modify.images))
      load_picture(file, parse_fit(modify.fit));
  }
  return data;
}

class SweepRunner {
 public:
  SweepRunner(const Experiment& experiment, const RunOptions& options, Store& store,
              std::string root, DataMap& data)
      : experiment_(experiment),
        options_(options),
        store_(store),
        root_(std::move(root)),
        data_(data) {}

  // Returns the number of failed runs; throws Interrupted.
  int run_all() {
    int failed = 0;
    for (std::size_t i = 0; i < experiment_.runs.size(); ++i) {
      const RunConfig& config = experiment_.runs[i];
      if (g_stop.load()) throw Interrupted();
      std::string status = store_.run_status(config.id());
      std::string label = fmt::format("run {}/{} {}", i + 1, experiment_.runs.size(), config.id());
      if (status == "done" && up_to_date(config)) {
        info("{}: done earlier, skipped", label);
        continue;
      }
      if (status == "failed" && !options_.retry_failed) {
        warn("{}: failed earlier, skipped (rerun with --retry-failed to try again)", label);
        ++failed;
        continue;
      }
      if (!store_.claim_run(config.id())) {
        info("{}: being run by another process, skipped", label);
        continue;
      }
      if (!run_one(config, label)) ++failed;
    }
    return failed;
  }

 private:
  // True when every stage of a done run was recorded with today's key (a
  // stage whose code or settings changed since runs again) and its
  // checkpoint is still there and readable.
  bool up_to_date(const RunConfig& config) {
    StageKeys keys = stage_keys(config, ingest(config).key());
    return store_.stage_done(config.id(), "train", keys.train) &&
           store_.stage_done(config.id(), "evaluate", keys.evaluate) &&
           store_.stage_done(config.id(), "modify", keys.modify) &&
           // A checkpoint since deleted or damaged is trained again (its
           // checksum is compared in run_one, which reads the whole file).
           checkpoint_problem(checkpoint_path(root_ + "/" + config.id()), "").empty();
  }

  // Runs the stages of one point; false when the run failed.
  bool run_one(const RunConfig& config, const std::string& label) {
    const RunData& data = ingest(config);
    RunOutcome outcome =
        run_stages(config, data.images, data.cloud.get(), store_, root_, label, &g_stop);
    // The heap is kept between training steps (main); between runs it goes
    // back, so a sweep does not hold its largest net's memory to the end.
    malloc_trim(0);
    if (outcome == RunOutcome::kInterrupted) throw Interrupted();
    return outcome == RunOutcome::kDone;
  }

  // Data is read once per data config and shared by the runs that use it.
  const RunData& ingest(const RunConfig& config) {
    auto found = data_.find(data_slice(config));
    if (found == data_.end()) throw std::logic_error("data was not read before the runs");
    return *found->second;
  }

  const Experiment& experiment_;
  const RunOptions& options_;
  Store& store_;
  std::string root_;
  DataMap& data_;
};

// What the Slurm coordinator needs of each run.
std::vector<SlurmRun> slurm_runs(const Experiment& experiment, const DataMap& data) {
  std::vector<SlurmRun> runs;
  for (std::size_t i = 0; i < experiment.runs.size(); ++i) {
    const RunConfig& config = experiment.runs[i];
    StageKeys keys = stage_keys(config, data.at(data_slice(config))->key());
    runs.push_back({config.id(),
                    fmt::format("run {}/{} {}", i + 1, experiment.runs.size(), config.id()),
                    config.canonical(),
                    {{"train", keys.train}, {"evaluate", keys.evaluate}, {"modify", keys.modify}}});
  }
  return runs;
}

// This program's path, for the Slurm tasks to run.
std::string this_program() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("pipeline-run") : self.string();
}

}  // namespace

RunOutcome run_stages(const RunConfig& config, const CifarData& data, const Cloud* cloud,
                      RunRecorder& recorder, const std::string& root, const std::string& label,
                      const std::atomic<bool>* stop) {
  std::string dir = root + "/" + config.id();
  try {
    make_dirs(dir + "/images");
    write_file_atomic(dir + "/config.yaml", config.canonical());
    set_log_file(dir + "/log.txt");
    info("{}: {} in {}", label, config.architecture(cloud != nullptr ? cloud->dim : 0), dir);
    StageContext context{config, data, recorder, dir, root + "/cache", stop, cloud};
    StageKeys keys = stage_keys(config, context.data_key());
    // A finished training whose checkpoint is gone, or is not the file it
    // wrote, trains again (to the same weights) rather than failing every
    // later stage; train_stage sets the damaged file aside.
    bool redo_train = false;
    if (recorder.stage_done(config.id(), "train", keys.train)) {
      std::string checkpoint = checkpoint_path(context);
      std::string why =
          checkpoint_problem(checkpoint, recorder.artifact_checksum(config.id(), checkpoint));
      if (!why.empty()) {
        warn("{}: {}; training again", checkpoint, why);
        redo_train = true;
      }
    }
    run_stage(
        recorder, config, "train", keys.train,
        [&] {
          if (train_stage(context) == TrainOutcome::kInterrupted) throw Interrupted();
        },
        redo_train);
    run_stage(recorder, config, "evaluate", keys.evaluate, [&] {
      recorder.clear_metrics(config.id(), "evaluate");
      evaluate_stage(context);
    });
    run_stage(recorder, config, "modify", keys.modify, [&] {
      recorder.clear_metrics(config.id(), "modify");
      modify_stage(context);
    });
    recorder.mark_finished(config.id(), "done", "");
    info("{}: done", label);
    set_log_file("");
    return RunOutcome::kDone;
  } catch (const Interrupted&) {
    recorder.mark_finished(config.id(), "interrupted", "stopped by the user");
    set_log_file("");
    return RunOutcome::kInterrupted;
  } catch (const std::exception& e) {
    std::string reason = failure_reason(e.what());
    error("{}: failed: {}", label, reason);
    recorder.mark_finished(config.id(), "failed", reason);
    set_log_file("");
    return RunOutcome::kFailed;
  }
}

int modify_command(const ModifyOptions& options) {
  try {
    std::string root = resolve_root(options.root);
    auto store = Store::open(root, true);
    std::vector<std::string> ids;
    for (const RunRow& run : store->runs("")) {
      if (run.id.rfind(options.run, 0) == 0) ids.push_back(run.id);
    }
    if (ids.size() != 1) {
      throw std::runtime_error(
          fmt::format("run '{}': {}", options.run,
                      ids.empty() ? "no run id starts with it" : "ambiguous; give more of the id"));
    }
    // The stored config is "key: value" lines, the same form --set takes.
    std::vector<std::string> overrides;
    std::istringstream lines(store->run_config(ids[0]));
    for (std::string line; std::getline(lines, line);) {
      std::size_t colon = line.find(": ");
      if (colon != std::string::npos)
        overrides.push_back(line.substr(0, colon) + "=" + line.substr(colon + 2));
    }
    RunConfig config = make_run_config(overrides);
    if (config.data().source != "cifar10") {
      throw std::runtime_error(fmt::format(
          "run {} was trained on a point cloud ({}), not on pictures; `pipeline modify` needs a "
          "run of a CIFAR-10 sweep",
          ids[0], config.data().source));
    }
    Tile picture = load_picture(options.image, parse_fit(options.fit));
    std::vector<std::vector<Tile>> steps =
        iterate_pictures(config, checkpoint_path(root + "/" + ids[0]), {picture}, options.steps);
    std::vector<Tile> strip;
    for (const auto& step : steps) strip.push_back(step[0]);
    write_grid_png(options.out, strip, static_cast<int>(strip.size()), 4);
    info("{}: {} and its {} iterations through run {}", options.out, options.image, options.steps,
         ids[0]);
    return 0;
  } catch (const std::exception& e) {
    error("{}", e.what());
    return 2;
  }
}

int run_experiment(const RunOptions& options) {
  if (options.jobs > 1 && options.executor == "slurm") {
    error(
        "--jobs runs points side by side on this machine; with --executor slurm the cluster "
        "does that: drop --jobs");
    return 2;
  }
  LoadOptions load;
  load.overrides = options.overrides;
  if (options.force) load.max_points = kMaxForcedPoints;
  Experiment experiment;
  try {
    experiment = load_experiment(options.file, load);
  } catch (const ConfigError& e) {
    error("{}", e.what());
    return 2;
  }

  // Bad data is reported before anything is written.
  std::string root = resolve_root(options.root);
  std::string cache_dir = root + "/cache";
  DataMap data;
  try {
    data = read_data(experiment, cache_dir);
  } catch (const std::exception& e) {
    error("{}", e.what());
    return 2;
  }

  // --jobs: the other processes start here, before any of them opens the
  // database or LibTorch starts its threads. Each claims runs as a second
  // `pipeline run` would; the first waits for the rest and writes the report.
  int job = 0;
  std::vector<pid_t> workers;
  if (options.jobs > 1) {
    int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    int threads = std::max(1, cores / options.jobs);
    if (options.jobs > cores) {
      warn("--jobs {} on {} cores: the jobs share cores; --jobs {} would not", options.jobs, cores,
           cores);
    }
    info("{} jobs side by side, {} thread{} each", options.jobs, threads, threads == 1 ? "" : "s");
    set_thread_limit(threads);
    std::fflush(nullptr);
    for (int j = 1; j < options.jobs; ++j) {
      pid_t pid = fork();
      if (pid < 0) {
        warn("job {} could not be started ({}); going on with {}", j + 1, std::strerror(errno), j);
        break;
      }
      if (pid == 0) {
        job = j;
        workers.clear();
        break;
      }
      workers.push_back(pid);
    }
    set_log_tag(fmt::format("[job {}] ", job + 1));
  }

  std::unique_ptr<Store> store;
  try {
    // A read-only output folder is reported now, before any training.
    make_dirs(root);
    check_writable(root);
    store = Store::open(root);
  } catch (const std::exception& e) {
    error("{}", e.what());
    return 2;
  }
  if (job == 0) {
    info("sweep '{}': {} run{} from {}, output in {}", experiment.name, experiment.runs.size(),
         experiment.runs.size() == 1 ? "" : "s", experiment.file, root);
  }
  for (const auto& item : data) {
    if (job != 0) break;
    try {
      const RunData& run_data = *item.second;
      if (!run_data.cloud && !run_data.images.from_cache)
        save_cifar_cache(run_data.images, cache_dir);
    } catch (const std::exception& e) {
      warn("the data cache was not written ({}); the next run reads the files again", e.what());
    }
  }
  try {
    std::vector<std::string> ids;
    for (const RunConfig& run : experiment.runs) {
      ids.push_back(run.id());
      const Cloud* cloud = data.at(data_slice(run))->cloud.get();
      store->put_run(run.id(), run.canonical(), params_of(run, cloud != nullptr ? cloud->dim : 0));
    }
    store->put_sweep({experiment.name, experiment.file, experiment.description, ""}, ids);
  } catch (const std::exception& e) {
    error("{}", e.what());
    return 2;
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  SweepRunner runner(experiment, options, *store, root, data);
  int failed = 0;
  int status = 0;
  try {
    if (options.executor == "slurm") {
      SlurmResult result =
          run_on_slurm(*store, root, experiment.name, slurm_runs(experiment, data), options.slurm,
                       options.retry_failed, this_program(), g_stop);
      failed = result.failed;
      if (result.interrupted) throw Interrupted();
    } else {
      failed = runner.run_all();
    }
    status = failed > 0 ? 1 : 0;
  } catch (const Interrupted&) {
    status = 130;
  } catch (const std::exception& e) {
    // Slurm could not be reached or refused the jobs, or the store itself
    // failed (a lock held too long, the disk full): what was recorded stays
    // consistent, and the next run resumes from it.
    error("{}", e.what());
    status = 1;
    if (options.executor == "slurm") failed = -1;
  }
  if (job != 0) return status;  // the first job reports for all
  for (pid_t pid : workers) {
    int wait_status = 0;
    while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
    }
    int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
    if (code == 130 || code > 128) status = 130;
    if (code == 1 && status == 0) status = 1;
    if (code == 2 && status == 0) status = 2;
  }
  if (!workers.empty()) {
    failed = 0;
    for (const RunRow& run : store->runs(experiment.name)) failed += run.status == "failed";
    if (failed > 0 && status == 0) status = 1;
  }

  try {
    info("report: {}", write_report(*store, root, experiment.name).html);
  } catch (const std::exception& e) {
    warn("the report was not written: {}; `pipeline report {}` tries again", e.what(),
         experiment.name);
  }

  int done = 0;
  try {
    for (const RunRow& run : store->runs(experiment.name)) done += run.status == "done";
  } catch (const std::exception& e) {
    error("{}", e.what());
    return status == 0 ? 1 : status;
  }
  int total = static_cast<int>(experiment.runs.size());
  if (failed < 0) {
    warn(
        "the Slurm coordinator stopped on the error above; fix it and run the same command "
        "again (jobs already submitted keep running and are followed then)");
  } else if (status == 130) {
    warn("stopped; run the same command again to resume");
  } else if (failed > 0) {
    warn("{} of {} runs failed; `pipeline runs --sweep {}` lists them", failed, total,
         experiment.name);
  } else if (done < total) {
    info(
        "sweep '{}': {} of {} runs done; the rest are being run by another process "
        "(`pipeline status {}`)",
        experiment.name, done, total, experiment.name);
  } else {
    info("sweep '{}': all {} run{} done", experiment.name, total, total == 1 ? "" : "s");
  }
  return status;
}

}  // namespace pl
