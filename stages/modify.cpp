#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "pipeline/fault.h"
#include "pipeline/log.h"
#include "stages/model.h"
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

}  // namespace

void modify_stage(const StageContext& context) {
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

  std::set<int64_t> recorded(cfg.record.begin(), cfg.record.end());
  recorded.insert(cfg.steps);
  std::vector<Metric> metrics;
  std::vector<torch::Tensor> shown;
  torch::Tensor x = start;
  for (int64_t t = 1; t <= cfg.steps; ++t) {
    x = reconstruct(model, x);
    if (t == 1) shown.push_back(x);
    if (recorded.count(t) == 0) continue;
    double change = rms(x - start) / spread;
    double pull = (nearest_distance(x, train) / typical).median().item<double>();
    metrics.push_back({"modify.change", t, change});
    metrics.push_back({"modify.pull", t, pull});
  }
  if (cfg.steps > 1) shown.push_back(x);
  fault_point("modify");
  context.store.put_metrics(context.config.id(), "modify", metrics);
  info("modify: after {} steps change {:.3f}, pull {:.3f}", cfg.steps,
       metrics[metrics.size() - 2].value, metrics.back().value);

  std::string path = context.run_dir + "/images/modify.png";
  write_image_rows(path, start, shown, context.config.report_images());
  record_image(context, path, "image");
}

}  // namespace pl
