// The principal-component experiments end to end: train and evaluate stages
// on synthetic clouds, checked against references computed here.
// LibTorch's headers first: doctest's CHECK must replace glog's.
#include "stages/model.h"
// clang-format off
#include <doctest/doctest.h>
// clang-format on

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "../test_util.h"
#include "pipeline/paths.h"
#include "pipeline/store.h"
#include "stages/stages.h"

namespace pl {
namespace {

struct Trained {
  std::map<std::string, double> metrics;
  Autoencoder model{nullptr};
  Cloud cloud;
};

// Trains and evaluates one run in a scratch store; returns its pca.* metrics.
Trained train_cloud(const std::vector<std::string>& overrides, const testing::ScratchDir& dir) {
  RunConfig config = make_run_config(overrides);
  Trained out;
  out.cloud = ingest_cloud(config.data());
  auto store = Store::open(dir.path());
  store->put_run(config.id(), config.canonical(), {});
  std::string run_dir = dir / config.id();
  make_dirs(run_dir + "/images");
  CifarData no_images;
  StageContext context{config, no_images, *store, run_dir, "", nullptr, &out.cloud};
  REQUIRE(train_stage(context) == TrainOutcome::kDone);
  evaluate_stage(context);
  for (const std::string& name : store->metric_names()) {
    auto series = store->series(config.id(), name);
    if (!series.empty()) out.metrics[name] = series.back().second;
  }
  out.model = load_trained(checkpoint_path(context), model_config(config, &out.cloud));
  CHECK(std::filesystem::file_size(run_dir + "/images/cloud.svg") > 1000);
  CHECK(std::filesystem::file_size(run_dir + "/images/points.csv") > 1000);
  return out;
}

// The 2x2 covariance of a 2-D cloud, its largest eigenvalue's share of the
// trace and that eigenvector, in closed form.
struct Pc1 {
  double share;
  double direction[2];
};
Pc1 pc1_of(const Cloud& c) {
  double mx = 0, my = 0;
  for (int64_t i = 0; i < c.count; ++i) mx += c.point(i)[0], my += c.point(i)[1];
  mx /= static_cast<double>(c.count);
  my /= static_cast<double>(c.count);
  double a = 0, b = 0, d = 0;
  for (int64_t i = 0; i < c.count; ++i) {
    double x = c.point(i)[0] - mx, y = c.point(i)[1] - my;
    a += x * x, b += x * y, d += y * y;
  }
  double half_trace = (a + d) / 2;
  double lambda1 = half_trace + std::sqrt((a - d) * (a - d) / 4 + b * b);
  Pc1 out{lambda1 / (a + d), {b, lambda1 - a}};
  if (std::abs(b) < 1e-12) out.direction[0] = a >= d ? 1 : 0, out.direction[1] = a >= d ? 0 : 1;
  return out;
}

}  // namespace

TEST_CASE("a linear net on an ellipse finds the first principal component to under a degree") {
  testing::ScratchDir dir;
  Trained t =
      train_cloud({"data.source=cloud", "data.shape=ellipse", "data.points=1000", "data.noise=0.05",
                   "data.rotation=30", "data.seed=1", "model.hidden=[4]", "model.bottleneck=1",
                   "model.activation=identity", "model.output_activation=identity",
                   "model.standardize=center", "train.epochs=100", "train.batch_size=100",
                   "train.lr=0.005", "train.threads=1", "train.checkpoint_every=100"},
                  dir);
  Pc1 pc1 = pc1_of(t.cloud);
  // The decoder of a linear net is affine: its direction is g(1) - g(0).
  torch::NoGradGuard no_grad;
  torch::Tensor ends = t.model->decode(torch::tensor({{0.0f}, {1.0f}}));
  double dx = (ends[1][0] - ends[0][0]).item<double>();
  double dy = (ends[1][1] - ends[0][1]).item<double>();
  double cosine = std::abs(dx * pc1.direction[0] + dy * pc1.direction[1]) /
                  (std::hypot(dx, dy) * std::hypot(pc1.direction[0], pc1.direction[1]));
  double angle = std::acos(std::min(1.0, cosine)) * 180.0 / M_PI;
  CHECK(angle < 1.0);
  CHECK(t.metrics.at("pca.angle") == doctest::Approx(angle).epsilon(1e-3));
  CHECK(t.metrics.at("pca.fve_pc1") == doctest::Approx(pc1.share).epsilon(1e-9));
  // A linear net with one unit can at best reach PC1, and should come close.
  CHECK(t.metrics.at("pca.fve") <= pc1.share + 1e-6);
  CHECK(t.metrics.at("pca.fve") > pc1.share - 0.002);
}

TEST_CASE("a nonlinear net follows a noisy half circle better than PC1") {
  testing::ScratchDir dir;
  Trained t = train_cloud(
      {"data.source=cloud", "data.shape=arc", "data.angle=180", "data.points=1000",
       "data.noise=0.2", "data.seed=2", "model.hidden=[8]", "model.bottleneck=1",
       "model.activation=tanh", "model.bottleneck_activation=identity",
       "model.output_activation=identity", "model.standardize=center", "train.epochs=300",
       "train.batch_size=32", "train.lr=0.01", "train.threads=1", "train.checkpoint_every=300"},
      dir);
  // References: PC1's share, and the ideal one-dimensional fit that moves each
  // point to the nearest point of the noiseless half circle.
  Pc1 pc1 = pc1_of(t.cloud);
  double mx = 0, my = 0;
  for (int64_t i = 0; i < t.cloud.count; ++i) mx += t.cloud.point(i)[0], my += t.cloud.point(i)[1];
  mx /= 1000, my /= 1000;
  double rotation = 30 * M_PI / 180, total = 0, residual = 0;
  for (int64_t i = 0; i < t.cloud.count; ++i) {
    double x = t.cloud.point(i)[0], y = t.cloud.point(i)[1];
    total += (x - mx) * (x - mx) + (y - my) * (y - my);
    double angle = std::atan2(y, x) - rotation;
    angle = std::remainder(angle, 2 * M_PI);
    angle = std::clamp(angle, -M_PI / 2, M_PI / 2);
    double cx = std::cos(angle + rotation), cy = std::sin(angle + rotation);
    residual += (x - cx) * (x - cx) + (y - cy) * (y - cy);
  }
  double ideal = 1 - residual / total;
  MESSAGE("PC1 ", pc1.share, ", ideal ", ideal, ", net ", t.metrics.at("pca.fve"));
  CHECK(pc1.share == doctest::Approx(0.80).epsilon(0.03));
  CHECK(ideal == doctest::Approx(0.94).epsilon(0.02));
  CHECK(t.metrics.at("pca.fve_pc1") == doctest::Approx(pc1.share).epsilon(1e-9));
  CHECK(t.metrics.at("pca.fve_curve") == doctest::Approx(ideal).epsilon(1e-4));
  CHECK(t.metrics.at("pca.fve") >= 0.90);
  CHECK(t.metrics.at("pca.fve") > pc1.share + 0.08);
  CHECK(t.metrics.at("pca.spearman") > 0.95);
  CHECK(t.metrics.count("pca.angle") == 0);  // not a linear net
}

TEST_CASE("a linear net with a two-unit bottleneck spans the top two components of a 3-D cloud") {
  testing::ScratchDir dir;
  Trained t = train_cloud(
      {"data.source=cloud", "data.shape=helix", "data.dim=3", "data.points=600", "data.noise=0.05",
       "model.hidden=[6]", "model.bottleneck=2", "model.activation=identity",
       "model.output_activation=identity", "model.standardize=center", "train.epochs=100",
       "train.batch_size=100", "train.lr=0.005", "train.threads=1", "train.checkpoint_every=100"},
      dir);
  CHECK(t.metrics.at("pca.angle") < 2.0);
  CHECK(t.metrics.at("pca.principal_angle") <= t.metrics.at("pca.angle"));
  CHECK(t.metrics.at("pca.fve") == doctest::Approx(t.metrics.at("pca.fve_pck")).epsilon(0.01));
  CHECK(t.metrics.count("pca.spearman") == 0);  // two units have no single order
}

}  // namespace pl

