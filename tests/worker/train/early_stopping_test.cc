// Early stopping keeps the best evaluated model, not the last one: dense
// values and embedding rows are those of the best validation result when
// training ends, with checkpoints, and after a resume.
#include <filesystem>

#include <gtest/gtest.h>

#include "ps/client.h"
#include "storage/embedding_store.h"
#include "tests/storage/temp_dir.h"
#include "tests/worker/train/test_util.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/train/trainer.h"

namespace ctrps::worker {
namespace {
namespace fs = std::filesystem;
using storage::testing::FreshDir;
using testing::PlantedBatches;
using testing::VectorStream;

constexpr int kFields = 4;

// The planted data in its first pass, then with every label flipped: the
// validation AUC peaks after epoch 1 and falls after.
class FlippingStream : public BatchSource {
 public:
  explicit FlippingStream(std::vector<Batch> batches) : batches_(std::move(batches)) {}
  StatusOr<bool> Next(Batch* b) override {
    if (pos_ >= batches_.size()) return false;
    *b = batches_[pos_++];
    if (pass_ > 0)
      for (float& l : b->labels) l = 1.0f - l;
    return true;
  }
  Status Rewind() override {
    pass_ = started_ ? pass_ + 1 : 0;
    started_ = true;
    pos_ = 0;
    return Status::OK();
  }
  std::string SkippedSummary() const override { return ""; }
  StatusOr<std::string> SavePosition() const override {
    return std::to_string(pass_) + " " + std::to_string(pos_);
  }
  Status RestorePosition(const std::string& p) override {
    const size_t sp = p.find(' ');
    pass_ = std::stoi(p.substr(0, sp));
    pos_ = std::stoul(p.substr(sp + 1));
    started_ = true;
    return Status::OK();
  }

 private:
  std::vector<Batch> batches_;
  size_t pos_ = 0;
  int pass_ = 0;
  bool started_ = false;
};

struct Job {
  std::unique_ptr<Model> model;
  std::unique_ptr<DenseOptimizer> opt;
  std::unique_ptr<storage::EmbeddingStore> store;
  std::unique_ptr<ps::EmbeddingClient> client;
  std::unique_ptr<Trainer> trainer;
  TrainResult result;

