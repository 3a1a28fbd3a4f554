#include "pipeline/config.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "../test_util.h"

namespace pl {
namespace {

using testing::ScratchDir;
using testing::write_text;

Experiment load_text(const std::string& text, const LoadOptions& options = {}) {
  ScratchDir dir;
  write_text(dir / "e.yaml", text);
  return load_experiment(dir / "e.yaml", options);
}

// The message of the ConfigError that loading `text` raises.
std::string error_of(const std::string& text, const LoadOptions& options = {}) {
  try {
    load_text(text, options);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_CASE("a file with a name only resolves every key to its default") {
  Experiment e = load_text("name: plain\n");
  REQUIRE(e.runs.size() == 1);
  CHECK(e.name == "plain");
  ModelConfig model = e.runs[0].model();
  CHECK(model.hidden == std::vector<int64_t>{1024});
  CHECK(model.bottleneck == 96);
  CHECK(e.runs[0].train().lr == doctest::Approx(1e-3));
  CHECK(e.runs[0].data().class_name == "deer");
  CHECK(e.runs[0].data().class_index == 4);
  CHECK(e.runs[0].id().size() == 12);
}

TEST_CASE("the run id depends on what the trained net depends on, and nothing else") {
  RunConfig base = make_run_config({});
  CHECK(make_run_config({}).id() == base.id());
  CHECK(make_run_config({"train.threads=1"}).id() == base.id());
  CHECK(make_run_config({"train.checkpoint_every=7"}).id() == base.id());
  CHECK(make_run_config({"train.epochs=3"}).id() != base.id());
  CHECK(make_run_config({"model.hidden=[512, 256]"}).id() != base.id());
  CHECK(make_run_config({"data.class=cat"}).id() != base.id());
  // Measurement settings rerun their stage on the same net instead.
  CHECK(make_run_config({"modify.steps=5"}).id() == base.id());
  CHECK(make_run_config({"evaluate.pca=false"}).id() == base.id());
}

TEST_CASE("a grid expands to its cross product, last key fastest, then the points") {
  Experiment e = load_text(R"(name: g
sweep:
  grid:
    model.hidden: [256, [512, 128]]
    train.lr: [0.1, 0.01]
  points:
    - {train.epochs: 3}
    - model: {bottleneck: 8}
)");
  REQUIRE(e.runs.size() == 6);
  CHECK(e.runs[0].model().hidden == std::vector<int64_t>{256});
  CHECK(e.runs[0].train().lr == doctest::Approx(0.1));
  CHECK(e.runs[1].train().lr == doctest::Approx(0.01));
  CHECK(e.runs[2].model().hidden == std::vector<int64_t>{512, 128});
  CHECK(e.runs[4].train().epochs == 3);
  CHECK(e.runs[5].model().bottleneck == 8);
  CHECK(e.varied ==
        std::vector<std::string>{"model.bottleneck", "model.hidden", "train.epochs", "train.lr"});
}

TEST_CASE("--set overrides every point, grid values included") {
  LoadOptions options;
  options.overrides = {"train.epochs=2", "model.hidden=[64]"};
  Experiment e = load_text("name: s\nsweep:\n  grid:\n    model.hidden: [256, 512]\n", options);
  REQUIRE(e.runs.size() == 1);  // both points became the same run
  CHECK(e.runs[0].train().epochs == 2);
  CHECK(e.runs[0].model().hidden == std::vector<int64_t>{64});
}

TEST_CASE("YAML spellings: quoted numbers, yes/no, class by index") {
  Experiment e =
      load_text("name: y\ntrain:\n  lr: '1e-3'\nevaluate:\n  pca: no\ndata:\n  class: 7\n");
  CHECK(e.runs[0].train().lr == doctest::Approx(0.001));
  CHECK_FALSE(e.runs[0].evaluate().pca);
  CHECK(e.runs[0].data().class_name == "horse");
}

TEST_CASE("an unknown key close to a known one gets a suggestion with its line") {
  std::string message = error_of("name: u\ntrain:\n  epoch: 5\n");
  CHECK(message.find("e.yaml:3:3: train.epoch: unknown key; did you mean 'train.epochs'?") !=
        std::string::npos);
}

TEST_CASE("every problem of a file is reported at once") {
  std::string message =
      error_of("name: m\ntrain:\n  epochs: ten\n  batch_size: -4\nmodel:\n  hidden: [0]\n");
  CHECK(message.find("3 problems") != std::string::npos);
  CHECK(message.find("train.epochs: expected a positive integer, found 'ten'") !=
        std::string::npos);
  CHECK(message.find("train.batch_size") != std::string::npos);
  CHECK(message.find("model.hidden: expected a list of positive hidden widths") !=
        std::string::npos);
}

TEST_CASE("a value out of range says what the range is") {
  CHECK(error_of("name: r\ntrain:\n  batch_size: 100000000\n")
            .find("train.batch_size: expected a positive integer (from 1 to 1e+06), found "
                  "'100000000'") != std::string::npos);
}

TEST_CASE("structural mistakes are errors, not silent defaults") {
  CHECK(error_of("name: d\ntrain:\n  epochs: 1\n  epochs: 2\n").find("duplicate key") !=
        std::string::npos);
  CHECK(error_of("name: t\ntrain:\n\tepochs: 1\n").find("tab character") != std::string::npos);
  CHECK(error_of("").find("the file is empty") != std::string::npos);
  CHECK(error_of("name: [x\n").find("YAML syntax error") != std::string::npos);
  CHECK(error_of("name: z\nsweep:\n  grid: {}\n").find("no points") != std::string::npos);
  CHECK(error_of("description: no name\n").find("name:") != std::string::npos);
  CHECK(error_of("name: b\nmodel:\n  bottleneck: 4000\n").find("not narrower than the input") !=
        std::string::npos);
  CHECK(error_of("name: c\ndata:\n  class: dear\n").find("did you mean 'deer'?") !=
        std::string::npos);
}

TEST_CASE("a grid above the cap is refused unless the cap is raised") {
  std::string grid =
      "name: big\nsweep:\n  grid:\n    train.seed: [0,1,2,3,4,5,6,7,8,9]\n"
      "    train.lr: [0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0]\n";
  LoadOptions small;
  small.max_points = 50;
  CHECK(error_of(grid, small).find("above the cap of 50") != std::string::npos);
  CHECK(load_text(grid).runs.size() == 100);
}

TEST_CASE("even with --force a grid has a hard cap") {
  std::string grid = "name: vast\nsweep:\n  grid:\n";
  for (const char* key : {"train.seed", "train.lr", "train.epochs", "train.batch_size"}) {
    grid += fmt::format("    {}: [{}]\n", key, fmt::join(std::vector<int>(40, 1), ", "));
  }
  LoadOptions forced;
  forced.max_points = kMaxForcedPoints;
  CHECK(error_of(grid, forced)
            .find("the grid has 3e+06 points, above the cap of 1000000 that "
                  "holds even with --force") != std::string::npos);
}

// Found by fuzz_config: an alias inside the value it names sent the
// duplicate-key walk (and the error printer) into endless recursion.
TEST_CASE("an alias that refers to a value holding it is an error, not a crash") {
  CHECK(
      error_of("name: a\nb: &x {c: *x}\n").find("b.c: an alias refers to a value that holds it") !=
      std::string::npos);
  CHECK(error_of("name: a\nmodel:\n  hidden: &h [1, *h]\n").find("(a cycle)") != std::string::npos);
  std::string deep = "name: n\nmodel: " + std::string(70, '[') + std::string(70, ']') + "\n";
  CHECK(error_of(deep).find("nested more than 64 levels deep") != std::string::npos);
  try {
    make_run_config({"model.hidden=&h [1, *h]"});
    FAIL("expected an error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("(a cycle)") != std::string::npos);
  }
  // Anchors and aliases of whole values stay supported.
  Experiment e = load_experiment_text(
      "name: a\nmodel: {hidden: &h [64, 32]}\nsweep:\n  points:\n    - {model.hidden: *h}\n",
      "text.yaml");
  CHECK(e.runs.at(0).model().hidden == std::vector<int64_t>{64, 32});
}

TEST_CASE("a missing file is named") {
  try {
    load_experiment("/nonexistent/e.yaml");
    FAIL("expected an error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("/nonexistent/e.yaml: (file): no such file") !=
          std::string::npos);
  }
}

}  // namespace
}  // namespace pl
