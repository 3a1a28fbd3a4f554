// Training-step benchmark of pipeline's train stage loop: the same model,
// optimizer and batch gathering as stages/train.cpp, on synthetic data.
// Prints one line: net, batch, threads, images/s, GFLOP/s and the
// matrix-multiply ceiling measured in the same process.
//
// usage: train_bench NET BATCH THREADS STEPS   (NET: S, W or D)
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "stages/model.h"

namespace {

using Clock = std::chrono::steady_clock;

std::vector<int64_t> hidden_of(const std::string& net) {
  if (net == "S") return {1024};
  if (net == "W") return {4096};
  return {10240, 4096, 2048, 1024};
}

// Floating-point operations of one training step per image. A forward pass
// is one multiply-add per weight (two operations); the backward pass needs
// two: the weights' gradient and the layer input's, except for the first
// layer, whose input (the data) needs no gradient.
double step_flops(const std::vector<int64_t>& hidden) {
  std::vector<int64_t> w = {3072};
  w.insert(w.end(), hidden.begin(), hidden.end());
  w.push_back(96);
  double weights = 0;
  for (std::size_t i = 0; i + 1 < w.size(); ++i) weights += 2.0 * w[i] * w[i + 1];  // mirrored
  double first = static_cast<double>(w[0]) * w[1];
  return 2.0 * (3.0 * weights - first);
}

// Best GFLOP/s of square float matrix products of the layer size.
double mm_ceiling(int64_t n) {
  torch::Tensor a = torch::randn({n, n}), b = torch::randn({n, n}), c = torch::empty({n, n});
  double best = 0;
  for (int i = 0; i < 8; ++i) {
    auto start = Clock::now();
    torch::mm_out(c, a, b);
    double s = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::max(best, 2.0 * n * n * n / s / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: train_bench NET(S|W|D) BATCH THREADS STEPS\n");
    return 2;
  }
  mallopt(M_MMAP_MAX, 0);  // as the pipeline program does
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  std::string net = argv[1];
  int64_t batch = std::atoll(argv[2]);
  int threads = std::atoi(argv[3]);
  int steps = std::atoi(argv[4]);
  pl::use_threads(threads);

  pl::ModelConfig model_config;
  model_config.hidden = hidden_of(net);
  model_config.bottleneck = 96;
  model_config.activation = model_config.output_activation = "tanh";
  pl::TrainConfig train_config;
  train_config.optimizer = "adam";
  train_config.lr = 1e-3;
  torch::manual_seed(0);
  pl::Autoencoder model(model_config);
  pl::Optimizer optimizer(model->parameters(), train_config);
  torch::Tensor data = torch::rand({5000, 3072}) * 2 - 1;
  torch::Tensor x = torch::empty({batch, 3072});

  auto step = [&](int64_t i) {
    torch::Tensor index = torch::randint(5000, {batch}, torch::kInt64);
    torch::index_select_out(x, data, 0, index);
    optimizer.zero_grad();
    torch::mse_loss(model->forward(x), x).backward();
    optimizer.step();
  };
  for (int i = 0; i < 3; ++i) step(i);  // warm-up: allocations, thread pool
  auto start = Clock::now();
  for (int i = 0; i < steps; ++i) step(i);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  double images = static_cast<double>(steps) * batch / seconds;
  double gflops = step_flops(model_config.hidden) * images / 1e9;
  std::printf("cpp net=%s batch=%lld threads=%d images_per_s=%.1f gflops=%.1f mm_ceiling=%.1f\n",
              net.c_str(), static_cast<long long>(batch), threads, images, gflops,
              mm_ceiling(1024));
  return 0;
}
