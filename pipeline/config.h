// Experiment files: loading, validation and the resolved config of each run.
//
// An experiment file holds `name`, `description`, the config sections of
// schema.h (the base config) and an optional `sweep` block:
//
//   sweep:
//     grid:                     # cross product over any config keys
//       model.hidden: [256, 512, [1024, 256]]
//     points:                   # explicit points, each applied to the base
//       - {model.hidden: [4096], train.epochs: 5}
//
// load_experiment() reports every problem of a file at once, as a ConfigError
// whose diagnostics name the file, line, key path, value found and what is
// accepted. It never touches the run store.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace pl {

using Value = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>>;

// Canonical text of a value: the same value always gives the same text.
std::string value_text(const Value& value);

struct Diagnostic {
  std::string file;
  int line = 0;  // 1-based; 0 when the problem has no line (a default, --set)
  int column = 0;
  std::string key;
  std::string message;

  std::string to_string() const;
};

class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<Diagnostic> diagnostics);
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
};

struct DataConfig {
  std::string source;
  std::string dir;
  std::string class_name;
  int class_index = 4;
  int64_t train_limit = 0;
  int64_t test_limit = 0;
  // Synthetic point clouds (source "cloud"): see stages/cloud.h.
  std::string shape;
  int64_t points = 1000;
  double noise = 0.05;
  int64_t seed = 0;
  int64_t dim = 2;
  double angle = 180;  // arc, degrees
  double turns = 1.5;  // spiral, helix
  double rotation = 30;
  double ratio = 0.3;  // ellipse
  std::string file;    // source "csv"
};

struct ModelConfig {
  int64_t input = 3072;
  std::vector<int64_t> hidden;
  int64_t bottleneck = 96;
  std::string activation;
  std::string output_activation;
  std::string bottleneck_activation;  // resolved: never "same"
  std::string standardize = "none";   // none, center or scale
};

struct TrainConfig {
  int64_t epochs = 0;
  int64_t batch_size = 0;
  double lr = 0;
  std::string optimizer;
  double momentum = 0;
  double weight_decay = 0;
  int64_t seed = 0;
  int threads = 0;
  std::string device;
  int64_t checkpoint_every = 0;
};

struct EvaluateConfig {
  bool pca = true;
};

struct ModifyConfig {
  int64_t steps = 20;
  std::vector<int64_t> record;
  int64_t foreign = 1000;
  int64_t fd_components = 64;
  int64_t attractor_sample = 200;
  std::string images;  // a folder of the user's pictures, or ""
  std::string fit;     // crop or letterbox
};

// The resolved config of one run: every schema key with its value.
class RunConfig {
 public:
  RunConfig() = default;
  explicit RunConfig(std::map<std::string, Value> values);

  const std::map<std::string, Value>& values() const { return values_; }
  const std::string& id() const { return id_; }

  // "key: value" lines, sorted. `identity_only` keeps what the run id hashes:
  // the data, model and train keys that change the trained net (not
  // execution settings such as threads, nor evaluate/modify settings).
  std::string canonical(bool identity_only = false) const;
  // Canonical text of the keys under `section` ("train"), identity keys only.
  std::string section_text(const std::string& section) const;

  DataConfig data() const;
  ModelConfig model() const;
  TrainConfig train() const;
  EvaluateConfig evaluate() const;
  ModifyConfig modify() const;
  int64_t report_images() const;

  // "3072-1024-96", the encoder's widths. A CSV file's width is known only
  // once it is read: pass it as `input` (else it shows as "d").
  std::string architecture(int64_t input = 0) const;

 private:
  std::map<std::string, Value> values_;
  std::string id_;
};

struct Experiment {
  std::string file;
  std::string name;
  std::string description;
  std::vector<RunConfig> runs;      // one per distinct sweep point, in file order
  std::vector<std::string> varied;  // keys whose value differs between runs
};

// The most points a sweep may have with --force (the default cap is lower).
constexpr int64_t kMaxForcedPoints = 1'000'000;

struct LoadOptions {
  std::vector<std::string> overrides;  // "key=value", applied to every point last
  int64_t max_points = 10000;          // larger sweeps are refused unless raised
};

Experiment load_experiment(const std::string& path, const LoadOptions& options = {});

// The same from the text of a file; `name` stands for the file in diagnostics.
Experiment load_experiment_text(const std::string& text, const std::string& name,
                                const LoadOptions& options = {});

// A sweep of a single point built from `key=value` overrides on the defaults
// (used by tests and by commands that need one config).
RunConfig make_run_config(const std::vector<std::string>& overrides);

}  // namespace pl
