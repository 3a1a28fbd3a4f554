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

// An activation module's output and derivative at the pre-activation `pre`.
std::pair<torch::Tensor, torch::Tensor> activate(const std::shared_ptr<torch::nn::Module>& module,
                                                 const torch::Tensor& pre) {
  if (auto leaky = std::dynamic_pointer_cast<torch::nn::LeakyReLUImpl>(module)) {
    double slope = leaky->options.negative_slope();
    return {torch::leaky_relu(pre, slope),
            torch::where(pre > 0, torch::ones_like(pre), torch::full_like(pre, slope))};
  }
  if (std::dynamic_pointer_cast<torch::nn::TanhImpl>(module)) {
    torch::Tensor y = pre.tanh();
    return {y, 1 - y * y};
  }
  if (std::dynamic_pointer_cast<torch::nn::ReLUImpl>(module)) {
    return {pre.relu(), (pre > 0).to(pre.scalar_type())};
  }
  if (std::dynamic_pointer_cast<torch::nn::SigmoidImpl>(module)) {
    torch::Tensor y = pre.sigmoid();
    return {y, y * (1 - y)};
  }
  if (std::dynamic_pointer_cast<torch::nn::IdentityImpl>(module)) {
    return {pre, torch::ones_like(pre)};
  }
  throw std::logic_error("no derivative for the layer " + module->name());
}

// Jacobian-vector products through `layers` at the inputs `h` ([m, in]):
// each of the tangents ([m, k, in]) becomes its image ([m, k, out]).
torch::Tensor push_tangents(torch::nn::Sequential& layers, torch::Tensor h,
                            torch::Tensor tangents) {
  for (const auto& layer : layers->children()) {
    if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(layer)) {
      h = torch::addmm(linear->bias, h, linear->weight.t());
      tangents = tangents.matmul(linear->weight.t());
    } else {
      auto [out, slope] = activate(layer, h);
      tangents = tangents * slope.unsqueeze(1);
      h = out;
    }
  }
  return tangents;
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
  // f = dec . enc, so J_f(x) = A B with A = J_dec(z), B = J_enc(x), z = enc(x);
  // B A is k x k and has the same non-zero eigenvalues. At a fixed point
  // (dec(z) = x) it is the Jacobian of enc . dec at z. Forward mode: the k
  // unit tangents at z go through the decoder (giving A's columns), then
  // through the encoder's Jacobian at x (giving B A), a few pictures at once.
  torch::NoGradGuard no_grad;
  constexpr int64_t kChunk = 16;
  std::vector<torch::Tensor> radii;
  for (int64_t i = 0; i < x.size(0); i += kChunk) {
    torch::Tensor xs = x.narrow(0, i, std::min(kChunk, x.size(0) - i));
    torch::Tensor z = model->encode(xs);
    const int64_t m = z.size(0), k = z.size(1);
    torch::Tensor unit = torch::eye(k, z.options()).unsqueeze(0).expand({m, k, k}).contiguous();
    torch::Tensor columns = push_tangents(model->decoder, z, unit);      // [m, k, d]: A e_j
    torch::Tensor product = push_tangents(model->encoder, xs, columns);  // [m, k, k]: B A e_j
    radii.push_back(torch::linalg_eigvals(product.to(torch::kFloat64)).abs().amax(1));
  }
  return torch::cat(radii);
}

torch::Tensor full_jacobian(Autoencoder& model, const torch::Tensor& x) {
  const int64_t d = x.size(0);
  torch::Tensor inputs = x.detach().unsqueeze(0).repeat({d, 1}).requires_grad_(true);
  torch::Tensor out = model->forward(inputs);
  return torch::autograd::grad({out.diagonal().sum()}, {inputs})[0];
}

}  // namespace pl
