// The attractor test's Jacobian spectral radii: the modify stage's
// forward-mode products against the plain autograd way (two backward passes
// of k rows per picture), alternating, on random pictures through a fresh net.
//
// usage: spectral_bench HIDDEN BOTTLENECK PICTURES THREADS ROUNDS
//   e.g. spectral_bench 4096 96 200 2 3
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>

#include "stages/measures.h"
#include "stages/model.h"

namespace {

torch::Tensor autograd_radius(pl::Autoencoder& model, const torch::Tensor& x) {
  std::vector<double> radii;
  for (int64_t i = 0; i < x.size(0); ++i) {
    torch::Tensor z = model->encode(x[i].unsqueeze(0)).detach();
    const int64_t k = z.size(1);
    torch::Tensor xs = x[i].detach().unsqueeze(0).repeat({k, 1}).requires_grad_(true);
    torch::Tensor b = torch::autograd::grad({model->encode(xs).diagonal().sum()}, {xs})[0];
    torch::Tensor zs = z.repeat({k, 1}).requires_grad_(true);
    torch::Tensor ba = torch::autograd::grad({(model->decode(zs) * b).sum()}, {zs})[0];
    radii.push_back(torch::linalg::eigvals(ba.to(torch::kFloat64)).abs().max().item<double>());
  }
  return torch::tensor(radii, torch::kFloat64);
}

double seconds_of(const std::function<void()>& body) {
  auto start = std::chrono::steady_clock::now();
  body();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    fmt::print(stderr, "usage: spectral_bench HIDDEN BOTTLENECK PICTURES THREADS ROUNDS\n");
    return 2;
  }
  pl::ModelConfig config;
  config.hidden = {std::atoll(argv[1])};
  config.bottleneck = std::atoll(argv[2]);
  config.activation = "tanh";
  config.output_activation = "tanh";
  const int64_t pictures = std::atoll(argv[3]);
  pl::use_threads(std::atoi(argv[4]));
  const int rounds = std::atoi(argv[5]);
  torch::manual_seed(0);
  pl::Autoencoder model(config);
  torch::Tensor x = torch::rand({pictures, 3072}) * 2 - 1;
  std::vector<double> plain, forward;
  double largest_difference = 0;
  for (int r = 0; r < rounds; ++r) {
    torch::Tensor a, b;
    plain.push_back(seconds_of([&] { a = autograd_radius(model, x); }));
    forward.push_back(seconds_of([&] { b = pl::latent_spectral_radius(model, x); }));
    largest_difference =
        std::max(largest_difference, ((a - b).abs() / a.abs()).max().item<double>());
  }
  std::sort(plain.begin(), plain.end());
  std::sort(forward.begin(), forward.end());
  double p = plain[plain.size() / 2], f = forward[forward.size() / 2];
  fmt::print(
      "net=3072-{}-{} pictures={} threads={} autograd_s={:.2f} forward_s={:.2f} speedup={:.2f} "
      "largest_relative_difference={:.1e}\n",
      argv[1], argv[2], pictures, argv[4], p, f, p / f, largest_difference);
  return 0;
}
