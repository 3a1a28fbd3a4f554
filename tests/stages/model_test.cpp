#include "stages/model.h"

#include <doctest/doctest.h>

#include <filesystem>

#include "../test_util.h"

namespace pl {
namespace {

ModelConfig small_model() {
  ModelConfig config;
  config.input = 3072;
  config.hidden = {32, 16};
  config.bottleneck = 4;
  config.activation = "tanh";
  config.output_activation = "tanh";
  return config;
}

TrainConfig adam() {
  TrainConfig config;
  config.optimizer = "adam";
  config.lr = 1e-3;
  return config;
}

void train_steps(Autoencoder& model, Optimizer& optimizer, const torch::Tensor& x, int steps) {
  for (int i = 0; i < steps; ++i) {
    optimizer.zero_grad();
    torch::mse_loss(model->forward(x), x).backward();
    optimizer.step();
  }
}

bool same_parameters(Autoencoder& a, Autoencoder& b) {
  auto pa = a->parameters();
  auto pb = b->parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    if (!torch::equal(pa[i], pb[i])) return false;
  }
  return true;
}

TEST_CASE("parameters are named as a PyTorch state dict of the mirrored net") {
  Autoencoder model(small_model());
  auto named = model->named_parameters();
  CHECK(named.contains("encoder.0.weight"));
  CHECK(named["encoder.0.weight"].sizes().vec() == std::vector<int64_t>{32, 3072});
  CHECK(named["encoder.4.weight"].sizes().vec() == std::vector<int64_t>{4, 16});
  CHECK(named["decoder.0.weight"].sizes().vec() == std::vector<int64_t>{16, 4});
  CHECK(named["decoder.4.bias"].sizes().vec() == std::vector<int64_t>{3072});
  CHECK(model->parameter_count() ==
        3072 * 32 + 32 + 32 * 16 + 16 + 16 * 4 + 4 + 4 * 16 + 16 + 16 * 32 + 32 + 32 * 3072 + 3072);
}

TEST_CASE("the fused Adam step matches LibTorch's Adam to 1e-6 over several steps") {
  torch::manual_seed(1);
  Autoencoder ours(small_model());
  torch::manual_seed(1);
  Autoencoder reference(small_model());
  Optimizer optimizer(ours->parameters(), adam());
  torch::optim::Adam torch_adam(reference->parameters(), torch::optim::AdamOptions(1e-3));
  torch::Tensor x = torch::rand({8, 3072}) * 2 - 1;
  for (int step = 0; step < 5; ++step) {
    train_steps(ours, optimizer, x, 1);
    torch_adam.zero_grad();
    torch::mse_loss(reference->forward(x), x).backward();
    torch_adam.step();
  }
  auto a = ours->parameters();
  auto b = reference->parameters();
  for (std::size_t i = 0; i < a.size(); ++i) {
    double error = ((a[i] - b[i]).abs().max() / b[i].abs().max()).item<double>();
    CHECK(error < 1e-6);
  }
}

TEST_CASE("a checkpoint round trip gives the same outputs") {
  testing::ScratchDir dir;
  torch::manual_seed(2);
  Autoencoder model(small_model());
  TrainPosition position;
  position.epoch = 3;
  position.losses = {0.3, 0.2, 0.1};
  save_checkpoint(dir / "c.h5", model, nullptr, position, "model.bottleneck: 4\n");

  torch::manual_seed(99);
  Autoencoder loaded(small_model());
  TrainPosition back = load_checkpoint(dir / "c.h5", loaded, nullptr);
  torch::Tensor x = torch::rand({5, 3072});
  CHECK(torch::equal(model->forward(x), loaded->forward(x)));
  CHECK(back.epoch == 3);
  CHECK(back.losses == position.losses);
}

TEST_CASE("training resumed from a checkpoint ends bitwise equal to training left alone") {
  testing::ScratchDir dir;
  torch::Tensor x = torch::rand({16, 3072}) * 2 - 1;
  torch::manual_seed(3);
  Autoencoder straight(small_model());
  Optimizer straight_opt(straight->parameters(), adam());
  train_steps(straight, straight_opt, x, 6);

  torch::manual_seed(3);
  Autoencoder first(small_model());
  Optimizer first_opt(first->parameters(), adam());
  train_steps(first, first_opt, x, 3);
  save_checkpoint(dir / "c.h5", first, &first_opt, {}, "");

  torch::manual_seed(42);
  Autoencoder resumed(small_model());
  Optimizer resumed_opt(resumed->parameters(), adam());
  load_checkpoint(dir / "c.h5", resumed, &resumed_opt);
  CHECK(resumed_opt.steps() == 3);
  train_steps(resumed, resumed_opt, x, 3);
  CHECK(same_parameters(straight, resumed));
}

TEST_CASE("a checkpoint of another model or a damaged one is refused with its name") {
  testing::ScratchDir dir;
  Autoencoder model(small_model());
  save_checkpoint(dir / "c.h5", model, nullptr, {}, "");
  ModelConfig other = small_model();
  other.hidden = {64, 16};
  Autoencoder different(other);
  auto message = [&](const std::string& path, Autoencoder& target) {
    try {
      load_checkpoint(path, target, nullptr);
    } catch (const CheckpointError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(message(dir / "c.h5", different).find("from another model") != std::string::npos);
  std::filesystem::resize_file(dir / "c.h5", 2000);
  CHECK(message(dir / "c.h5", model).find("c.h5") != std::string::npos);
}

TEST_CASE("PCA reconstruction error equals the orthogonal projection's residual") {
  torch::manual_seed(4);
  torch::Tensor x = torch::randn({200, 6}).mm(torch::randn({6, 6}));
  PcaBasis basis = pca_basis(x, "", "");
  torch::Tensor centred = x.to(torch::kFloat64) - x.to(torch::kFloat64).mean(0);
  for (int64_t k : {1, 3}) {
    torch::Tensor v = basis.vectors.narrow(1, 0, k);
    torch::Tensor projector = v.mm(v.t());
    double expected = (centred - centred.mm(projector)).pow(2).mean().item<double>();
    CHECK(pca_mse(basis, x, k) == doctest::Approx(expected).epsilon(1e-9));
  }
  // The residual of k components is the sum of the remaining eigenvalues.
  double rest = basis.values.narrow(0, 2, 4).sum().item<double>() / 6.0;
  CHECK(pca_mse(basis, x, 2) == doctest::Approx(rest).epsilon(1e-6));
  CHECK(pca_mse(basis, x, 6) < 1e-20);
}

}  // namespace
}  // namespace pl
