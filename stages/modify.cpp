#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "pipeline/fault.h"
#include "pipeline/log.h"
#include "stages/measures.h"
#include "stages/model.h"
#include "stages/picture.h"
#include "stages/stages.h"

namespace pl {
namespace {

// Distance from each row of `a` to its nearest row of `b`: [n].
torch::Tensor nearest_distance(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor b_norms = b.pow(2).sum(1);
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < a.size(0); i += 250) {
    torch::Tensor rows = a.narrow(0, i, std::min<int64_t>(250, a.size(0) - i));
    torch::Tensor d2 = rows.pow(2).sum(1, true) + b_norms.unsqueeze(0) - 2 * rows.mm(b.t());
    parts.push_back(std::get<0>(d2.min(1)).clamp_min(0).sqrt());
  }
  return torch::cat(parts);
}

double rms(const torch::Tensor& t) {
  return t.to(torch::kFloat64).pow(2).mean().sqrt().item<double>();
}

// Attractors among training images: after `steps` iterations, the fraction
// that stays put (rms(f(x) - x) < 0.02) and the fraction that is moreover
// contracting there (latent Jacobian spectral radius below 1).
std::vector<Metric> attractor_metrics(Autoencoder& model, const torch::Tensor& sample,
                                      int64_t steps) {
  torch::Tensor x = sample;
  for (int64_t t = 0; t < steps; ++t) x = reconstruct(model, x);
  torch::Tensor residual = (reconstruct(model, x) - x).pow(2).mean(1).sqrt();
  torch::Tensor fixed = residual < 0.02;
  torch::Tensor radius = latent_spectral_radius(model, x);
  torch::Tensor attracting = fixed.logical_and(radius < 1.0);
  return {{"modify.fixed_fraction", 0, fixed.to(torch::kFloat64).mean().item<double>()},
          {"modify.attractor_fraction", 0, attracting.to(torch::kFloat64).mean().item<double>()},
          {"modify.spectral_radius", 0, radius.median().item<double>()}};
}

}  // namespace

std::vector<std::vector<Tile>> iterate_pictures(const RunConfig& config,
                                                const std::string& checkpoint,
                                                const std::vector<Tile>& pictures, int64_t steps) {
  Autoencoder model = load_trained(checkpoint, config.model());
  std::vector<float> flat;
  for (const Tile& tile : pictures) flat.insert(flat.end(), tile.begin(), tile.end());
  torch::Tensor x =
      torch::from_blob(flat.data(), {static_cast<int64_t>(pictures.size()), 3072}, torch::kFloat32)
          .clone();
  std::vector<std::vector<Tile>> out;
  for (int64_t t = 0; t <= steps; ++t) {
    if (t > 0) x = reconstruct(model, x);
    torch::Tensor c = x.contiguous();
    out.emplace_back();
    for (int64_t i = 0; i < c.size(0); ++i) {
      out.back().emplace_back(c[i].data_ptr<float>(), c[i].data_ptr<float>() + 3072);
    }
  }
  return out;
}

void modify_stage(const StageContext& context) {
  if (context.cloud != nullptr) {
    info("modify: nothing to modify in a point cloud");
    return;
  }
  use_threads(context.config.train().threads);
  const ModifyConfig cfg = context.config.modify();
  Autoencoder model = load_trained(checkpoint_path(context), context.config.model());

  int64_t count = std::min(cfg.foreign, context.data.foreign.count);
  torch::Tensor start = to_tensor(context.data.foreign.pixels.data(), count);
  torch::Tensor train = to_tensor(context.data.train.pixels.data(), context.data.train.count);
  torch::Tensor test = to_tensor(context.data.test.pixels.data(), context.data.test.count);
  torch::Tensor mean_train = train.mean(0);

  // How far a real member of the class typically is from the training set.
  double typical = nearest_distance(test, train).median().item<double>();
  double spread = rms(start - mean_train);

  // Distances between sets in the space of the top principal components.
  PcaBasis basis = pca_basis(train, context.cache_dir, context.data.key);
  torch::Tensor axes =
      basis.vectors.narrow(1, 0, std::min(cfg.fd_components, basis.vectors.size(1)));
  auto project = [&](const torch::Tensor& x) {
    return (x.to(torch::kFloat64) - basis.mean).mm(axes);
  };
  torch::Tensor test_scores = project(test);
  double fd_before = frechet_distance(project(start), test_scores);

  std::vector<Metric> metrics = {
      {"modify.fd_before", 0, fd_before},
      {"modify.selectivity", 0,
       selectivity(relative_change(start, reconstruct(model, start), mean_train),
                   relative_change(test, reconstruct(model, test), mean_train))}};
  std::set<int64_t> recorded(cfg.record.begin(), cfg.record.end());
  recorded.insert(cfg.steps);
  std::vector<torch::Tensor> shown;
  torch::Tensor x = start;
  for (int64_t t = 1; t <= cfg.steps; ++t) {
    x = reconstruct(model, x);
    if (t == 1) shown.push_back(x);
    if (recorded.count(t) == 0) continue;
    metrics.push_back({"modify.change", t, rms(x - start) / spread});
    metrics.push_back(
        {"modify.pull", t, (nearest_distance(x, train) / typical).median().item<double>()});
    metrics.push_back(
        {"modify.fd_gain", t, 1.0 - frechet_distance(project(x), test_scores) / fd_before});
  }
  if (cfg.steps > 1) shown.push_back(x);

  if (cfg.attractor_sample > 0) {
    int64_t n = std::min(cfg.attractor_sample, train.size(0));
    for (const Metric& m : attractor_metrics(model, train.narrow(0, 0, n), cfg.steps)) {
      metrics.push_back(m);
    }
  }
  if (!cfg.images.empty()) {
    std::vector<Tile> pictures;
    for (const std::string& file : picture_files(cfg.images)) {
      pictures.push_back(load_picture(file, parse_fit(cfg.fit)));
    }
    std::vector<std::vector<Tile>> steps =
        iterate_pictures(context.config, checkpoint_path(context), pictures, cfg.steps);
    std::vector<Tile> rows;
    for (std::size_t start = 0; start < pictures.size(); start += 8) {
      for (std::size_t t : {std::size_t{0}, std::size_t{1}, steps.size() - 1}) {
        for (std::size_t i = start; i < start + 8; ++i) {
          rows.push_back(i < pictures.size() ? steps[t][i] : Tile(3072, 1.0f));
        }
      }
    }
    std::string user = context.run_dir + "/images/user.png";
    write_grid_png(user, rows, 8);
    record_image(context, user, "image");
  }
  fault_point("modify");
  context.store.put_metrics(context.config.id(), "modify", metrics);
  auto last = [&](const std::string& name) {
    double value = 0;
    for (const Metric& m : metrics) {
      if (m.name == name) value = m.value;
    }
    return value;
  };
  info("modify: after {} steps change {:.3f}, pull {:.3f}, fd_gain {:.3f}; selectivity {:.2f}",
       cfg.steps, last("modify.change"), last("modify.pull"), last("modify.fd_gain"),
       last("modify.selectivity"));

  std::string path = context.run_dir + "/images/modify.png";
  write_image_rows(path, start, shown, context.config.report_images());
  record_image(context, path, "image");
}

}  // namespace pl
