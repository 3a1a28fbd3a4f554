#include "pipeline/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>

#include "pipeline/hash.h"
#include "pipeline/paths.h"
#include "pipeline/schema.h"

namespace pl {
namespace {

// A value as written somewhere: in the file (with its position) or on the
// command line.
struct Located {
  YAML::Node node;
  std::string origin;  // file name or "--set"
  int line = 0;
  int column = 0;
};
using Assignments = std::map<std::string, Located>;

// Replaces an entry. Never assign one YAML::Node to another: yaml-cpp then
// rewrites the node they share, which other points still hold.
void assign(Assignments& assignments, const std::string& key, Located value) {
  assignments.erase(key);
  assignments.emplace(key, std::move(value));
}

std::string show(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsNull()) return "nothing";
  YAML::Emitter out;
  out.SetSeqFormat(YAML::Flow);
  out.SetMapFormat(YAML::Flow);
  out << node;
  return out.c_str();
}

bool parse_int(const std::string& text, int64_t& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

bool parse_float(const std::string& text, double& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (*end != '\0' || !std::isfinite(v)) return false;
  out = v;
  return true;
}

bool parse_bool(std::string text, bool& out) {
  std::transform(text.begin(), text.end(), text.begin(), ::tolower);
  if (text == "true" || text == "yes" || text == "on") return out = true, true;
  if (text == "false" || text == "no" || text == "off") return out = false, true;
  return false;
}

class Loader {
 public:
  static constexpr std::size_t kMaxDepth = 64;

  explicit Loader(std::string file) : file_(std::move(file)) {}

  std::vector<Diagnostic>& diagnostics() { return diagnostics_; }

  void fail(const Located& at, const std::string& key, const std::string& message) {
    diagnostics_.push_back({at.origin, at.line, at.column, key, message});
  }
  void fail(const YAML::Node& node, const std::string& key, const std::string& message) {
    fail(locate(node), key, message);
  }

  Located locate(const YAML::Node& node) const {
    YAML::Mark mark = node.Mark();
    return {node, file_, mark.is_null() ? 0 : mark.line + 1, mark.is_null() ? 0 : mark.column + 1};
  }

  // Walks the whole tree once, before anything else reads it. YAML allows a
  // key twice and yaml-cpp keeps both; an experiment may not. An alias to a
  // value that holds it (a cycle) or nesting deeper than kMaxDepth stops the
  // load: returns false, since nothing after could walk such a tree.
  bool check_tree(const YAML::Node& node, const std::string& path, std::vector<YAML::Node>& above) {
    for (const YAML::Node& ancestor : above) {
      if (ancestor.is(node)) {
        fail(node, path,
             "an alias refers to a value that holds it (a cycle); write the value out instead");
        return false;
      }
    }
    if (!node.IsSequence() && !node.IsMap()) return true;
    if (above.size() >= kMaxDepth) {
      fail(node, path, fmt::format("nested more than {} levels deep", kMaxDepth));
      return false;
    }
    above.push_back(node);
    bool ok = true;
    if (node.IsSequence()) {
      for (std::size_t i = 0; ok && i < node.size(); ++i) {
        ok = check_tree(node[i], fmt::format("{}[{}]", path, i), above);
      }
    } else {
      std::set<std::string> seen;
      for (const auto& item : node) {
        if (!check_tree(item.first, path, above)) {
          ok = false;
          break;
        }
        std::string key = item.first.IsScalar() ? item.first.Scalar() : show(item.first);
        std::string child = path.empty() ? key : path + "." + key;
        if (!seen.insert(key).second) {
          fail(item.first, child, "duplicate key; each key may appear once in a map");
        }
        if (!check_tree(item.second, child, above)) {
          ok = false;
          break;
        }
      }
    }
    above.pop_back();
    return ok;
  }

  // Collects leaf assignments under `prefix` from a (possibly nested) map
  // whose keys may also be dotted paths ("train.epochs: 3").
  void flatten(const YAML::Node& map, const std::string& prefix, Assignments& out) {
    if (!map.IsMap()) {
      fail(map, prefix, fmt::format("expected a map of keys, found {}", show(map)));
      return;
    }
    for (const auto& item : map) {
      if (!item.first.IsScalar()) {
        fail(item.first, prefix, "keys must be plain names");
        continue;
      }
      std::string path = prefix.empty() ? item.first.Scalar() : prefix + "." + item.first.Scalar();
      if (find_field(path) != nullptr) {
        assign(out, path, locate(item.second));
      } else if (item.second.IsMap() && is_section_prefix(path)) {
        flatten(item.second, path, out);
      } else {
        unknown_key(item.first, path);
      }
    }
  }

  void unknown_key(const YAML::Node& key_node, const std::string& path) {
    if (key_node.Scalar() == "<<") {
      fail(key_node, path,
           "YAML merge keys (<<) are not supported; write the keys out (anchors and aliases of "
           "whole values are fine)");
      return;
    }
    std::vector<std::string> candidates = field_paths();
    for (const std::string& section : section_names()) candidates.push_back(section);
    std::string hint = suggest(path, candidates);
    std::string message = "unknown key";
    if (!hint.empty())
      message += fmt::format("; did you mean '{}'?", hint);
    else
      message += "; see the keys listed in the README's 'Experiment files' section";
    fail(key_node, path, message);
  }

  static bool is_section_prefix(const std::string& path) {
    for (const Field& field : schema()) {
      if (field.path.rfind(path + ".", 0) == 0) return true;
    }
    return false;
  }

 private:
  std::string file_;
  std::vector<Diagnostic> diagnostics_;
};

// Converts `node` to the field's type; on failure returns false and sets `why`.
bool convert(const Field& field, const YAML::Node& node, Value& out, std::string& why) {
  auto expected = [&] {
    why = fmt::format("expected {}, found {}", field.help, show(node));
    return false;
  };
  auto in_range = [&](double v) { return v >= field.min && v <= field.max; };
  auto out_of_range = [&] {
    why = fmt::format("expected {} (from {:g} to {:g}), found {}", field.help, field.min, field.max,
                      show(node));
    return false;
  };

  if (field.type == FieldType::kIntList) {
    std::vector<int64_t> list;
    std::vector<YAML::Node> items;
    if (node.IsScalar())
      items.push_back(node);
    else if (node.IsSequence() && node.size() > 0) {
      for (const YAML::Node& item : node) items.push_back(item);
    } else
      return expected();
    for (const YAML::Node& item : items) {
      int64_t v = 0;
      if (!item.IsScalar() || !parse_int(item.Scalar(), v)) return expected();
      if (!in_range(static_cast<double>(v))) return out_of_range();
      list.push_back(v);
    }
    out = list;
    return true;
  }
  if (!node.IsScalar()) return expected();
  const std::string& text = node.Scalar();

  switch (field.type) {
    case FieldType::kInt: {
      int64_t v = 0;
      if (!parse_int(text, v)) return expected();
      if (!in_range(static_cast<double>(v))) return out_of_range();
      out = v;
      return true;
    }
    case FieldType::kFloat: {
      double v = 0;
      if (!parse_float(text, v)) return expected();
      if (!in_range(v)) return out_of_range();
      out = v;
      return true;
    }
    case FieldType::kBool: {
      bool v = false;
      if (!parse_bool(text, v)) return expected();
      out = v;
      return true;
    }
    case FieldType::kString:
      out = text;
      return true;
    case FieldType::kChoice: {
      int64_t index = -1;
      // A class may be given by its label index.
      if (field.path == "data.class" && parse_int(text, index) && index >= 0 &&
          index < static_cast<int64_t>(field.choices.size())) {
        out = field.choices[index];
        return true;
      }
      if (std::find(field.choices.begin(), field.choices.end(), text) != field.choices.end()) {
        out = text;
        return true;
      }
      why = fmt::format("expected one of {}, found {}", fmt::join(field.choices, ", "), show(node));
      std::string hint = suggest(text, field.choices);
      if (!hint.empty()) why += fmt::format("; did you mean '{}'?", hint);
      return false;
    }
    case FieldType::kIntList:
      break;
  }
  return expected();
}

Assignments defaults() {
  Assignments out;
  for (const Field& field : schema()) {
    out.emplace(field.path,
                Located{YAML::Load(field.default_text.empty() ? "''" : field.default_text),
                        "default", 0, 0});
  }
  return out;
}

void apply_overrides(const std::vector<std::string>& overrides, Assignments& base, Loader& loader) {
  for (const std::string& text : overrides) {
    std::size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0) {
      loader.fail(Located{YAML::Node(), "--set", 0, 0}, text,
                  "expected key=value, e.g. --set train.epochs=5");
      continue;
    }
    std::string key = text.substr(0, eq);
    if (find_field(key) == nullptr) {
      std::string hint = suggest(key, field_paths());
      loader.fail(
          Located{YAML::Node(), "--set", 0, 0}, key,
          hint.empty() ? "unknown key" : fmt::format("unknown key; did you mean '{}'?", hint));
      continue;
    }
    Located at{YAML::Node(), "--set", 0, 0};
    try {
      YAML::Node value = YAML::Load(text.substr(eq + 1));
      Loader probe("--set");
      std::vector<YAML::Node> above;
      if (!probe.check_tree(value, key, above)) {
        loader.fail(at, key, probe.diagnostics().front().message);
        continue;
      }
      at = Located{value.IsNull() ? YAML::Node(std::string()) : value, "--set", 0, 0};
    } catch (const YAML::Exception& e) {
      loader.fail(at, key, fmt::format("value is not valid YAML: {}", e.msg));
      continue;
    }
    assign(base, key, at);
  }
}

// Resolves one point's assignments into typed values.
std::map<std::string, Value> resolve(const Assignments& assigned, Loader& loader) {
  std::map<std::string, Value> values;
  for (const Field& field : schema()) {
    const Located& at = assigned.at(field.path);
    Value value;
    std::string why;
    if (!convert(field, at.node, value, why)) {
      loader.fail(at, field.path, why);
      continue;
    }
    values[field.path] = value;
  }
  if (values.size() != schema().size()) return values;

  // Checks that involve more than one key.
  const std::string& source = std::get<std::string>(values["data.source"]);
  int64_t input = source == "cloud" ? std::get<int64_t>(values["data.dim"]) : 3072;
  int64_t bottleneck = std::get<int64_t>(values["model.bottleneck"]);
  if (source != "csv" && bottleneck >= input) {
    loader.fail(assigned.at("model.bottleneck"), "model.bottleneck",
                fmt::format("a bottleneck of {} is not narrower than the input ({} values); "
                            "choose fewer units",
                            bottleneck, input));
  }
  if (source == "cloud" && std::get<std::string>(values["data.shape"]) == "helix" &&
      std::get<int64_t>(values["data.dim"]) != 3) {
    loader.fail(assigned.at("data.dim"), "data.dim", "a helix needs 3 dimensions; set data.dim: 3");
  }
  if (source == "csv" && std::get<std::string>(values["data.file"]).empty()) {
    loader.fail(assigned.at("data.file"), "data.file",
                "data.source is csv but no data.file is given; set data.file: path/to/points.csv");
  }
  auto& dir = std::get<std::string>(values["data.dir"]);
  if (dir.empty()) dir = default_cifar_dir();
  return values;
}

// The canonical text of each field's default, as value_text() writes it.
const std::map<std::string, std::string>& default_texts() {
  static const std::map<std::string, std::string> texts = [] {
    std::map<std::string, std::string> out;
    for (const Field& field : schema()) {
      Value value;
      std::string why;
      YAML::Node node = YAML::Load(field.default_text.empty() ? "''" : field.default_text);
      if (!convert(field, node, value, why))
        throw std::logic_error("schema default of " + field.path + ": " + why);
      out[field.path] = value_text(value);
    }
    return out;
  }();
  return texts;
}

// Keys added after runs were stored stay out of hashes at their default.
bool hashed(const std::string& key, const Field* field, const Value& value) {
  if (field == nullptr || !field->identity) return false;
  return field->hashed_at_default || value_text(value) != default_texts().at(key);
}

// The run id covers what the trained net depends on: data, model, training.
// Evaluate and modify settings belong to their stages' keys instead, so
// changing one reruns that stage on the same trained net.
bool is_training_key(const std::string& key, const Field* field) {
  if (field == nullptr || !field->identity) return false;
  return key.rfind("data.", 0) == 0 || key.rfind("model.", 0) == 0 || key.rfind("train.", 0) == 0;
}

std::string location_text(const Diagnostic& d) {
  if (d.line > 0) return fmt::format("{}:{}:{}", d.file, d.line, d.column);
  return d.file;
}

}  // namespace

