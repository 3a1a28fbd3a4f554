#include "pipeline/runner.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>

#include "pipeline/config.h"
#include "pipeline/hash.h"
#include "pipeline/log.h"
#include "pipeline/paths.h"
#include "pipeline/store.h"
#include "stages/ingest.h"
#include "stages/report.h"
#include "stages/stages.h"

namespace pl {
namespace {

// Bump a stage's version when its code changes what it computes; runs done
// with the old code then redo that stage.
constexpr const char* kTrainVersion = "train-1";
constexpr const char* kEvaluateVersion = "evaluate-1";
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

std::map<std::string, std::string> params_of(const RunConfig& config) {
  std::map<std::string, std::string> params;
  for (const auto& [key, value] : config.values()) params[key] = value_text(value);
  ModelConfig model = config.model();
  params["model.width"] = std::to_string(model.hidden.front());
  params["model.depth"] = std::to_string(model.hidden.size());
  params["model.architecture"] = config.architecture();
  return params;
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
      if (status == "done") {
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
  // Runs the stages of one point; false when the run failed.
  bool run_one(const RunConfig& config, const std::string& label) {
    std::string dir = root_ + "/" + config.id();
    make_dirs(dir + "/images");
    write_file_atomic(dir + "/config.yaml", config.canonical());
    set_log_file(dir + "/log.txt");
    info("{}: {} in {}", label, config.architecture(), dir);
    try {
      const CifarData& data = ingest(config);
      StageContext context{config, data, store_, dir, root_ + "/cache", &g_stop};
      Keys keys = stage_keys(config, data.key);
      stage(config, "train", keys.train, [&] {
        if (train_stage(context) == TrainOutcome::kInterrupted) throw Interrupted();
      });
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
      error("{}: failed: {}", label, e.what());
      store_.mark_finished(config.id(), "failed", e.what());
      set_log_file("");
      return false;
    }
  }

  // Runs `body` unless the stage is recorded done with this key.
  void stage(const RunConfig& config, const std::string& name, const std::string& key,
             const std::function<void()>& body) {
    if (store_.stage_done(config.id(), name, key)) {
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

int run_experiment(const RunOptions& options) {
  LoadOptions load;
  load.overrides = options.overrides;
  if (options.force) load.max_points = INT64_MAX;
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
    store = Store::open(root);
  } catch (const std::exception& e) {
    error("{}", e.what());
    return 2;
  }
  info("sweep '{}': {} runs from {}, output in {}", experiment.name, experiment.runs.size(),
       experiment.file, root);
  for (const auto& item : data) {
    if (!item.second->from_cache) save_cifar_cache(*item.second, cache_dir);
  }
  std::vector<std::string> ids;
  for (const RunConfig& run : experiment.runs) {
    ids.push_back(run.id());
    store->put_run(run.id(), run.canonical(), params_of(run));
  }
  store->put_sweep({experiment.name, experiment.file, experiment.description, ""}, ids);

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
  }

  ReportFiles report = write_report(*store, root, experiment.name);
  info("report: {}", report.html);
  if (status == 130) {
    warn("stopped; run the same command again to resume");
  } else if (failed > 0) {
    warn("{} of {} runs failed; `pipeline runs --sweep {}` lists them", failed,
         experiment.runs.size(), experiment.name);
  } else {
    info("sweep '{}': all {} runs done", experiment.name, experiment.runs.size());
  }
  return status;
}

}  // namespace pl
