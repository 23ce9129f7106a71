#include "worker/train/trainer.h"

#include <cmath>
#include <limits>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "ps/client.h"
#include "ps/transport.h"
#include "ps/worker_group.h"
#include "storage/embedding_store.h"
#include "tests/worker/train/test_util.h"
#include "worker/eval/auc.h"
#include "worker/nn/dense_optimizer.h"

namespace ctrps::worker {
namespace {

using testing::PlantedBatches;

struct Job {
  std::unique_ptr<Model> model;
  std::unique_ptr<DenseOptimizer> opt;
  std::unique_ptr<storage::EmbeddingStore> store = storage::NewMemoryStore();
  std::unique_ptr<ps::EmbeddingClient> client = ps::NewLocalClient(store.get());
  std::unique_ptr<Trainer> trainer;

  Job(ModelType type, int F, TrainerOptions to = {}) {
    ModelOptions mo;
    mo.type = type;
    mo.num_fields = F;
    mo.emb_dims.assign(F, type == ModelType::kLR ? 0 : 4);  // LR has no embeddings
    mo.mlp_dims = {16, 16};
    mo.bottom_mlp_dims = {8, 4};
    mo.num_dense_fields = 1;
    model = std::move(NewModel(mo)).value();
    DenseOptimizerOptions oo;
    oo.learning_rate = 0.01f;
    opt = std::move(NewDenseOptimizer(oo, model->dense_size())).value();
    to.sparse_optimizer.learning_rate = 0.05f;
    to.embedding_init_scale = 0.05f;
    trainer = std::make_unique<Trainer>(to, model.get(), opt.get(), client.get(), nullptr);
    EXPECT_TRUE(trainer->DeclareTables().ok());
  }
};

TEST(SigmoidCrossEntropyTest, MatchesNaiveFormula) {
  VectorF logits(4);
  logits << -3.0f, 0.0f, 2.5f, 40.0f;
  std::vector<float> labels = {0, 1, 1, 0};
  VectorF d;
  double loss = SigmoidCrossEntropy(logits, labels, &d);
  double ref = 0;
  for (int i = 0; i < 4; ++i) {
    double p = 1 / (1 + std::exp(-static_cast<double>(logits[i])));
    double z = logits[i];
    ref += labels[i] ? std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
    EXPECT_NEAR(d[i], (p - labels[i]) / 4, 1e-6);
  }
  EXPECT_NEAR(loss, ref / 4, 1e-5);  // finite even at logit 40 with label 0
}

TEST(TrainerTest, LearnsPlantedModelForEveryModelType) {
  // The planted model has additive weights plus a parity interaction of
  // fields 0 and 1, which only models with pairwise terms can capture.
  auto train = PlantedBatches(120, 256, 4, 50, 1);
  auto valid = PlantedBatches(10, 256, 4, 50, 2);
  std::map<ModelType, double> auc;
  for (ModelType type : {ModelType::kLR, ModelType::kFM, ModelType::kFwFM, ModelType::kDeepFM,
                         ModelType::kDeepFwFM, ModelType::kDCNv2, ModelType::kDLRM}) {
    TrainerOptions to;
    to.epochs = 2;
    Job job(type, 4, to);
    testing::VectorStream tr(train), va(valid);
    auto before = job.trainer->Evaluate(&va, 0);
    ASSERT_TRUE(before.ok());
    auto res = job.trainer->Train(&tr, &va);
    ASSERT_TRUE(res.ok()) << ModelTypeName(type) << ": " << res.status().ToString();
    EXPECT_EQ(res->steps, 240);
    EXPECT_EQ(res->epochs_completed, 2);
    EXPECT_GT(res->last_valid.auc, before->auc + 0.1) << ModelTypeName(type);
    EXPECT_LT(res->last_valid.logloss, 0.69) << ModelTypeName(type);
    auc[type] = res->last_valid.auc;
  }
  EXPECT_GT(auc[ModelType::kLR], 0.65);
  // DLRM's field 0 is its (here constant) dense input, so it cannot see the
  // interaction either; it still learns the additive part.
  EXPECT_GT(auc[ModelType::kDLRM], 0.65);
  for (ModelType type : {ModelType::kFM, ModelType::kFwFM, ModelType::kDeepFM,
                         ModelType::kDeepFwFM, ModelType::kDCNv2})
    EXPECT_GT(auc[type], auc[ModelType::kLR] + 0.1) << ModelTypeName(type);
}

TEST(TrainerTest, EvaluateMatchesReferenceAucAndDoesNotGrowTables) {
  Job job(ModelType::kLR, 3);
  auto data = PlantedBatches(4, 100, 3, 30, 3);
  testing::VectorStream s(data);
  std::vector<float> scores, labels;
  auto r = job.trainer->Evaluate(&s, 0, &scores, &labels);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows, 400);
  EXPECT_EQ(scores.size(), 400u);
  EXPECT_NEAR(r->auc, *ComputeAuc(scores, labels), 1e-12);
  EXPECT_EQ(job.store->Stats(0)->rows, 0u);
  auto capped = job.trainer->Evaluate(&s, 150);
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->rows, 150);
}

