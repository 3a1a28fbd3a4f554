#include "stages/measures.h"

#include <doctest/doctest.h>

namespace pl {
namespace {

TEST_CASE("an identity map changes nothing and has selectivity 1") {
  torch::manual_seed(5);
  torch::Tensor foreign = torch::rand({50, 12});
  torch::Tensor own = torch::rand({40, 12});
  torch::Tensor mean = own.mean(0);
  double change = relative_change(foreign, foreign, mean);
  CHECK(change == 0.0);
  CHECK(selectivity(change, relative_change(own, own, mean)) == doctest::Approx(1.0));
}

TEST_CASE("a map to the class mean replaces the picture: change near 1") {
  torch::manual_seed(6);
  torch::Tensor x = torch::randn({200, 10}) + 3;
  torch::Tensor mean = torch::zeros({10}) + 3;
  torch::Tensor to_mean = mean.unsqueeze(0).expand({200, 10});
  CHECK(relative_change(x, to_mean, mean) == doctest::Approx(1.0));
  // A net that copies its class but sends strangers to the mean is selective.
  CHECK(selectivity(relative_change(x, to_mean, mean), 0.01) > 50);
}

TEST_CASE("the Frechet distance of a set with itself is 0") {
  torch::manual_seed(7);
  torch::Tensor a = torch::randn({300, 8}).mm(torch::randn({8, 8}));
  double scale = a.to(torch::kFloat64).var(0).sum().item<double>();  // tr(S), the FD's size
  CHECK(std::abs(frechet_distance(a, a)) < 1e-7 * scale);
}

TEST_CASE("the Frechet distance of two Gaussians matches the closed form") {
  // Diagonal covariances commute: FD = |mu_a - mu_b|^2 + sum (sd_a - sd_b)^2.
  torch::manual_seed(8);
  const int64_t n = 200000;
  torch::Tensor sd_a = torch::tensor({1.0, 2.0, 0.5}, torch::kFloat64);
  torch::Tensor sd_b = torch::tensor({3.0, 1.0, 0.5}, torch::kFloat64);
  torch::Tensor mu_b = torch::tensor({1.0, 0.0, -2.0}, torch::kFloat64);
  torch::Tensor a = torch::randn({n, 3}, torch::kFloat64) * sd_a;
  torch::Tensor b = torch::randn({n, 3}, torch::kFloat64) * sd_b + mu_b;
  double expected = mu_b.pow(2).sum().item<double>() + (sd_a - sd_b).pow(2).sum().item<double>();
  CHECK(frechet_distance(a, b) == doctest::Approx(expected).epsilon(0.02));
}

TEST_CASE("the latent Jacobian's spectral radius equals the full Jacobian's") {
  for (const char* act : {"tanh", "relu", "sigmoid", "leaky_relu", "identity"}) {
    CAPTURE(act);
    torch::manual_seed(9);
    ModelConfig config;
    config.input = 6;
    config.hidden = {5, 4};
    config.bottleneck = 3;
    config.activation = act;
    config.bottleneck_activation = "identity";
    config.output_activation = "tanh";
    Autoencoder model(config);
    // More pictures than one chunk of the batched computation.
    torch::Tensor x = torch::randn({20, 6});
    torch::Tensor latent = latent_spectral_radius(model, x);
    REQUIRE(latent.size(0) == 20);
    for (int64_t i = 0; i < 20; ++i) {
      torch::Tensor full = torch::linalg::eigvals(full_jacobian(model, x[i]).to(torch::kFloat64));
      CHECK(latent[i].item<double>() ==
            doctest::Approx(full.abs().max().item<double>()).epsilon(1e-4));
    }
  }
}

}  // namespace
}  // namespace pl
