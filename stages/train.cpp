#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "pipeline/fault.h"
#include "pipeline/hash.h"
#include "pipeline/log.h"
#include "stages/cpu_kernels.h"
#include "stages/model.h"
#include "stages/stages.h"

namespace pl {
namespace {

using Clock = std::chrono::steady_clock;

// Pages this process has faulted in so far. A steady training step reuses
// its memory, so an epoch that faults many pages means freed memory went
// back to the kernel and came back: the allocator settings in main() failed.
int64_t page_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_minflt + usage.ru_majflt);
}

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

// Sets a checkpoint that cannot be used aside (renamed), with a warning.
void set_aside(const std::string& path, const std::string& why) {
  std::string aside = path + ".bad";
  std::filesystem::rename(path, aside);
  warn("{}: {}; moved it to {}", path, why, aside);
}

// Loads the newest usable checkpoint: the last one, else the one before it
// (kept as checkpoint.h5.prev while the next is written). A file whose
// checksum differs from the one recorded when it was written is set aside.
TrainPosition resume(const StageContext& context, Autoencoder& model, Optimizer& optimizer) {
  std::string last = checkpoint_path(context);
  for (const std::string& path : {last, last + ".prev"}) {
    if (!std::filesystem::exists(path)) continue;
    std::string recorded = context.store.artifact_checksum(context.config.id(), path);
    if (!recorded.empty() && hash_file(path) != recorded) {
      set_aside(path, "checksum differs from the one recorded when it was written");
      continue;
    }
    try {
      TrainPosition position = load_checkpoint(path, model, &optimizer);
      if (!position.data_key.empty() && position.data_key != context.data_key()) {
        set_aside(path, "it was trained on other data (the data changed since); training again");
        continue;
      }
      if (position.epoch >= context.config.train().epochs) {
        info("{} holds all {} epochs", path, position.epoch);
      } else {
        info("resuming from {} at epoch {} (batch {})", path, position.epoch + 1,
             position.next_batch);
      }
      return position;
    } catch (const CheckpointError& e) {
      set_aside(path, e.what());
    }
  }
  // Nothing usable: start again from the seeded initial weights.
  torch::manual_seed(static_cast<uint64_t>(context.config.train().seed));
  Autoencoder fresh(model_config(context.config, context.cloud));
  torch::NoGradGuard no_grad;
  auto target = model->parameters();
  auto source = fresh->parameters();
  for (std::size_t i = 0; i < target.size(); ++i) target[i].copy_(source[i]);
  for (auto& state : optimizer.state()) {
    for (auto& t : state) t.zero_();
  }
  optimizer.set_steps(0);
  return {};
}

