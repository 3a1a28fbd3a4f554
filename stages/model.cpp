#include "stages/model.h"

#include <fmt/format.h>

#include <cmath>
#include <thread>

#include "pipeline/fault.h"
#include "pipeline/h5file.h"
#include "stages/adam_kernel.h"
#include "stages/stages.h"

namespace pl {
namespace {

torch::nn::AnyModule activation(const std::string& name) {
  if (name == "tanh") return torch::nn::AnyModule(torch::nn::Tanh());
  if (name == "relu") return torch::nn::AnyModule(torch::nn::ReLU());
  if (name == "sigmoid") return torch::nn::AnyModule(torch::nn::Sigmoid());
  if (name == "leaky_relu") return torch::nn::AnyModule(torch::nn::LeakyReLU());
  return torch::nn::AnyModule(torch::nn::Identity());
}

torch::nn::Sequential stack(const std::vector<int64_t>& widths, const std::string& hidden_act,
                            const std::string& last_act) {
  torch::nn::Sequential seq;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    seq->push_back(torch::nn::Linear(widths[i], widths[i + 1]));
    seq->push_back(activation(i + 2 == widths.size() ? last_act : hidden_act));
  }
  return seq;
}

std::vector<int64_t> shape_of(const torch::Tensor& t) { return t.sizes().vec(); }

}  // namespace

AutoencoderImpl::AutoencoderImpl(const ModelConfig& config) {
  std::vector<int64_t> widths = {config.input};
  widths.insert(widths.end(), config.hidden.begin(), config.hidden.end());
  widths.push_back(config.bottleneck);
  std::vector<int64_t> back(widths.rbegin(), widths.rend());
  std::string bottleneck_act =
      config.bottleneck_activation.empty() ? config.activation : config.bottleneck_activation;
  encoder = register_module("encoder", stack(widths, config.activation, bottleneck_act));
  decoder = register_module("decoder", stack(back, config.activation, config.output_activation));
}

torch::Tensor AutoencoderImpl::forward(const torch::Tensor& x) {
  return decoder->forward(encoder->forward(x));
}
torch::Tensor AutoencoderImpl::encode(const torch::Tensor& x) { return encoder->forward(x); }
torch::Tensor AutoencoderImpl::decode(const torch::Tensor& z) { return decoder->forward(z); }

int64_t AutoencoderImpl::parameter_count() const {
  int64_t count = 0;
  for (const auto& p : parameters()) count += p.numel();
  return count;
}

Optimizer::Optimizer(std::vector<torch::Tensor> params, const TrainConfig& config)
    : params_(std::move(params)), config_(config) {
  for (const torch::Tensor& p : params_) {
    if (config_.optimizer == "adam") {
      state_.push_back({torch::zeros_like(p), torch::zeros_like(p)});
    } else {
      state_.push_back({torch::zeros_like(p)});
    }
    scratch_.emplace_back();  // allocated on first use, off the fused path
  }
}

std::vector<std::string> Optimizer::state_names() const {
  if (config_.optimizer == "adam") return {"exp_avg", "exp_avg_sq"};
  return {"momentum_buffer"};
}

void Optimizer::zero_grad() {
  // Dropped, not zeroed: backward then hands each parameter the gradient it
  // computed, where a zeroed one costs a pass to clear and a pass to add into.
  for (torch::Tensor& p : params_) p.mutable_grad().reset();
}

namespace {

bool fused_adam_applies(const torch::Tensor& p, const torch::Tensor& g, const torch::Tensor& m,
                        const torch::Tensor& v) {
  for (const torch::Tensor* t : {&p, &g, &m, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || !t->is_contiguous())
      return false;
  }
  return true;
}

}  // namespace

void Optimizer::step() {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double lr = config_.lr;
  const double wd = config_.weight_decay;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& p = params_[i];
    if (!p.grad().defined()) continue;
    torch::Tensor g = p.grad();

    if (config_.optimizer == "adam") {
      constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
      torch::Tensor& m = state_[i][0];
      torch::Tensor& v = state_[i][1];
      double bc1 = 1 - std::pow(kBeta1, static_cast<double>(steps_));
      double bc2 = 1 - std::pow(kBeta2, static_cast<double>(steps_));
      if (fused_adam_applies(p, g, m, v)) {
        // One pass over the parameter, its gradient and both moments, split
        // between LibTorch's threads: the step is bound by memory traffic,
        // which the op-by-op form below multiplies by four.
        AdamStep step{static_cast<float>(kBeta1),         static_cast<float>(1 - kBeta1),
                      static_cast<float>(kBeta2),         static_cast<float>(1 - kBeta2),
                      static_cast<float>(std::sqrt(bc2)), static_cast<float>(kEps),
                      static_cast<float>(-lr / bc1),      static_cast<float>(wd)};
        float* pp = p.data_ptr<float>();
        const float* gp = g.data_ptr<float>();
        float* mp = m.data_ptr<float>();
        float* vp = v.data_ptr<float>();
        at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
          adam_span(step, pp + begin, gp + begin, mp + begin, vp + begin, end - begin);
        });
        continue;
      }
      // torch.optim.Adam's update as in-place ops, with a buffer kept from
      // step to step (other devices and types).
      if (wd != 0) g = g.add(p, wd);
      m.mul_(kBeta1).add_(g, 1 - kBeta1);
      v.mul_(kBeta2).addcmul_(g, g, 1 - kBeta2);
      torch::Tensor& denom = scratch_[i];
      if (!denom.defined()) denom = torch::empty_like(p);
      torch::sqrt_out(denom, v);
      denom.div_(std::sqrt(bc2)).add_(kEps);
      p.addcdiv_(m, denom, -lr / bc1);
    } else {
      if (wd != 0) g = g.add(p, wd);
      torch::Tensor& buf = state_[i][0];
      buf.mul_(config_.momentum).add_(g);
      p.add_(buf, -lr);
    }
  }
}