namespace pl {

TEST_CASE("a CSV file whose contents changed is trained again, not evaluated on the old net") {
  testing::ScratchDir dir, fresh;
  auto write_points = [](const std::string& path, double slope) {
    std::string text = "x,y\n";
    for (int i = 0; i < 100; ++i) {
      double t = -1 + 0.02 * i;
      text += fmt::format("{},{}\n", t, slope * t + 0.05 * std::sin(7.0 * i));
    }
    testing::write_text(path, text);
  };
  std::vector<std::string> keys = {"data.source=csv",           "data.file=" + (dir / "p.csv"),
                                   "model.hidden=[2]",          "model.bottleneck=1",
                                   "model.activation=identity", "model.output_activation=identity",
                                   "model.standardize=center",  "train.epochs=20",
                                   "train.batch_size=20",       "train.lr=0.01",
                                   "train.threads=1",           "train.checkpoint_every=20"};
  write_points(dir / "p.csv", 2.0);
  Trained before = train_cloud(keys, dir);
  write_points(dir / "p.csv", -2.0);  // the same file name, other points
  Trained after = train_cloud(keys, dir);
  // The same config run from scratch on the new points, in another store.
  std::vector<std::string> fresh_keys = keys;
  fresh_keys[1] = "data.file=" + (fresh / "p.csv");
  write_points(fresh / "p.csv", -2.0);
  Trained reference = train_cloud(fresh_keys, fresh);
  CHECK(after.metrics.at("pca.angle") < 2.0);
  CHECK(after.metrics.at("pca.fve") == reference.metrics.at("pca.fve"));
  CHECK(after.metrics.at("train.loss") == reference.metrics.at("train.loss"));
  CHECK(std::filesystem::exists(dir / (make_run_config(keys).id() + "/checkpoint.h5.bad")));
}

}  // namespace pl