std::string Diagnostic::to_string() const {
  return fmt::format("{}: {}: {}", location_text(*this), key.empty() ? "(file)" : key, message);
}

ConfigError::ConfigError(std::vector<Diagnostic> diagnostics)
    : std::runtime_error([&] {
        std::string text = fmt::format("{} problem{} in the experiment:", diagnostics.size(),
                                       diagnostics.size() == 1 ? "" : "s");
        for (const Diagnostic& d : diagnostics) text += "\n  " + d.to_string();
        return text;
      }()),
      diagnostics_(std::move(diagnostics)) {}

std::string value_text(const Value& value) {
  struct Visitor {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return fmt::format("{}", v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return v; }
    std::string operator()(const std::vector<int64_t>& v) const {
      return fmt::format("[{}]", fmt::join(v, ", "));
    }
  };
  return std::visit(Visitor{}, value);
}

RunConfig::RunConfig(std::map<std::string, Value> values) : values_(std::move(values)) {
  id_ = hash_text(canonical(true)).substr(0, 12);
}

std::string RunConfig::canonical(bool identity_only) const {
  std::string text;
  for (const auto& [key, value] : values_) {
    const Field* field = find_field(key);
    if (identity_only && (!is_training_key(key, field) || !hashed(key, field, value))) continue;
    text += key + ": " + value_text(value) + "\n";
  }
  return text;
}

