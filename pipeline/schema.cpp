#include "pipeline/schema.h"

#include <algorithm>

namespace pl {
namespace {

const std::vector<std::string> kActivations = {"tanh", "relu", "sigmoid", "identity", "leaky_relu"};

std::vector<std::string> with_same(std::vector<std::string> names) {
  names.insert(names.begin(), "same");
  return names;
}

std::vector<Field> make_schema() {
  using T = FieldType;
  // One key to an entry reads better than the formatter's columns.
  // clang-format off
  std::vector<Field> f = {
      {"data.source", T::kChoice, "cifar10", "a data source", {"cifar10", "cloud", "csv"}},
      {"data.dir", T::kString, "", "a folder of CIFAR-10 binary files", {}, 0, 0, false},
      {"data.class", T::kChoice, "deer", "a CIFAR-10 class name or index 0-9", cifar_class_names()},
      {"data.train_limit", T::kInt, "0", "an integer >= 0 (0: every training image)", {}, 0},
      {"data.test_limit", T::kInt, "0", "an integer >= 0 (0: every test image)", {}, 0},
      {"data.shape", T::kChoice, "ellipse", "a point-cloud shape", cloud_shapes(), 0, 0, true, false},
      {"data.points", T::kInt, "1000", "a number of points from 10 to 10,000,000", {}, 10, 1e7,
       true, false},
      {"data.noise", T::kFloat, "0.05", "a noise level >= 0 (Gaussian, per coordinate)", {}, 0,
       100, true, false},
      {"data.seed", T::kInt, "0", "an integer >= 0", {}, 0, 9.2e18, true, false},
      {"data.dim", T::kInt, "2", "2 or 3 dimensions", {}, 2, 3, true, false},
      {"data.angle", T::kFloat, "180", "an arc angle in degrees, above 0 and at most 360", {},
       1e-3, 360, true, false},
      {"data.turns", T::kFloat, "1.5", "a positive number of turns (spiral, helix)", {}, 0.01,
       100, true, false},
      {"data.rotation", T::kFloat, "30", "a rotation of the shape in degrees", {}, -360, 360,
       true, false},
      {"data.ratio", T::kFloat, "0.3", "the ellipse's minor to major axis, in (0, 1]", {}, 1e-6,
       1, true, false},
      {"data.file", T::kString, "", "a CSV file of numeric columns", {}, 0, 0, true, false},
      {"model.hidden", T::kIntList, "[1024]",
       "a list of positive hidden widths from the input down, e.g. [1024] or [4096, 1024]", {},
       1, 1e6},
      {"model.bottleneck", T::kInt, "96", "a positive integer below the input width", {}, 1, 1e6},
      {"model.activation", T::kChoice, "tanh", "an activation", kActivations},
      {"model.output_activation", T::kChoice, "tanh", "an activation", kActivations},
      {"model.bottleneck_activation", T::kChoice, "same",
       "an activation, or 'same' as model.activation", with_same(kActivations), 0, 0, true,
       false},
      {"model.standardize", T::kChoice, "none",
       "none, center (subtract the mean) or scale (z-scores)", {"none", "center", "scale"}, 0, 0,
       true, false},
      {"train.epochs", T::kInt, "20", "a positive integer", {}, 1, 1e6},
      {"train.batch_size", T::kInt, "64", "a positive integer", {}, 1, 1e6},
      {"train.lr", T::kFloat, "0.001", "a positive number such as 1e-3", {}, 1e-12, 10},
      {"train.optimizer", T::kChoice, "adam", "an optimizer", {"adam", "sgd"}},
      {"train.momentum", T::kFloat, "0.9", "a number in [0, 1) (sgd only)", {}, 0, 0.999999},
      {"train.weight_decay", T::kFloat, "0", "a number >= 0", {}, 0, 1},
      {"train.seed", T::kInt, "0", "an integer >= 0", {}, 0, 9.2e18},
      {"train.threads", T::kInt, "0", "an integer >= 0 (0: every core)", {}, 0, 1024, false},
      {"train.device", T::kChoice, "cpu", "a device", {"cpu", "cuda"}, 0, 0, false},
      {"train.checkpoint_every", T::kInt, "5", "a positive number of epochs", {}, 1, 1e6, false},
      {"evaluate.pca", T::kBool, "true", "true or false"},
      {"modify.steps", T::kInt, "20", "a positive number of iterations", {}, 1, 10000},
      {"modify.record", T::kIntList, "[1, 5, 10]", "a list of steps to record besides the last",
       {}, 1, 10000},
      {"modify.foreign", T::kInt, "1000", "a positive number of foreign test pictures", {}, 1,
       9000},
      {"modify.fd_components", T::kInt, "64",
       "a positive number of principal components for the Frechet distance", {}, 1, 3072},
      {"modify.attractor_sample", T::kInt, "200",
       "an integer >= 0: training images tested as fixed points (0: skip)", {}, 0, 5000},
      {"modify.images", T::kString, "", "a folder of PNG or JPEG pictures of your own (or empty)"},
      {"modify.fit", T::kChoice, "crop", "how pictures become 32x32", {"crop", "letterbox"}},
      {"report.images", T::kInt, "16", "an integer in [1, 100]", {}, 1, 100, false},
  };
  // clang-format on
  std::sort(f.begin(), f.end(), [](const Field& a, const Field& b) { return a.path < b.path; });
  return f;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace

const std::vector<Field>& schema() {
  static const std::vector<Field> fields = make_schema();
  return fields;
}

const Field* find_field(std::string_view path) {
  for (const Field& field : schema()) {
    if (field.path == path) return &field;
  }
  return nullptr;
}

const std::vector<std::string>& section_names() {
  static const std::vector<std::string> names = {"data",     "model",  "train",
                                                 "evaluate", "modify", "report"};
  return names;
}

std::vector<std::string> field_paths() {
  std::vector<std::string> paths;
  for (const Field& field : schema()) paths.push_back(field.path);
  return paths;
}

std::string suggest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = 1000;
  for (const std::string& candidate : candidates) {
    std::size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  std::size_t allowed = std::max<std::size_t>(2, word.size() / 4);
  return best_distance <= allowed ? best : "";
}

const std::vector<std::string>& cloud_shapes() {
  static const std::vector<std::string> shapes = {"line", "ellipse", "arc", "spiral", "helix"};
  return shapes;
}

const std::vector<std::string>& cifar_class_names() {
  static const std::vector<std::string> names = {
      "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return names;
}

}  // namespace pl
