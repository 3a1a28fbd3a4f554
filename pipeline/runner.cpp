#include "pipeline/runner.h"

#include <fmt/format.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>

#include "pipeline/config.h"
#include "pipeline/h5file.h"
#include "pipeline/hash.h"
#include "pipeline/log.h"
#include "pipeline/paths.h"
#include "pipeline/store.h"
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

struct Keys {
  std::string train, evaluate, modify;
};

Keys stage_keys(const RunConfig& config, const std::string& data_key) {
  Keys keys;
  keys.train = hash_text(fmt::format("{}\n{}\n{}{}", kTrainVersion, data_key,
                                     config.section_text("model"), config.section_text("train")));
  keys.evaluate = hash_text(
      fmt::format("{}\n{}\n{}", kEvaluateVersion, keys.train, config.section_text("evaluate")));
  keys.modify = hash_text(
      fmt::format("{}\n{}\n{}", kModifyVersion, keys.train, config.section_text("modify")));
  return keys;
}

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

std::map<std::string, std::string> params_of(const RunConfig& config) {
  std::map<std::string, std::string> params;
  for (const auto& [key, value] : config.values()) params[key] = value_text(value);
  ModelConfig model = config.model();
  params["model.width"] = std::to_string(model.hidden.front());
  params["model.depth"] = std::to_string(model.hidden.size());
  params["model.architecture"] = config.architecture();
  return params;
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

using DataMap = std::map<std::string, std::unique_ptr<CifarData>>;

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
    auto set = std::make_unique<CifarData>(ingest_cifar(config, cache_dir));
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    info("ingest: {} training and {} test images of class '{}', {} foreign, {:.2f} s{}",
         set->train.count, set->test.count, config.class_name, set->foreign.count, seconds,
         set->from_cache ? " (cached)" : "");
    if (set->train.count == 0 || set->test.count == 0) {
      throw DataError(fmt::format("class '{}' has no images in {}", config.class_name, config.dir));
    }
    data.emplace(slice, std::move(set));
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
    Keys keys = stage_keys(config, ingest(config).key);
    return store_.stage_done(config.id(), "train", keys.train) &&
           store_.stage_done(config.id(), "evaluate", keys.evaluate) &&
           store_.stage_done(config.id(), "modify", keys.modify) &&
           // A checkpoint since deleted or damaged is trained again (its
           // checksum is compared in run_one, which reads the whole file).
           checkpoint_problem(root_ + "/" + config.id() + "/checkpoint.h5", "").empty();
  }

  // Runs the stages of one point; false when the run failed.
  bool run_one(const RunConfig& config, const std::string& label) {
    std::string dir = root_ + "/" + config.id();
    try {
      make_dirs(dir + "/images");
      write_file_atomic(dir + "/config.yaml", config.canonical());
      set_log_file(dir + "/log.txt");
      info("{}: {} in {}", label, config.architecture(), dir);
      const CifarData& data = ingest(config);
      StageContext context{config, data, store_, dir, root_ + "/cache", &g_stop};
      Keys keys = stage_keys(config, data.key);
      // A finished training whose checkpoint is gone, or is not the file it
      // wrote, trains again (to the same weights) rather than failing every
      // later stage; train_stage sets the damaged file aside.
      bool redo_train = false;
      if (store_.stage_done(config.id(), "train", keys.train)) {
        std::string checkpoint = checkpoint_path(context);
        std::string why =
            checkpoint_problem(checkpoint, store_.artifact_checksum(config.id(), checkpoint));
        if (!why.empty()) {
          warn("{}: {}; training again", checkpoint, why);
          redo_train = true;
        }
      }
      stage(
          config, "train", keys.train,
          [&] {
            if (train_stage(context) == TrainOutcome::kInterrupted) throw Interrupted();
          },
          redo_train);
      stage(config, "evaluate", keys.evaluate, [&] {
        store_.clear_metrics(config.id(), "evaluate");
        evaluate_stage(context);
      });
      stage(config, "modify", keys.modify, [&] {
        store_.clear_metrics(config.id(), "modify");
        modify_stage(context);
      });
      store_.mark_finished(config.id(), "done", "");
      info("{}: done", label);
      set_log_file("");
      return true;
    } catch (const Interrupted&) {
      store_.mark_finished(config.id(), "interrupted", "stopped by the user");
      set_log_file("");
      throw;
    } catch (const std::exception& e) {
      std::string reason = failure_reason(e.what());
      error("{}: failed: {}", label, reason);
      store_.mark_finished(config.id(), "failed", reason);
      set_log_file("");
      return false;
    }
  }

  // Runs `body` unless the stage is recorded done with this key (or `redo`).
  void stage(const RunConfig& config, const std::string& name, const std::string& key,
             const std::function<void()>& body, bool redo = false) {
    if (!redo && store_.stage_done(config.id(), name, key)) {
      info("{}: done earlier, skipped", name);
      return;
    }
    info("{}: started", name);
    store_.stage_started(config.id(), name, key);
    auto start = std::chrono::steady_clock::now();
    auto seconds = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    try {
      body();
    } catch (const Interrupted&) {
      store_.stage_finished(config.id(), name, "interrupted", seconds(), "stopped by the user");
      throw;
    } catch (const std::exception& e) {
      store_.stage_finished(config.id(), name, "failed", seconds(), e.what());
      throw;
    }
    store_.stage_finished(config.id(), name, "done", seconds(), "");
    info("{}: finished in {:.1f} s", name, seconds());
  }

  // Data is read once per data config and shared by the runs that use it.
  const CifarData& ingest(const RunConfig& config) {
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

}  // namespace

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
    Tile picture = load_picture(options.image, parse_fit(options.fit));
    std::vector<std::vector<Tile>> steps =
        iterate_pictures(config, root + "/" + ids[0] + "/checkpoint.h5", {picture}, options.steps);
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
  info("sweep '{}': {} run{} from {}, output in {}", experiment.name, experiment.runs.size(),
       experiment.runs.size() == 1 ? "" : "s", experiment.file, root);
  for (const auto& item : data) {
    try {
      if (!item.second->from_cache) save_cifar_cache(*item.second, cache_dir);
    } catch (const std::exception& e) {
      warn("the data cache was not written ({}); the next run reads the files again", e.what());
    }
  }
  try {
    std::vector<std::string> ids;
    for (const RunConfig& run : experiment.runs) {
      ids.push_back(run.id());
      store->put_run(run.id(), run.canonical(), params_of(run));
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
    failed = runner.run_all();
    status = failed > 0 ? 1 : 0;
  } catch (const Interrupted&) {
    status = 130;
  } catch (const std::exception& e) {
    // The store itself failed (a lock held too long, the disk full): what
    // was recorded stays consistent, and the next run resumes from it.
    error("{}", e.what());
    status = 1;
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
  if (status == 130) {
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
