// The keys an experiment file may set: type, default, accepted values.
//
// Every config key lives in this one table, so validation, defaults, the
// run id and the `--set` overrides all agree on what exists.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pl {

enum class FieldType { kInt, kFloat, kBool, kString, kIntList, kChoice };

struct Field {
  std::string path;  // "train.epochs"
  FieldType type;
  std::string default_text;          // YAML text of the default ("" for an empty string)
  std::string help;                  // what is accepted, for error messages
  std::vector<std::string> choices;  // kChoice only
  double min = -1e300;               // inclusive bounds for numbers and list elements
  double max = 1e300;
  bool identity = true;  // part of the run id (false: execution settings only)
  // Keys added after runs were stored: at their default they stay out of the
  // run id and stage keys, so existing runs keep their ids.
  bool hashed_at_default = true;
};

// All fields, sorted by path.
const std::vector<Field>& schema();

// The field named `path`, or nullptr.
const Field* find_field(std::string_view path);

// The config sections an experiment file may hold ("data", "model", ...).
const std::vector<std::string>& section_names();

// The candidate closest to `word` by edit distance when it is close enough to
// be a likely typo, else "".
std::string suggest(std::string_view word, const std::vector<std::string>& candidates);

// Every field path, for suggestions.
std::vector<std::string> field_paths();

// Shapes of synthetic point clouds (data.source: cloud).
const std::vector<std::string>& cloud_shapes();

// CIFAR-10 class names in label order.
const std::vector<std::string>& cifar_class_names();

}  // namespace pl
