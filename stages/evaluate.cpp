#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "pipeline/fault.h"
#include "pipeline/hash.h"
#include "pipeline/log.h"
#include "stages/image.h"
#include "stages/model.h"
#include "stages/stages.h"

namespace pl {
namespace {

double psnr(double mse) { return 10.0 * std::log10(4.0 / mse); }

Tile tile_of(const torch::Tensor& row) {
  torch::Tensor t = row.to(torch::kFloat32).contiguous();
  return Tile(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

// Rows of originals, each followed by the same pictures' versions (copies,
// iterations), `columns` pictures wide; blank tiles pad the last row.
void write_rows(const std::string& path, const std::vector<torch::Tensor>& sets, int64_t count,
                int columns) {
  std::vector<Tile> tiles;
  for (int64_t start = 0; start < count; start += columns) {
    for (const torch::Tensor& set : sets) {
      for (int64_t i = start; i < start + columns; ++i) {
        tiles.push_back(i < count ? tile_of(set[i]) : Tile(3072, 1.0f));
      }
    }
  }
  write_grid_png(path, tiles, columns);
}

}  // namespace

void record_image(const StageContext& context, const std::string& path, const std::string& kind) {
  context.store.put_artifact(
      context.config.id(),
      {path, kind, hash_file(path), static_cast<int64_t>(std::filesystem::file_size(path))});
}

void write_image_rows(const std::string& path, const torch::Tensor& originals,
                      const std::vector<torch::Tensor>& versions, int64_t count) {
  std::vector<torch::Tensor> sets = {originals};
  sets.insert(sets.end(), versions.begin(), versions.end());
  write_rows(path, sets, std::min<int64_t>(count, originals.size(0)), 8);
}

void evaluate_stage(const StageContext& context) {
  if (context.cloud != nullptr) return evaluate_cloud_stage(context);
  use_threads(context.config.train().threads);
  const ModelConfig model_config = context.config.model();
  Autoencoder model = load_trained(checkpoint_path(context), model_config);
  torch::Tensor test = to_tensor(context.data.test.pixels.data(), context.data.test.count);
  torch::Tensor train = to_tensor(context.data.train.pixels.data(), context.data.train.count);

  torch::Tensor copies = reconstruct(model, test);
  double mse = (copies - test).pow(2).mean().item<double>();
  double mse_train = (reconstruct(model, train) - train).pow(2).mean().item<double>();
  std::vector<Metric> metrics = {{"copy.mse", 0, mse},
                                 {"copy.psnr", 0, psnr(mse)},
                                 {"copy.mse_train", 0, mse_train},
                                 {"copy.psnr_train", 0, psnr(mse_train)}};

  // The same one-step copy of foreign pictures: how much worse strangers copy.
  int64_t foreign_count = std::min(context.config.modify().foreign, context.data.foreign.count);
  torch::Tensor foreign = to_tensor(context.data.foreign.pixels.data(), foreign_count);
  double mse_foreign = (reconstruct(model, foreign) - foreign).pow(2).mean().item<double>();
  metrics.push_back({"copy.mse_foreign", 0, mse_foreign});
  metrics.push_back({"copy.psnr_foreign", 0, psnr(mse_foreign)});

  if (context.config.evaluate().pca) {
    PcaBasis basis = pca_basis(train, context.cache_dir, context.data.key);
    int64_t k = std::min<int64_t>(model_config.bottleneck, basis.values.size(0));
    double pca_test = pca_mse(basis, test, k);
    double pca_train = pca_mse(basis, train, k);
    metrics.push_back({"copy.pca_mse", 0, pca_test});
    metrics.push_back({"copy.pca_psnr", 0, psnr(pca_test)});
    metrics.push_back({"copy.pca_mse_train", 0, pca_train});
    metrics.push_back({"copy.pca_psnr_train", 0, psnr(pca_train)});
    metrics.push_back({"copy.efficiency", 0, pca_test / mse});
    double pca_foreign = pca_mse(basis, foreign, k);
    metrics.push_back({"copy.pca_mse_foreign", 0, pca_foreign});
    metrics.push_back({"copy.pca_psnr_foreign", 0, psnr(pca_foreign)});
  }
  fault_point("evaluate");
  context.store.put_metrics(context.config.id(), "evaluate", metrics);
  info("copy: mse {:.5f}, psnr {:.2f} dB (train {:.2f} dB)", mse, psnr(mse), psnr(mse_train));

  std::string path = context.run_dir + "/images/copy.png";
  write_image_rows(path, test, {copies}, context.config.report_images());
  record_image(context, path, "image");
}

}  // namespace pl