// Writes the checkpoint, keeping the previous one until the new one is safely
// in place, and records its checksum. Returns the seconds it took.
double write_checkpoint(const StageContext& context, Autoencoder& model, Optimizer& optimizer,
                        const TrainPosition& position) {
  auto start = Clock::now();
  const std::string& run = context.config.id();
  std::string path = checkpoint_path(context);
  std::string prev = path + ".prev";
  if (std::filesystem::exists(path)) {
    std::filesystem::rename(path, prev);
    context.store.move_artifact(run, path, prev);
  }
  fault_point("checkpoint-swap");
  save_checkpoint(path, model, &optimizer, position, context.config.canonical());
  context.store.put_artifact(run, {path, "checkpoint", hash_file(path),
                                   static_cast<int64_t>(std::filesystem::file_size(path))});
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

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
  Autoencoder model(model_config(context.config, context.cloud));
  model->to(device);
  Optimizer optimizer(model->parameters(), cfg);
  TrainPosition position = resume(context, model, optimizer);
  position.data_key = context.data_key();
  torch::Tensor images = training_inputs(context.config, context.data, context.cloud).to(device);
  info("model {} ({} parameters), {} thread{} ({}), {} training {}",
       context.config.architecture(images.size(1)), model->parameter_count(), threads,
       threads == 1 ? "" : "s", cpu_kernels(), images.size(0),
       context.cloud != nullptr ? "points" : "images");
  static const bool hinted = [] {
    std::string hint = cpu_kernels_hint();
    if (!hint.empty()) info("{}", hint);
    return true;
  }();
  (void)hinted;

  const int64_t count = images.size(0);
  const int64_t batches = (count + cfg.batch_size - 1) / cfg.batch_size;
  torch::Tensor batch = torch::empty({cfg.batch_size, images.size(1)}, images.options());
  auto index_options = torch::TensorOptions().dtype(torch::kInt64);

  const int64_t first_epoch = position.epoch + 1;
  auto last_epoch_line = Clock::now();
  for (int64_t epoch = first_epoch; epoch <= cfg.epochs; ++epoch) {
    std::vector<int64_t> order = epoch_order(count, cfg.seed, epoch);
    int64_t faults_before = page_faults();
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
      fault_point("train-batch");

      if (context.stop != nullptr && context.stop->load()) {
        clear_progress_line();
        write_checkpoint(context, model, optimizer, position);
        info("stopped at epoch {}, batch {}/{}; checkpoint written, run again to resume", epoch,
             b + 1, batches);
        return TrainOutcome::kInterrupted;
      }
      auto now = Clock::now();
      if (std::chrono::duration<double>(now - last_draw).count() > 0.25) {
        last_draw = now;
        double elapsed = std::chrono::duration<double>(now - start).count();
        double rate = static_cast<double>(std::min(count, (b + 1) * cfg.batch_size) -
                                          first_batch * cfg.batch_size) /
                      elapsed;
        double left = (static_cast<double>(batches - b - 1) * cfg.batch_size +
                       static_cast<double>((cfg.epochs - epoch) * count)) /
                      rate;
        show_progress(epoch, cfg.epochs, b + 1, batches,
                      position.partial_loss / ((b + 1) * cfg.batch_size), rate, left);
      }
    }

    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    double epoch_loss = position.partial_loss / static_cast<double>(count);
    double rate = static_cast<double>(count - first_batch * cfg.batch_size) / seconds;
    position.losses.push_back(epoch_loss);
    position.epoch = epoch;
    position.next_batch = 0;
    position.partial_loss = 0;
    clear_progress_line();
    context.store.put_metrics(
        run, "train",
        {{"train.loss", epoch, epoch_loss},
         {"train.images_per_s", epoch, rate},
         {"train.epoch_seconds", epoch, seconds},
         {"train.page_faults", epoch, static_cast<double>(page_faults() - faults_before)}});
    // Short epochs (point clouds) log a line every few seconds, not each one.
    auto now = Clock::now();
    bool shown = epoch == first_epoch || epoch == cfg.epochs || seconds >= 0.5 ||
                 std::chrono::duration<double>(now - last_epoch_line).count() >= 2.0;
    log_message(
        shown ? Level::kInfo : Level::kDebug,
        fmt::format("epoch {}/{}: loss {:.6f}, {:.0f} {}/s, {:.2g} s", epoch, cfg.epochs,
                    epoch_loss, rate, context.cloud != nullptr ? "points" : "images", seconds));
    if (shown) last_epoch_line = now;
    fault_point("epoch-end");
    // Rows first, then the checkpoint: a kill between the two replays epochs
    // whose rows are then rewritten with the same values.
    if (epoch % cfg.checkpoint_every == 0 || epoch == cfg.epochs) {
      double write_seconds = write_checkpoint(context, model, optimizer, position);
      context.store.put_metrics(run, "train", {{"train.checkpoint_seconds", epoch, write_seconds}});
    }
  }

  // Training is over: the fallback checkpoint is no longer needed.
  std::string prev = checkpoint_path(context) + ".prev";
  std::error_code ignored;
  std::filesystem::remove(prev, ignored);
  context.store.remove_artifact(run, prev);
  return TrainOutcome::kDone;
}

}  // namespace pl