  Job(int epochs, int patience, const std::string& best_dir, const std::string& ckpt_dir = "",
      int64_t max_steps = 0, bool evaluate_at_start = false) {
    store = storage::NewMemoryStore();
    client = ps::NewLocalClient(store.get(), 4);
    ModelOptions mo;
    mo.type = ModelType::kFM;
    mo.num_fields = kFields;
    mo.emb_dims.assign(kFields, 4);
    model = std::move(NewModel(mo)).value();
    DenseOptimizerOptions oo;
    oo.type = DenseOptimizerOptions::Type::kAdam;
    oo.learning_rate = 0.02f;
    opt = std::move(NewDenseOptimizer(oo, model->dense_size())).value();
    TrainerOptions to;
    to.epochs = epochs;
    to.max_steps = max_steps;
    to.early_stopping_patience = patience;
    to.sparse_optimizer.type = ps::SparseOptimizerType::kAdagrad;
    to.sparse_optimizer.learning_rate = 0.1f;
    to.embedding_init_scale = 0.05f;
    to.best_model_dir = best_dir;
    to.evaluate_at_start = evaluate_at_start;
    to.checkpoint.dir = ckpt_dir;
    to.checkpoint.every_steps = ckpt_dir.empty() ? 0 : 5;
    to.checkpoint.keep_last = 10;
    trainer = std::make_unique<Trainer>(to, model.get(), opt.get(), client.get(), nullptr);
    EXPECT_TRUE(trainer->DeclareTables().ok());
  }
  Status Run(bool resume = false, bool flipped_from_start = false) {
    FlippingStream train(PlantedBatches(12, 64, kFields, 50, 3));
    if (flipped_from_start) RETURN_IF_ERROR(train.Rewind());  // Train's Rewind is pass 1
    VectorStream valid(PlantedBatches(6, 64, kFields, 50, 4));
    if (resume) {
      std::string from;
      RETURN_IF_ERROR(trainer->Resume("", true, &from));
    }
    ASSIGN_OR_RETURN(result, trainer->Train(&train, &valid));
    return Status::OK();
  }
  std::map<Key, std::vector<float>> Rows() const {
    std::map<Key, std::vector<float>> out;
    for (const auto& t : store->Tables())
      EXPECT_TRUE(store->Scan(t.table_id, [&](Key k, const float* row, const storage::RowStats&) {
        out[k] = std::vector<float>(row, row + t.row_floats());
        return true;
      }).ok());
    return out;
  }
  std::vector<float> Dense() const {
    return std::vector<float>(model->dense_values(), model->dense_values() + model->dense_size());
  }
};

// Fine-tuning that only makes the model worse keeps the model it started
// from (evaluated before the first step).
TEST(EarlyStoppingTest, EvaluateAtStartKeepsAStartNoStepBeats) {
  const std::string dir = FreshDir("early-start");
  Job job(2, 2, dir + "/best", "", 0, /*evaluate_at_start=*/true);
  // A trained start: the dense values of a model trained one good epoch.
  {
    Job warm(1, 0, "");
    ASSERT_TRUE(warm.Run().ok());
    std::copy_n(warm.model->dense_values(), warm.model->dense_size(), job.model->dense_values());
  }
  const std::vector<float> start = job.Dense();
  ASSERT_TRUE(job.Run(false, /*flipped_from_start=*/true).ok());
  EXPECT_EQ(job.result.best_valid_step, 0);
  EXPECT_TRUE(job.result.restored_best);
  EXPECT_EQ(job.Dense(), start);
  // Without it, the last (worse) model is kept... or an early worse one.
  Job plain(2, 2, dir + "/best2");
  std::copy_n(start.begin(), start.size(), plain.model->dense_values());
  ASSERT_TRUE(plain.Run(false, true).ok());
  EXPECT_GT(plain.result.best_valid_step, 0);
  EXPECT_NE(plain.Dense(), start);
}

TEST(EarlyStoppingTest, KeepsTheBestEvaluatedModel) {
  // Reference: one epoch, the best one.
  Job best(1, 0, "");
  ASSERT_TRUE(best.Run().ok());
  Job run(10, 2, FreshDir("best-model") + "/best");
  ASSERT_TRUE(run.Run().ok());
  ASSERT_TRUE(run.result.early_stopped);
  EXPECT_EQ(run.result.epochs_completed, 3);  // epochs 2 and 3 did not gain
  EXPECT_EQ(run.result.best_valid_step, 12);
  EXPECT_LT(run.result.last_valid.auc, run.result.best_valid.auc);
  EXPECT_TRUE(run.result.restored_best);
  EXPECT_TRUE(run.Dense() == best.Dense()) << "the dense values are not the best model's";
  EXPECT_TRUE(run.Rows() == best.Rows()) << "the embedding rows are not the best model's";
  // Its validation AUC is the best one, as a test evaluation would see it.
  VectorStream valid(PlantedBatches(6, 64, kFields, 50, 4));
  auto again = run.trainer->Evaluate(&valid, 0);
  ASSERT_TRUE(again.ok());
  EXPECT_DOUBLE_EQ(again->auc, run.result.best_valid.auc);
}

TEST(EarlyStoppingTest, TheBestModelSurvivesCheckpointsAndResume) {
  Job best(1, 0, "");
  ASSERT_TRUE(best.Run().ok());
  // Stopped by max_steps in epoch 2 (after the best was kept and checkpoints
  // taken), then resumed with no step limit: it stops early in epoch 2.
  const std::string ckpt = FreshDir("best-ckpt");
  {
    Job first(10, 2, "", ckpt, 20);
    ASSERT_TRUE(first.Run().ok());
  }
  Job resumed(10, 2, "", ckpt);
  ASSERT_TRUE(resumed.Run(/*resume=*/true).ok());
  ASSERT_TRUE(resumed.result.early_stopped);
  EXPECT_TRUE(resumed.result.restored_best);
  EXPECT_TRUE(resumed.Dense() == best.Dense());
  EXPECT_TRUE(resumed.Rows() == best.Rows());
  EXPECT_TRUE(fs::exists(ckpt + "/best/MANIFEST.pb"));
  // Resuming the finished run trains nothing and restores the best again.
  Job finished(10, 2, "", ckpt);
  ASSERT_TRUE(finished.Run(/*resume=*/true).ok());
  EXPECT_TRUE(finished.Dense() == best.Dense());
  EXPECT_TRUE(finished.Rows() == best.Rows());
}

}  // namespace
}  // namespace ctrps::worker
