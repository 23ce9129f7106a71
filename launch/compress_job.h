// One `ctrps compress` job on one worker (launch/cmd_compress.cc runs it in
// this process or on every worker under mpirun): the state that moves from
// stage to stage. compress_job.cc has the job's setup, measurements and
// Run (the plan's stages in order, resuming after the last saved one);
// compress_stages.cc the stages themselves (AFM / weight SVD, DeepLight,
// UMEC and its baselines) and the fine-tuning.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics_writer.h"
#include "compression/afm.h"
#include "launch/cluster.h"
#include "launch/compress_plan.h"
#include "launch/serving_cost.h"
#include "worker/train/trainer.h"

namespace ctrps::launch::compress {

inline double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

struct Row {  // one line of the before/after table
  std::string what;
  Size size;
  worker::EvalResult valid, test;
  bool has_valid = false, has_test = false;
  bool has_serving = false;  // --serving-cost
  ServingCost serving;
  double seconds = 0;
};

// One compress job on one worker: the state that moves from stage to stage.
class CompressJob {
 public:
  CompressJob(const LoadedConfig& c, const WorkerRole& role, const std::string& from,
              bool serving_cost)
      : c_(c), role_(role), from_(from), serving_cost_(serving_cost) {}

  Status Run();

 private:
  Status OpenData();
  // Builds the model of `model_config`, declares its tables, and loads
  // `dir` (a saved model or a checkpoint) into them.
  Status LoadSource(const std::string& dir);
  StatusOr<std::unique_ptr<worker::Trainer>> NewTrainer(const worker::TrainerOptions& to,
                                                        worker::DenseOptimizer* opt);
  Status Measure(const std::string& what, double seconds);
  Status RunStage(int i, const compression::AfmPlan& plan);
  // UMEC: the constrained training (resuming from its checkpoint when one
  // exists), then the removal of the chosen fields and neurons.
  Status RunUmec(int i);
  Status FineTune(int i, bool resume);
  Status Barrier(const std::string& what);
  std::string StageDir(int i) const;
  std::string ConfigText() const;
  std::string ScratchDir() const;

  const LoadedConfig& c_;
  WorkerRole role_;
  std::string from_;
  worker::DatasetSchema schema_;
  config::ModelConfig model_config_;  // the current model's structure
  std::unique_ptr<worker::Model> model_;
  std::unique_ptr<worker::BatchSource> train_, stats_, valid_, test_;
  MetricsWriter metrics_;
  std::vector<Row> rows_;
  bool serving_cost_;
};

}  // namespace ctrps::launch::compress