TEST(TrainerTest, DeterministicForSameSeed) {
  auto train = PlantedBatches(20, 128, 4, 40, 5);
  std::vector<std::vector<float>> weights;
  for (int run = 0; run < 2; ++run) {
    Job job(ModelType::kDeepFM, 4);
    testing::VectorStream tr(train);
    ASSERT_TRUE(job.trainer->Train(&tr, nullptr).ok());
    weights.emplace_back(job.model->dense_values(),
                         job.model->dense_values() + job.model->dense_size());
  }
  EXPECT_EQ(weights[0], weights[1]);
}

TEST(TrainerTest, EarlyStoppingAndMaxSteps) {
  auto train = PlantedBatches(30, 128, 4, 40, 6);
  TrainerOptions to;
  to.epochs = 50;
  to.early_stopping_patience = 2;
  to.early_stopping_min_delta = 0.5;  // never reached: stops after 2 more evaluations
  Job job(ModelType::kLR, 4, to);
  testing::VectorStream tr(train), va(PlantedBatches(2, 128, 4, 40, 7));
  auto r = job.trainer->Train(&tr, &va);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->early_stopped);
  // Epoch 1 sets the best AUC; epochs 2 and 3 bring no gain of 0.5: stop.
  EXPECT_EQ(r->epochs_completed, 3);

  TrainerOptions ms;
  ms.max_steps = 7;
  Job job2(ModelType::kLR, 4, ms);
  testing::VectorStream tr2(train);
  auto r2 = job2.trainer->Train(&tr2, nullptr);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->steps, 7);
}

// Two workers with uneven partitions (here: all batches and none). The
// worker with rows trains them all; the other joins every step with an
// empty batch; the dense gradients are averaged weighted by rows, so both
// replicas end where one worker alone would (up to float rounding), with
// the same steps.
TEST(TrainerTest, UnevenPartitionsTrainEveryRowWithRowWeightedDenseGradients) {
  TrainerOptions to;
  to.epochs = 2;
  Job alone(ModelType::kDeepFM, 4, to), a(ModelType::kDeepFM, 4, to), b(ModelType::kDeepFM, 4, to);
  testing::VectorStream data(PlantedBatches(9, 32, 4, 100, 3)), data_a(PlantedBatches(9, 32, 4, 100, 3)),
      none({});
  auto single = alone.trainer->Train(&data, nullptr);
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  auto net = ps::NewInProcessNetwork(2);
  ps::WorkerGroup ga(net->Endpoint(0), {0, 1}, 20000), gb(net->Endpoint(1), {0, 1}, 20000);
  a.trainer->SetWorkerGroup(&ga);
  b.trainer->SetWorkerGroup(&gb);
  StatusOr<TrainResult> ra = Status::Internal("not run"), rb = Status::Internal("not run");
  std::thread tb([&] { rb = b.trainer->Train(&none, nullptr); });
  ra = a.trainer->Train(&data_a, nullptr);
  tb.join();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(ra->steps, single->steps);
  EXPECT_EQ(rb->steps, single->steps);
  EXPECT_EQ(ra->samples, single->samples);
  EXPECT_EQ(rb->samples, 0);
  const float* x = alone.model->dense_values();
  for (size_t i = 0; i < static_cast<size_t>(alone.model->dense_size()); ++i) {
    ASSERT_NEAR(a.model->dense_values()[i], x[i], 1e-5f + 1e-4f * std::fabs(x[i])) << i;
    ASSERT_EQ(a.model->dense_values()[i], b.model->dense_values()[i]) << i;  // replicas agree
  }
}

TEST(TrainerTest, DivergenceIsReportedNotHidden) {
  auto train = PlantedBatches(50, 128, 4, 40, 8);
  TrainerOptions to;
  to.epochs = 1;
  Job job(ModelType::kLR, 4, to);
  // Poison one row so the logits become infinite.
  Key k = train[0].keys[0];
  float huge[1] = {std::numeric_limits<float>::infinity()};
  ASSERT_TRUE(job.client->LoadRows(0, &k, 1, huge).ok());
  testing::VectorStream tr(train);
  auto r = job.trainer->Train(&tr, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("training loss"), std::string::npos);
}

}  // namespace
}  // namespace ctrps::worker