std::string RunConfig::section_text(const std::string& section) const {
  std::string text;
  for (const auto& [key, value] : values_) {
    const Field* field = find_field(key);
    if (key.rfind(section + ".", 0) != 0 || !hashed(key, field, value)) continue;
    text += key + ": " + value_text(value) + "\n";
  }
  return text;
}

DataConfig RunConfig::data() const {
  DataConfig c;
  c.source = std::get<std::string>(values_.at("data.source"));
  c.dir = std::get<std::string>(values_.at("data.dir"));
  c.class_name = std::get<std::string>(values_.at("data.class"));
  const auto& names = cifar_class_names();
  c.class_index =
      static_cast<int>(std::find(names.begin(), names.end(), c.class_name) - names.begin());
  c.train_limit = std::get<int64_t>(values_.at("data.train_limit"));
  c.test_limit = std::get<int64_t>(values_.at("data.test_limit"));
  c.shape = std::get<std::string>(values_.at("data.shape"));
  c.points = std::get<int64_t>(values_.at("data.points"));
  c.noise = std::get<double>(values_.at("data.noise"));
  c.seed = std::get<int64_t>(values_.at("data.seed"));
  c.dim = std::get<int64_t>(values_.at("data.dim"));
  c.angle = std::get<double>(values_.at("data.angle"));
  c.turns = std::get<double>(values_.at("data.turns"));
  c.rotation = std::get<double>(values_.at("data.rotation"));
  c.ratio = std::get<double>(values_.at("data.ratio"));
  c.file = std::get<std::string>(values_.at("data.file"));
  return c;
}

