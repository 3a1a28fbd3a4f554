#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "pipeline/h5file.h"
#include "pipeline/paths.h"
#include "stages/model.h"

namespace pl {
namespace {

torch::Tensor from_array(Array<double>& a) {
  return torch::from_blob(a.data.data(), a.shape, torch::kFloat64).clone();
}

// Refuses a checkpoint whose recorded model keys differ from `config`'s: a
// net of the same shapes but other activations would load without a word.
void check_model_keys(const std::string& checkpoint, const ModelConfig& config) {
  std::string written;
  try {
    H5Reader in(checkpoint);
    if (!in.has_attr("config")) return;  // older checkpoints: the shapes were checked
    written = in.attr_text("config");
  } catch (const std::exception& e) {
    throw CheckpointError(e.what());
  }
  std::map<std::string, std::string> expected = {
      {"model.activation", config.activation},
      {"model.output_activation", config.output_activation},
      {"model.bottleneck", std::to_string(config.bottleneck)},
      {"model.hidden", value_text(config.hidden)}};
  std::istringstream lines(written);
  for (std::string line; std::getline(lines, line);) {
    std::size_t colon = line.find(": ");
    if (colon == std::string::npos) continue;
    auto found = expected.find(line.substr(0, colon));
    if (found == expected.end() || found->second == line.substr(colon + 2)) continue;
    throw CheckpointError(fmt::format(
        "{}: written by a model with {}, but this run's model has {}: {}: the checkpoint is from "
        "another model; delete it or restore the run's own",
        checkpoint, line, found->first, found->second));
  }
}

}  // namespace

torch::Tensor reconstruct(Autoencoder& model, const torch::Tensor& x, int64_t batch) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch) {
    parts.push_back(model->forward(x.narrow(0, i, std::min(batch, x.size(0) - i))));
  }
  return torch::cat(parts);
}

Autoencoder load_trained(const std::string& checkpoint, const ModelConfig& config) {
  Autoencoder model(config);
  load_checkpoint(checkpoint, model, nullptr);
  check_model_keys(checkpoint, config);
  model->eval();
  return model;
}

PcaBasis pca_basis(const torch::Tensor& images, const std::string& cache_dir,
                   const std::string& key) {
  std::string path = cache_dir.empty() || key.empty() ? "" : cache_dir + "/pca-" + key + ".h5";
  if (!path.empty() && std::filesystem::exists(path)) {
    try {
      H5Reader in(path);
      Array<double> mean = in.read_double("mean");
      Array<double> values = in.read_double("values");
      Array<double> vectors = in.read_double("vectors");
      return {from_array(mean), from_array(values), from_array(vectors)};
    } catch (const std::exception&) {
      // A damaged cache is computed again below.
    }
  }

  torch::Tensor x = images.to(torch::kFloat64);
  torch::Tensor mean = x.mean(0);
  torch::Tensor centred = x - mean;
  torch::Tensor covariance = centred.t().mm(centred) / static_cast<double>(x.size(0));
  auto [values, vectors] = torch::linalg::eigh(covariance, "L");
  PcaBasis basis{mean, values.flip(0).contiguous(), vectors.flip(1).contiguous()};

  if (!path.empty()) {
    make_dirs(cache_dir);
    H5Writer out(path);
    out.put("mean", basis.mean.sizes().vec(), basis.mean.data_ptr<double>());
    out.put("values", basis.values.sizes().vec(), basis.values.data_ptr<double>());
    out.put("vectors", basis.vectors.sizes().vec(), basis.vectors.data_ptr<double>());
    out.commit();
  }
  return basis;
}

double pca_mse(const PcaBasis& basis, const torch::Tensor& x, int64_t k) {
  torch::Tensor centred = x.to(torch::kFloat64) - basis.mean;
  torch::Tensor v = basis.vectors.narrow(1, 0, k);
  torch::Tensor residual = centred - centred.mm(v).mm(v.t());
  return residual.pow(2).mean().item<double>();
}

}  // namespace pl
