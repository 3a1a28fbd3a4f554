// The principal-component experiments on point clouds: inputs, the exact PCA
// reference and the pca.* measures of METRICS.md.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "pipeline/fault.h"
#include "pipeline/log.h"
#include "pipeline/paths.h"
#include "stages/analysis.h"
#include "stages/cloud.h"
#include "stages/model.h"
#include "stages/stages.h"

namespace pl {
namespace {

constexpr double kDegrees = 180.0 / 3.14159265358979323846;

bool is_linear(const ModelConfig& m) {
  return m.activation == "identity" && m.bottleneck_activation == "identity" &&
         m.output_activation == "identity";
}

std::vector<double> to_vector(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// Principal angles (degrees, ascending) between the column spaces of a [d, k]
// and b [d, k].
std::vector<double> principal_angles(const torch::Tensor& a, const torch::Tensor& b) {
  auto qa = std::get<0>(torch::linalg_qr(a));
  auto qb = std::get<0>(torch::linalg_qr(b));
  torch::Tensor cosines = torch::linalg_svdvals(qa.t().mm(qb)).clamp(-1.0, 1.0);
  std::vector<double> angles;
  for (double c : to_vector(cosines)) angles.push_back(std::acos(c) * kDegrees);
  std::sort(angles.begin(), angles.end());
  return angles;
}

// The cloud's points and noiseless curve moved into the net's input space,
// so curve_fve() measures in the space the other fve values use.
Cloud standardized_copy(const Cloud& cloud, const Standardizer& s) {
  Cloud copy = cloud;
  auto move = [&](std::vector<double>& values) {
    if (values.empty()) return;
    int64_t rows = static_cast<int64_t>(values.size()) / cloud.dim;
    torch::Tensor t = torch::from_blob(values.data(), {rows, cloud.dim}, torch::kFloat64);
    values = to_vector(s.apply(t));
  };
  move(copy.points);
  move(copy.curve);
  return copy;
}

std::string points_csv(const Cloud& cloud, const torch::Tensor& fitted, const torch::Tensor& code) {
  std::string text;
  std::vector<std::string> header;
  for (const std::string& c : cloud.columns) header.push_back(c);
  for (const std::string& c : cloud.columns) header.push_back("f_" + c);
  for (int64_t j = 0; j < code.size(1); ++j) header.push_back(fmt::format("z{}", j + 1));
  if (!cloud.parameter.empty()) header.push_back("t");
  text += fmt::format("{}\n", fmt::join(header, ","));
  torch::Tensor f = fitted.contiguous();
  torch::Tensor z = code.to(torch::kFloat64).contiguous();
  const double* fp = f.data_ptr<double>();
  const double* zp = z.data_ptr<double>();
  const int64_t d = cloud.dim, k = z.size(1);
  for (int64_t i = 0; i < cloud.count; ++i) {
    std::vector<double> row(cloud.point(i), cloud.point(i) + d);
    row.insert(row.end(), fp + i * d, fp + (i + 1) * d);
    row.insert(row.end(), zp + i * k, zp + (i + 1) * k);
    if (!cloud.parameter.empty()) row.push_back(cloud.parameter[i]);
    text += fmt::format("{:.9g}\n", fmt::join(row, ","));
  }
  return text;
}

}  // namespace

ModelConfig model_config(const RunConfig& config, const Cloud* cloud) {
  ModelConfig m = config.model();
  if (cloud != nullptr) m.input = cloud->dim;
  return m;
}

torch::Tensor cloud_points(const Cloud& cloud) {
  return torch::from_blob(const_cast<double*>(cloud.points.data()), {cloud.count, cloud.dim},
                          torch::kFloat64)
      .clone();
}

Standardizer make_standardizer(const torch::Tensor& points, const std::string& mode) {
  const int64_t d = points.size(1);
  auto options = torch::TensorOptions().dtype(torch::kFloat64);
  Standardizer s{torch::zeros({d}, options), torch::ones({d}, options)};
  if (mode == "center" || mode == "scale") s.mean = points.mean(0);
  if (mode == "scale") {
    torch::Tensor sd = points.std(0, /*unbiased=*/false);
    // A constant column stays as it is instead of dividing by zero.
    s.scale = torch::where(sd > 0, sd, torch::ones_like(sd));
  }
  return s;
}

torch::Tensor training_inputs(const RunConfig& config, const CifarData& data, const Cloud* cloud) {
  if (cloud == nullptr) return to_tensor(data.train.pixels.data(), data.train.count);
  torch::Tensor x = cloud_points(*cloud);
  return make_standardizer(x, config.model().standardize).apply(x).to(torch::kFloat32);
}

void evaluate_cloud_stage(const StageContext& context) {
  use_threads(context.config.train().threads);
  const Cloud& cloud = *context.cloud;
  const ModelConfig net = model_config(context.config, &cloud);
  Autoencoder model = load_trained(checkpoint_path(context), net);
  torch::NoGradGuard no_grad;

  // Everything is measured in the space the net was trained in.
  torch::Tensor raw = cloud_points(cloud);
  Standardizer standardizer = make_standardizer(raw, net.standardize);
  torch::Tensor x = standardizer.apply(raw);
  torch::Tensor fitted = reconstruct(model, x.to(torch::kFloat32)).to(torch::kFloat64);
  torch::Tensor code = model->encode(x.to(torch::kFloat32)).to(torch::kFloat64);
  torch::Tensor centred = x - x.mean(0);
  double total = centred.pow(2).sum().item<double>();
  double residual = (x - fitted).pow(2).sum().item<double>();
  double fve = 1.0 - residual / total;

  PcaBasis basis = pca_basis(x, "", "");
  std::vector<double> lambda = to_vector(basis.values.clamp_min(0));
  double lambda_sum = std::accumulate(lambda.begin(), lambda.end(), 0.0);
  const int64_t k = std::min<int64_t>(net.bottleneck, static_cast<int64_t>(lambda.size()));
  double lambda_k = std::accumulate(lambda.begin(), lambda.begin() + k, 0.0);

  std::vector<Metric> metrics = {
      {"pca.fve", 0, fve},
      {"pca.mse", 0, residual / static_cast<double>(cloud.count * cloud.dim)},
      {"pca.fve_pc1", 0, lambda[0] / lambda_sum},
      {"pca.fve_pck", 0, lambda_k / lambda_sum},
      {"pca.closed", 0, cloud.closed ? 1.0 : 0.0},
  };
  std::vector<std::string> notes;

  double angle = std::nan("");
  if (is_linear(net)) {
    // A linear decoder is affine: g(z) = A z + b, and its columns span the
    // net's subspace.
    auto options = torch::TensorOptions().dtype(torch::kFloat32);
    torch::Tensor origin = model->decode(torch::zeros({1, k}, options));
    torch::Tensor columns = (model->decode(torch::eye(k, options)) - origin).t();
    std::vector<double> angles =
        principal_angles(columns.to(torch::kFloat64), basis.vectors.narrow(1, 0, k));
    angle = angles.back();
    metrics.push_back({"pca.angle", 0, angle});
    for (std::size_t i = 0; i < angles.size() && k > 1; ++i)
      metrics.push_back({"pca.principal_angle", static_cast<int64_t>(i + 1), angles[i]});
    notes.push_back(fmt::format("largest angle to the top {} PCs: {:.3g} degrees", k, angle));
  }

  double rho = std::nan("");
  if (k == 1 && !cloud.parameter.empty()) {
    // The sign of the bottleneck's axis is arbitrary; its order is what counts.
    rho = std::abs(spearman(to_vector(code), cloud.parameter));
    metrics.push_back({"pca.spearman", 0, rho});
  }
  double ideal = curve_fve(standardized_copy(cloud, standardizer));
  if (std::isfinite(ideal)) metrics.push_back({"pca.fve_curve", 0, ideal});

  notes.insert(notes.begin(),
               fmt::format("fve {:.3f}; {} alone {:.3f}{}", fve,
                           k == 1 ? "PC1" : fmt::format("top {} PCs", k), lambda_k / lambda_sum,
                           std::isfinite(ideal) ? fmt::format("; ideal curve {:.3f}", ideal)
                                                : std::string()));
  if (std::isfinite(rho)) notes.push_back(fmt::format("|Spearman| of code with t: {:.3f}", rho));
  if (cloud.closed && k == 1) {
    std::string why =
        "the cloud is a closed curve: a continuous one-unit bottleneck cannot follow it, so the "
        "net must tear it somewhere; read fve and Spearman as the cost of that tear, not as a "
        "nonlinear principal component";
    warn("{}", why);
    notes.push_back("closed curve: a one-unit bottleneck must tear it (see the log)");
  }
  fault_point("evaluate");
  context.store.put_metrics(context.config.id(), "evaluate", metrics);
  info(
      "pca: fve {:.4f} ({} {:.4f}{}){}{}", fve, k == 1 ? "PC1" : fmt::format("top {} PCs", k),
      lambda_k / lambda_sum, std::isfinite(ideal) ? fmt::format(", ideal curve {:.4f}", ideal) : "",
      std::isfinite(angle) ? fmt::format(", {} {:.3f} degrees",
                                         k == 1 ? "angle to PC1" : "largest principal angle", angle)
                           : "",
      std::isfinite(rho) ? fmt::format(", |Spearman| {:.4f}", rho) : "");

  // The figure: the cloud in its own coordinates when it is 2-D, else on its
  // first two principal axes; the net's reconstruction of every point, in the
  // order of its bottleneck value.
  torch::Tensor fitted_raw = standardizer.invert(fitted);
  torch::Tensor plane, offset;
  CloudFigure figure;
  figure.title = fmt::format("{} {}", context.config.id(), context.config.architecture(cloud.dim));
  notes.insert(notes.begin(), cloud.description);
  if (cloud.dim == 2) {
    plane = torch::eye(2, torch::TensorOptions().dtype(torch::kFloat64));
    offset = torch::zeros({2}, torch::TensorOptions().dtype(torch::kFloat64));
    figure.x_label = cloud.columns[0];
    figure.y_label = cloud.columns[1];
  } else {
    PcaBasis raw_basis = pca_basis(raw, "", "");
    plane = raw_basis.vectors.narrow(1, 0, 2);
    offset = raw_basis.mean;
    figure.x_label = "PC1 of the data";
    figure.y_label = "PC2 of the data";
  }
  auto project = [&](const torch::Tensor& rows) {
    torch::Tensor p = ((rows - offset).mm(plane)).contiguous();
    std::vector<std::array<double, 2>> out(static_cast<std::size_t>(p.size(0)));
    const double* v = p.data_ptr<double>();
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = {v[2 * i], v[2 * i + 1]};
    return out;
  };
  // A figure shows at most kPlotted points, evenly spaced, so a large cloud
  // still gives a page a browser opens at once (points.csv keeps them all).
  constexpr int64_t kPlotted = 4000;
  const int64_t stride = (cloud.count + kPlotted - 1) / kPlotted;
  torch::Tensor shown = torch::arange(0, cloud.count, stride);
  figure.points = project(raw.index_select(0, shown));
  torch::Tensor order = k == 1 ? code.squeeze(1).argsort() : torch::arange(cloud.count);
  figure.fitted = project(fitted_raw.index_select(0, order.index_select(0, shown)));
  figure.fitted_is_curve = k == 1;
  // PC1 through the mean, as far as the points reach along it.
  torch::Tensor u = basis.vectors.narrow(1, 0, 1);
  torch::Tensor along = centred.mm(u);
  torch::Tensor ends =
      torch::stack({along.min() * u.squeeze(1), along.max() * u.squeeze(1)}) + x.mean(0);
  auto pc = project(standardizer.invert(ends));
  figure.pc_from = pc[0];
  figure.pc_to = pc[1];
  figure.notes = notes;

  std::string svg = context.run_dir + "/images/cloud.svg";
  write_file_atomic(svg, cloud_svg(figure));
  record_image(context, svg, "figure");
  std::string csv = context.run_dir + "/images/points.csv";
  write_file_atomic(csv, points_csv(cloud, fitted_raw, code));
  record_image(context, csv, "table");
}

}  // namespace pl