ModelConfig RunConfig::model() const {
  ModelConfig c;
  c.hidden = std::get<std::vector<int64_t>>(values_.at("model.hidden"));
  c.bottleneck = std::get<int64_t>(values_.at("model.bottleneck"));
  c.activation = std::get<std::string>(values_.at("model.activation"));
  c.output_activation = std::get<std::string>(values_.at("model.output_activation"));
  c.bottleneck_activation = std::get<std::string>(values_.at("model.bottleneck_activation"));
  if (c.bottleneck_activation == "same") c.bottleneck_activation = c.activation;
  c.standardize = std::get<std::string>(values_.at("model.standardize"));
  const std::string& source = std::get<std::string>(values_.at("data.source"));
  if (source == "cloud") c.input = std::get<int64_t>(values_.at("data.dim"));
  if (source == "csv") c.input = 0;  // the file's column count, known after ingest
  return c;
}

TrainConfig RunConfig::train() const {
  TrainConfig c;
  c.epochs = std::get<int64_t>(values_.at("train.epochs"));
  c.batch_size = std::get<int64_t>(values_.at("train.batch_size"));
  c.lr = std::get<double>(values_.at("train.lr"));
  c.optimizer = std::get<std::string>(values_.at("train.optimizer"));
  c.momentum = std::get<double>(values_.at("train.momentum"));
  c.weight_decay = std::get<double>(values_.at("train.weight_decay"));
  c.seed = std::get<int64_t>(values_.at("train.seed"));
  c.threads = static_cast<int>(std::get<int64_t>(values_.at("train.threads")));
  c.device = std::get<std::string>(values_.at("train.device"));
  c.checkpoint_every = std::get<int64_t>(values_.at("train.checkpoint_every"));
  return c;
}

