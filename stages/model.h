// The autoencoder, its optimizers and its HDF5 checkpoints (LibTorch inside).
//
// Layout, as PyTorch would name it:
//   encoder = Sequential(Linear(3072, h1), act, ..., Linear(hn, k), act)
//   decoder = Sequential(Linear(k, hn), act, ..., Linear(h1, 3072), out_act)
// so parameters are "encoder.0.weight", "encoder.0.bias", "encoder.2.weight"...
// and a Python user rebuilds the same nn.Sequential pair to load them.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "pipeline/config.h"
#include "stages/ingest.h"

namespace pl {

class AutoencoderImpl : public torch::nn::Module {
 public:
  explicit AutoencoderImpl(const ModelConfig& config);

  torch::Tensor forward(const torch::Tensor& x);  // [n, input] -> [n, input]
  torch::Tensor encode(const torch::Tensor& x);   // [n, input] -> [n, k]
  torch::Tensor decode(const torch::Tensor& z);   // [n, k] -> [n, input]

  int64_t parameter_count() const;

  torch::nn::Sequential encoder{nullptr};
  torch::nn::Sequential decoder{nullptr};
};
TORCH_MODULE(Autoencoder);

// Adam (as torch.optim.Adam, L2 weight decay added to the gradient) or SGD
// with momentum, with state that can be saved and restored exactly.
class Optimizer {
 public:
  Optimizer(std::vector<torch::Tensor> params, const TrainConfig& config);

  void zero_grad();
  void step();

  int64_t steps() const { return steps_; }
  // Per parameter: Adam's exp_avg and exp_avg_sq, or SGD's momentum buffer.
  std::vector<std::vector<torch::Tensor>>& state() { return state_; }
  std::vector<std::string> state_names() const;
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  std::vector<torch::Tensor> params_;
  std::vector<std::vector<torch::Tensor>> state_;
  std::vector<torch::Tensor> scratch_;
  TrainConfig config_;
  int64_t steps_ = 0;
};

// Where training stands, saved with the weights so a run resumes exactly.
struct TrainPosition {
  int64_t epoch = 0;           // epochs completed
  int64_t next_batch = 0;      // batches of epoch+1 already done (interrupted mid-epoch)
  double partial_loss = 0;     // sum of batch losses x batch sizes in that epoch so far
  std::vector<double> losses;  // mean training loss of each completed epoch
  std::string data_key;        // the data it was trained on ("" in older checkpoints)
};

// A checkpoint that cannot be used: missing, truncated, another model.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes atomically (temporary file, then rename). `optimizer` may be null.
void save_checkpoint(const std::string& path, Autoencoder& model, Optimizer* optimizer,
                     const TrainPosition& position, const std::string& config_text);

// Loads weights (and optimizer state when `optimizer` is not null) into
// tensors of matching shape. Throws CheckpointError naming the file and the
// first mismatch.
TrainPosition load_checkpoint(const std::string& path, Autoencoder& model, Optimizer* optimizer);

// Bytes in plane order to a float tensor in [-1, 1]: [count, 3072].
torch::Tensor to_tensor(const uint8_t* bytes, int64_t count);

// Sets LibTorch's thread count: `threads`, or every core when 0.
int use_threads(int threads);

}  // namespace pl

namespace pl {

struct Cloud;

// The run's model config with the input width of its data (a point cloud's
// dimension, or 3,072 for CIFAR-10).
ModelConfig model_config(const RunConfig& config, const Cloud* cloud);

// A cloud's points, [n, d] float64, in the data's units.
torch::Tensor cloud_points(const Cloud& cloud);

// model.standardize: the net sees (x - mean) / scale. "none" keeps x,
// "center" subtracts the mean, "scale" also divides by each column's
// standard deviation.
struct Standardizer {
  torch::Tensor mean;   // [d] float64
  torch::Tensor scale;  // [d] float64

  torch::Tensor apply(const torch::Tensor& x) const { return (x - mean) / scale; }
  torch::Tensor invert(const torch::Tensor& y) const { return y * scale + mean; }
};
Standardizer make_standardizer(const torch::Tensor& points, const std::string& mode);

// The training inputs of a run: the class's training images, or the cloud
// standardized, as float32 [n, d].
torch::Tensor training_inputs(const RunConfig& config, const CifarData& data, const Cloud* cloud);

// f(x) for many images without autograd, `batch` rows at a time: [n, d].
torch::Tensor reconstruct(Autoencoder& model, const torch::Tensor& x, int64_t batch = 500);

// Loads the run's trained weights; throws CheckpointError.
Autoencoder load_trained(const std::string& checkpoint, const ModelConfig& config);

// Exact PCA of a set of images (float64 covariance eigendecomposition).
struct PcaBasis {
  torch::Tensor mean;     // [d], float64
  torch::Tensor values;   // [d], eigenvalues, descending
  torch::Tensor vectors;  // [d, d], column i is component i
};

// PCA of `images` ([n, d] float), cached in `cache_dir` under `key` when
// both are not empty.
PcaBasis pca_basis(const torch::Tensor& images, const std::string& cache_dir,
                   const std::string& key);

// Writes a PNG of `count` originals ([n, 3072] in [-1, 1]), each row of
// originals followed by rows of the same pictures from each of `versions`.
void write_image_rows(const std::string& path, const torch::Tensor& originals,
                      const std::vector<torch::Tensor>& versions, int64_t count);

// Mean squared error of reconstructing `x` from its first k components.
double pca_mse(const PcaBasis& basis, const torch::Tensor& x, int64_t k);

}  // namespace pl
