#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "pipeline/hash.h"
#include "pipeline/log.h"
#include "stages/model.h"
#include "stages/stages.h"

namespace pl {
namespace {

using Clock = std::chrono::steady_clock;

// The order of an epoch's batches depends only on (seed, epoch), so a run
// resumed at any epoch sees the same order as one left alone.
std::vector<int64_t> epoch_order(int64_t count, int64_t seed, int64_t epoch) {
  std::mt19937_64 rng(static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull +
                      static_cast<uint64_t>(epoch));
  std::vector<int64_t> order(static_cast<std::size_t>(count));
  for (int64_t i = 0; i < count; ++i) order[i] = i;
  for (int64_t i = count - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

std::string duration_text(double seconds) {
  if (seconds >= 3600) return fmt::format("{}h{:02}m", int(seconds / 3600), int(seconds / 60) % 60);
  if (seconds >= 60) return fmt::format("{}m{:02}s", int(seconds / 60), int(seconds) % 60);
  return fmt::format("{:.0f}s", seconds);
}

void show_progress(int64_t epoch, int64_t epochs, int64_t batch, int64_t batches, double loss,
                   double rate, double left) {
  constexpr int kBar = 24;
  int filled = static_cast<int>(kBar * batch / std::max<int64_t>(1, batches));
  set_progress_line(fmt::format("epoch {}/{} [{}{}] loss {:.5f} {:.0f} img/s, {} left", epoch,
                                epochs, std::string(filled, '#'), std::string(kBar - filled, '.'),
                                loss, rate, duration_text(left)));
}

// Loads the last checkpoint if there is one. One that cannot be read is set
// aside (renamed) with a warning and training starts over.
TrainPosition resume(const std::string& path, Autoencoder& model, Optimizer& optimizer) {
  if (!std::filesystem::exists(path)) return {};
  try {
    TrainPosition position = load_checkpoint(path, model, &optimizer);
    info("resuming from {} at epoch {} (batch {})", path, position.epoch + 1, position.next_batch);
    return position;
  } catch (const CheckpointError& e) {
    std::string aside = path + ".bad";
    std::filesystem::rename(path, aside);
    warn("{}; moved it to {} and training starts from scratch", e.what(), aside);
    return {};
  }
}

}  // namespace

std::string checkpoint_path(const StageContext& context) {
  return context.run_dir + "/checkpoint.h5";
}

TrainOutcome train_stage(const StageContext& context) {
  const TrainConfig cfg = context.config.train();
  const std::string& run = context.config.id();
  if (cfg.device == "cuda" && !torch::cuda::is_available()) {
    throw std::runtime_error(
        "train.device is cuda but this LibTorch has no usable CUDA device; set train.device: cpu");
  }
  torch::Device device(cfg.device == "cuda" ? torch::kCUDA : torch::kCPU);
  int threads = use_threads(cfg.threads);

  torch::manual_seed(static_cast<uint64_t>(cfg.seed));
  Autoencoder model(context.config.model());
  model->to(device);
  Optimizer optimizer(model->parameters(), cfg);
  std::string path = checkpoint_path(context);
  TrainPosition position = resume(path, model, optimizer);
  info("model {} ({} parameters), {} threads, {} training images", context.config.architecture(),
       model->parameter_count(), threads, context.data.train.count);

  torch::Tensor images =
      to_tensor(context.data.train.pixels.data(), context.data.train.count).to(device);
  const int64_t count = images.size(0);
  const int64_t batches = (count + cfg.batch_size - 1) / cfg.batch_size;
  torch::Tensor batch = torch::empty({cfg.batch_size, images.size(1)}, images.options());
  auto index_options = torch::TensorOptions().dtype(torch::kInt64);

  for (int64_t epoch = position.epoch + 1; epoch <= cfg.epochs; ++epoch) {
    std::vector<int64_t> order = epoch_order(count, cfg.seed, epoch);
    auto start = Clock::now();
    auto last_draw = start;
    int64_t first_batch = position.next_batch;
    for (int64_t b = first_batch; b < batches; ++b) {
      int64_t begin = b * cfg.batch_size;
      int64_t size = std::min(cfg.batch_size, count - begin);
      torch::Tensor index =
          torch::from_blob(order.data() + begin, {size}, index_options).to(device);
      torch::Tensor x = batch.narrow(0, 0, size);
      torch::index_select_out(x, images, 0, index);

      optimizer.zero_grad();
      torch::Tensor loss = torch::mse_loss(model->forward(x), x);
      loss.backward();
      optimizer.step();
      double value = loss.item<double>();
      position.partial_loss += value * static_cast<double>(size);
      if (!std::isfinite(value)) {
        throw TrainingDiverged(
            fmt::format("training loss became {} at epoch {}, batch {}; lower train.lr (now {})",
                        value, epoch, b + 1, cfg.lr));
      }
      position.next_batch = b + 1;

      if (context.stop != nullptr && context.stop->load()) {
        clear_progress_line();
        save_checkpoint(path, model, &optimizer, position, context.config.canonical());
        info("stopped at epoch {}, batch {}/{}; checkpoint written, run again to resume", epoch,
             b + 1, batches);
        return TrainOutcome::kInterrupted;
      }
      auto now = Clock::now();
      if (std::chrono::duration<double>(now - last_draw).count() > 0.25) {
        last_draw = now;
        double elapsed = std::chrono::duration<double>(now - start).count();
        double rate = static_cast<double>((b + 1 - first_batch) * cfg.batch_size) / elapsed;
        double left = (static_cast<double>(batches - b - 1) * cfg.batch_size +
                       static_cast<double>((cfg.epochs - epoch) * count)) /
                      rate;
        show_progress(epoch, cfg.epochs, b + 1, batches,
                      position.partial_loss / ((b + 1) * cfg.batch_size), rate, left);
      }
    }

    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    double epoch_loss = position.partial_loss / static_cast<double>(count);
    double rate = static_cast<double>((batches - first_batch) * cfg.batch_size) / seconds;
    position.losses.push_back(epoch_loss);
    position.epoch = epoch;
    position.next_batch = 0;
    position.partial_loss = 0;
    clear_progress_line();
    context.store.put_metrics(run, "train",
                              {{"train.loss", epoch, epoch_loss},
                               {"train.images_per_s", epoch, rate},
                               {"train.epoch_seconds", epoch, seconds}});
    info("epoch {}/{}: loss {:.6f}, {:.0f} images/s, {:.1f} s", epoch, cfg.epochs, epoch_loss, rate,
         seconds);
    if (epoch % cfg.checkpoint_every == 0 || epoch == cfg.epochs) {
      save_checkpoint(path, model, &optimizer, position, context.config.canonical());
    }
  }

  if (std::filesystem::exists(path)) {
    context.store.put_artifact(run, {path, "checkpoint", hash_file(path),
                                     static_cast<int64_t>(std::filesystem::file_size(path))});
  }
  return TrainOutcome::kDone;
}

}  // namespace pl