EvaluateConfig RunConfig::evaluate() const { return {std::get<bool>(values_.at("evaluate.pca"))}; }

ModifyConfig RunConfig::modify() const {
  ModifyConfig c;
  c.steps = std::get<int64_t>(values_.at("modify.steps"));
  c.record = std::get<std::vector<int64_t>>(values_.at("modify.record"));
  c.foreign = std::get<int64_t>(values_.at("modify.foreign"));
  c.fd_components = std::get<int64_t>(values_.at("modify.fd_components"));
  c.attractor_sample = std::get<int64_t>(values_.at("modify.attractor_sample"));
  c.images = std::get<std::string>(values_.at("modify.images"));
  c.fit = std::get<std::string>(values_.at("modify.fit"));
  return c;
}

int64_t RunConfig::report_images() const { return std::get<int64_t>(values_.at("report.images")); }

std::string RunConfig::architecture(int64_t input) const {
  ModelConfig m = model();
  if (input <= 0) input = m.input;
  std::string first = input > 0 ? std::to_string(input) : "d";
  return fmt::format("{}-{}-{}", first, fmt::join(m.hidden, "-"), m.bottleneck);
}

namespace {

// The grid's keys and candidate values, in file order.
struct Grid {
  std::vector<std::string> keys;
  std::vector<std::vector<Located>> values;
};

Grid read_grid(const YAML::Node& node, Loader& loader) {
  Grid grid;
  if (!node.IsMap()) {
    loader.fail(node, "sweep.grid", "expected a map from config keys to lists of values");
    return grid;
  }
  for (const auto& item : node) {
    std::string key = item.first.Scalar();
    if (find_field(key) == nullptr) {
      loader.unknown_key(item.first, "sweep.grid." + key);
      continue;
    }
    if (!item.second.IsSequence() || item.second.size() == 0) {
      loader.fail(item.second, "sweep.grid." + key,
                  fmt::format("expected a non-empty list of values, found {}", show(item.second)));
      continue;
    }
    grid.keys.push_back(key);
    grid.values.emplace_back();
    for (const YAML::Node& v : item.second) grid.values.back().push_back(loader.locate(v));
  }
  return grid;
}

std::vector<Assignments> expand(const YAML::Node& sweep, const Assignments& base, Loader& loader,
                                int64_t max_points) {
  std::vector<Assignments> points;
  if (!sweep) return {base};
  if (!sweep.IsMap()) {
    loader.fail(sweep, "sweep", "expected a map with 'grid' and/or 'points'");
    return {};
  }
  for (const auto& item : sweep) {
    std::string key = item.first.Scalar();
    if (key != "grid" && key != "points") {
      std::string hint = suggest(key, {"grid", "points"});
      loader.fail(item.first, "sweep." + key,
                  hint.empty() ? "unknown key; a sweep has 'grid' and 'points'"
                               : fmt::format("unknown key; did you mean '{}'?", hint));
    }
  }

  if (sweep["grid"]) {
    Grid grid = read_grid(sweep["grid"], loader);
    if (grid.keys.empty()) {
      if (sweep["grid"].IsMap() && sweep["grid"].size() == 0) {
        loader.fail(sweep["grid"], "sweep.grid", "the sweep has no points: the grid names no keys");
      }
      return {};
    }
    double total = 1;
    for (const auto& v : grid.values) total *= static_cast<double>(v.size());
    if (total > static_cast<double>(max_points)) {
      loader.fail(sweep["grid"], "sweep.grid",
                  max_points < kMaxForcedPoints
                      ? fmt::format("the grid has {:.0f} points, above the cap of {}; shrink it "
                                    "or pass --force to run it anyway",
                                    total, max_points)
                      : fmt::format("the grid has {:.0g} points, above the cap of {} that holds "
                                    "even with --force; shrink it",
                                    total, max_points));
      return {};
    }
    std::vector<std::size_t> index(grid.keys.size(), 0);
    for (std::size_t n = 0; n < static_cast<std::size_t>(total); ++n) {
      Assignments point = base;
      for (std::size_t k = 0; k < grid.keys.size(); ++k) {
        assign(point, grid.keys[k], grid.values[k][index[k]]);
      }
      points.push_back(std::move(point));
      for (std::size_t k = grid.keys.size(); k-- > 0;) {  // last key varies fastest
        if (++index[k] < grid.values[k].size()) break;
        index[k] = 0;
      }
    }
  }

  if (const YAML::Node& list = sweep["points"]) {
    if (!list.IsSequence()) {
      loader.fail(list, "sweep.points", "expected a list of maps of config keys");
    } else {
      for (std::size_t i = 0; i < list.size(); ++i) {
        Assignments point = base;
        loader.flatten(list[i], "", point);
        points.push_back(std::move(point));
      }
    }
  }
  if (points.empty() && loader.diagnostics().empty()) {
    loader.fail(sweep, "sweep", "the sweep has no points; give a non-empty grid or points list");
  }
  return points;
}

// Parses the text of an experiment file; `path` names it in the diagnostics.
YAML::Node parse_text(const std::string& text, const std::string& path, Loader& loader) {
  Located at{YAML::Node(), path, 0, 0};
  if (std::size_t tab = text.find('\t'); tab != std::string::npos) {
    std::size_t line_start = text.rfind('\n', tab);
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + tab, '\n'));
    loader.fail({YAML::Node(), path, line, static_cast<int>(tab - line_start) + 1}, "",
                "a tab character; YAML indents with spaces only, replace the tab with spaces");
    return {};
  }
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) {
      loader.fail(at, "", "the file is empty; an experiment needs at least 'name:'");
      return {};
    }
    return root;
  } catch (const YAML::ParserException& e) {
    loader.fail({YAML::Node(), path, e.mark.line + 1, e.mark.column + 1}, "",
                fmt::format("YAML syntax error: {}", e.msg));
  }
  return {};
}

