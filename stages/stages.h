// The per-run stages after ingest: train, evaluate, modify.
//
// Each takes the run's context and leaves its results in the run folder
// (checkpoint.h5, images/) and its recorder (metrics, artifacts: the run
// database, or a Slurm task's journal). They talk to each other only through
// the checkpoint, so any stage can be rerun alone. LibTorch stays inside
// their implementation files.
#pragma once

#include <atomic>
#include <stdexcept>
#include <string>

#include "pipeline/config.h"
#include "pipeline/recorder.h"
#include "stages/cloud.h"
#include "stages/image.h"
#include "stages/ingest.h"

namespace pl {

struct StageContext {
  const RunConfig& config;
  const CifarData& data;
  RunRecorder& store;                       // the run database, or a Slurm task's journal
  std::string run_dir;                      // runs/<run-id>
  std::string cache_dir;                    // shared by runs (PCA bases)
  const std::atomic<bool>* stop = nullptr;  // set when the user asks to stop
  const Cloud* cloud = nullptr;             // the points, when the data is a point cloud

  // The key of the data the run trains on: the cloud's, else the images'.
  const std::string& data_key() const { return cloud != nullptr ? cloud->key : data.key; }
};

// The training loss became NaN or infinite; the run fails with this reason.
class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class TrainOutcome { kDone, kInterrupted };

// Trains from the last checkpoint (or from scratch), writing per-epoch
// metrics and a checkpoint every train.checkpoint_every epochs and at the end.
// Returns kInterrupted after saving a checkpoint when *stop became true.
TrainOutcome train_stage(const StageContext& context);

// copy.* metrics (METRICS.md) and images/copy.png; for a point cloud the
// pca.* metrics, images/cloud.svg and images/points.csv instead.
void evaluate_stage(const StageContext& context);
void evaluate_cloud_stage(const StageContext& context);

// modify.* metrics and images/modify.png.
void modify_stage(const StageContext& context);

// Iterates the net of a trained run on pictures: result[t][i] is picture i
// after t steps, t = 0 .. steps.
std::vector<std::vector<Tile>> iterate_pictures(const RunConfig& config,
                                                const std::string& checkpoint,
                                                const std::vector<Tile>& pictures, int64_t steps);

// Records a file the run wrote (with its checksum) in the run database.
void record_image(const StageContext& context, const std::string& path, const std::string& kind);

// Caps the threads any stage uses (train.threads, or every core when 0).
// `pipeline run --jobs N` sets it to cores / N in each of its processes.
void set_thread_limit(int threads);

// Path of the checkpoint in a run folder.
inline std::string checkpoint_path(const std::string& run_dir) {
  return run_dir + "/checkpoint.h5";
}
inline std::string checkpoint_path(const StageContext& context) {
  return checkpoint_path(context.run_dir);
}

}  // namespace pl