void save_checkpoint(const std::string& path, Autoencoder& model, Optimizer* optimizer,
                     const TrainPosition& position, const std::string& config_text) {
  H5Writer out(path);
  auto params = model->named_parameters();
  std::size_t index = 0;
  for (const auto& item : params) {
    torch::Tensor w = item.value().detach().to(torch::kCPU).contiguous();
    out.put("model/" + item.key(), shape_of(w), w.data_ptr<float>());
    if (optimizer != nullptr) {
      std::vector<std::string> names = optimizer->state_names();
      for (std::size_t s = 0; s < names.size(); ++s) {
        torch::Tensor t = optimizer->state()[index][s].to(torch::kCPU).contiguous();
        out.put("optimizer/" + item.key() + "." + names[s], shape_of(t), t.data_ptr<float>());
      }
    }
    ++index;
    if (index == params.size() / 2) fault_point("checkpoint-write");
  }
  std::vector<double> losses = position.losses;
  if (losses.empty()) losses.push_back(std::nan(""));  // HDF5 needs a non-empty extent
  out.put("history/loss", {static_cast<int64_t>(losses.size())}, losses.data());
  out.attr("format", std::string("pipeline-checkpoint-1"));
  out.attr("epoch", position.epoch);
  out.attr("next_batch", position.next_batch);
  out.attr("partial_loss", position.partial_loss);
  out.attr("optimizer_steps", optimizer != nullptr ? optimizer->steps() : int64_t{0});
  out.attr("config", config_text);
  out.attr("data_key", position.data_key);
  out.commit();
}

TrainPosition load_checkpoint(const std::string& path, Autoencoder& model, Optimizer* optimizer) {
  try {
    H5Reader in(path);
    if (!in.has_attr("format") || in.attr_text("format") != "pipeline-checkpoint-1") {
      throw CheckpointError(fmt::format("{}: not a pipeline checkpoint", path));
    }
    torch::NoGradGuard no_grad;
    std::size_t index = 0;
    for (auto& item : model->named_parameters()) {
      Array<float> w = in.read_float("model/" + item.key());
      if (w.shape != shape_of(item.value())) {
        throw CheckpointError(fmt::format(
            "{}: '{}' has shape [{}] but the model needs [{}]: the checkpoint is from another "
            "model; delete it or change the model config back",
            path, item.key(), fmt::join(w.shape, ", "), fmt::join(shape_of(item.value()), ", ")));
      }
      item.value().copy_(torch::from_blob(w.data.data(), w.shape, torch::kFloat32));
      if (optimizer != nullptr) {
        std::vector<std::string> names = optimizer->state_names();
        for (std::size_t s = 0; s < names.size(); ++s) {
          Array<float> t = in.read_float("optimizer/" + item.key() + "." + names[s]);
          optimizer->state()[index][s].copy_(
              torch::from_blob(t.data.data(), t.shape, torch::kFloat32));
        }
      }
      ++index;
    }
    TrainPosition position;
    position.epoch = in.attr_int("epoch");
    position.next_batch = in.attr_int("next_batch");
    position.partial_loss = in.attr_double("partial_loss");
    position.losses = in.read_double("history/loss").data;
    if (in.has_attr("data_key")) position.data_key = in.attr_text("data_key");
    position.losses.resize(static_cast<std::size_t>(position.epoch));
    if (optimizer != nullptr) optimizer->set_steps(in.attr_int("optimizer_steps"));
    return position;
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    throw CheckpointError(e.what());
  }
}

torch::Tensor to_tensor(const uint8_t* bytes, int64_t count) {
  torch::Tensor raw = torch::from_blob(const_cast<uint8_t*>(bytes), {count, 3072}, torch::kUInt8);
  return raw.to(torch::kFloat32).div_(127.5).sub_(1.0);
}

namespace {
int g_thread_limit = 0;  // 0: no limit
}  // namespace

void set_thread_limit(int threads) { g_thread_limit = threads; }

int use_threads(int threads) {
  int n =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (g_thread_limit > 0) n = std::min(n, g_thread_limit);
  torch::set_num_threads(n);
  return n;
}

}  // namespace pl