std::string read_experiment_file(const std::string& path, Loader& loader) {
  namespace fs = std::filesystem;
  Located at{YAML::Node(), path, 0, 0};
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    loader.fail(at, "", "no such file; give the path of an experiment YAML file");
    return {};
  }
  if (fs::is_directory(path, ec)) {
    loader.fail(at, "", "is a folder; give the path of an experiment YAML file");
    return {};
  }
  try {
    return read_file(path);
  } catch (const std::exception& e) {
    loader.fail(at, "", e.what());
  }
  return {};
}

Experiment load(const std::string& text, const std::string& path, const LoadOptions& options,
                Loader& loader);

}  // namespace

Experiment load_experiment(const std::string& path, const LoadOptions& options) {
  Loader loader(path);
  std::string text = read_experiment_file(path, loader);
  if (!loader.diagnostics().empty()) throw ConfigError(loader.diagnostics());
  return load(text, path, options, loader);
}

Experiment load_experiment_text(const std::string& text, const std::string& name,
                                const LoadOptions& options) {
  Loader loader(name);
  return load(text, name, options, loader);
}

namespace {

Experiment load(const std::string& text, const std::string& path, const LoadOptions& options,
                Loader& loader) {
  Experiment experiment;
  experiment.file = path;
  YAML::Node root = parse_text(text, path, loader);
  if (!loader.diagnostics().empty()) throw ConfigError(loader.diagnostics());
  if (!root.IsMap()) {
    loader.fail(root, "", "expected a map with 'name', config sections and 'sweep'");
    throw ConfigError(loader.diagnostics());
  }
  std::vector<YAML::Node> above;
  if (!loader.check_tree(root, "", above)) throw ConfigError(loader.diagnostics());

  Assignments base = defaults();
  std::vector<std::string> top = {"name", "description", "sweep"};
  for (const auto& item : root) {
    std::string key = item.first.Scalar();
    if (key == "name" || key == "description") continue;
    if (key == "sweep") continue;
    if (std::find(section_names().begin(), section_names().end(), key) != section_names().end()) {
      loader.flatten(item.second, key, base);
      continue;
    }
    std::vector<std::string> known = top;
    known.insert(known.end(), section_names().begin(), section_names().end());
    std::string hint = suggest(key, known);
    loader.fail(item.first, key,
                hint.empty()
                    ? fmt::format("unknown key; the top level holds {}", fmt::join(known, ", "))
                    : fmt::format("unknown key; did you mean '{}'?", hint));
  }

  if (!root["name"] || !root["name"].IsScalar() ||
      !std::regex_match(root["name"].Scalar(), std::regex("[A-Za-z0-9_.-]{1,64}"))) {
    loader.fail(root["name"] ? root["name"] : root, "name",
                "expected a sweep name of letters, digits, '_', '.' or '-' (it names a folder)");
  } else {
    experiment.name = root["name"].Scalar();
  }
  if (root["description"] && root["description"].IsScalar()) {
    experiment.description = root["description"].Scalar();
  }

  std::vector<Assignments> points = expand(root["sweep"], base, loader, options.max_points);
  for (Assignments& point : points) apply_overrides(options.overrides, point, loader);
  if (points.empty()) apply_overrides(options.overrides, base, loader);

  std::set<std::string> seen_ids;
  std::vector<RunConfig> runs;
  std::size_t before = loader.diagnostics().size();
  for (const Assignments& point : points) {
    std::map<std::string, Value> values = resolve(point, loader);
    if (loader.diagnostics().size() != before) continue;
    RunConfig run(std::move(values));
    if (seen_ids.insert(run.id()).second) runs.push_back(std::move(run));
  }

  // The same mistake in the base config shows up once per point: say it once.
  std::vector<Diagnostic> unique;
  std::set<std::string> texts;
  for (const Diagnostic& d : loader.diagnostics()) {
    if (texts.insert(d.to_string()).second) unique.push_back(d);
  }
  if (!unique.empty()) throw ConfigError(unique);

  experiment.runs = std::move(runs);
  for (const Field& field : schema()) {
    for (const RunConfig& run : experiment.runs) {
      if (value_text(run.values().at(field.path)) !=
          value_text(experiment.runs.front().values().at(field.path))) {
        experiment.varied.push_back(field.path);
        break;
      }
    }
  }
  return experiment;
}

}  // namespace

RunConfig make_run_config(const std::vector<std::string>& overrides) {
  Loader loader("--set");
  Assignments base = defaults();
  apply_overrides(overrides, base, loader);
  std::map<std::string, Value> values = resolve(base, loader);
  if (!loader.diagnostics().empty()) throw ConfigError(loader.diagnostics());
  return RunConfig(std::move(values));
}

}  // namespace pl
