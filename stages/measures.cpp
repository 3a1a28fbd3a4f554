#include "stages/measures.h"

namespace pl {
namespace {

// The square root of a symmetric positive semi-definite matrix.
torch::Tensor sqrt_psd(const torch::Tensor& m) {
  auto [values, vectors] = torch::linalg::eigh(m, "L");
  return vectors.mm(torch::diag(values.clamp_min(0).sqrt())).mm(vectors.t());
}

torch::Tensor covariance(const torch::Tensor& x) {
  torch::Tensor centred = x - x.mean(0);
  return centred.t().mm(centred) / static_cast<double>(std::max<int64_t>(1, x.size(0) - 1));
}

}  // namespace

double frechet_distance(const torch::Tensor& a64, const torch::Tensor& b64) {
  torch::Tensor a = a64.to(torch::kFloat64);
  torch::Tensor b = b64.to(torch::kFloat64);
  torch::Tensor sa = covariance(a);
  torch::Tensor sb = covariance(b);
  torch::Tensor root_a = sqrt_psd(sa);
  torch::Tensor middle = root_a.mm(sb).mm(root_a);
  middle = (middle + middle.t()) / 2;  // symmetric up to rounding
  torch::Tensor cross = torch::linalg::eigvalsh(middle, "L").clamp_min(0).sqrt().sum();
  double mean_term = (a.mean(0) - b.mean(0)).pow(2).sum().item<double>();
  return mean_term + (sa.trace() + sb.trace() - 2 * cross).item<double>();
}

double relative_change(const torch::Tensor& x, const torch::Tensor& fx, const torch::Tensor& mean) {
  torch::Tensor moved = (fx - x).to(torch::kFloat64).pow(2).sum(1);
  torch::Tensor spread = (x - mean).to(torch::kFloat64).pow(2).sum(1).clamp_min(1e-12);
  return (moved / spread).mean().item<double>();
}

double selectivity(double foreign_change, double own_change) {
  constexpr double kTiny = 1e-12;
  return (foreign_change + kTiny) / (own_change + kTiny);
}

torch::Tensor latent_spectral_radius(Autoencoder& model, const torch::Tensor& x) {
  std::vector<double> radii;
  for (int64_t i = 0; i < x.size(0); ++i) {
    // f = dec . enc, so J_f(x) = A B with A = J_dec(z), B = J_enc(x), z = enc(x);
    // B A is k x k and has the same non-zero eigenvalues. At a fixed point
    // (dec(z) = x) it is the Jacobian of enc . dec at z.
    torch::Tensor z = model->encode(x[i].unsqueeze(0)).detach();
    const int64_t k = z.size(1);
    torch::Tensor xs = x[i].detach().unsqueeze(0).repeat({k, 1}).requires_grad_(true);
    torch::Tensor b = torch::autograd::grad({model->encode(xs).diagonal().sum()}, {xs})[0];
    torch::Tensor zs = z.repeat({k, 1}).requires_grad_(true);
    torch::Tensor ba = torch::autograd::grad({(model->decode(zs) * b).sum()}, {zs})[0];
    torch::Tensor eigenvalues = torch::linalg::eigvals(ba.to(torch::kFloat64));
    radii.push_back(eigenvalues.abs().max().item<double>());
  }
  return torch::tensor(radii, torch::kFloat64);
}

torch::Tensor full_jacobian(Autoencoder& model, const torch::Tensor& x) {
  const int64_t d = x.size(0);
  torch::Tensor inputs = x.detach().unsqueeze(0).repeat({d, 1}).requires_grad_(true);
  torch::Tensor out = model->forward(inputs);
  return torch::autograd::grad({out.diagonal().sum()}, {inputs})[0];
}

}  // namespace pl
