// The engine's hot paths allocate nothing once warm: this binary interposes
// malloc (which operator new and Eigen's aligned allocator both call) to
// count allocations while a test has counting switched on.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <vector>

#include "tests/worker/serve/prune_util.h"
#include "tests/worker/serve/serve_test_util.h"
#include "worker/nn/threading.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"

extern "C" void* __libc_malloc(size_t n);  // glibc's own allocator

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocs{0};
}  // namespace

extern "C" void* malloc(size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}

namespace ctrps::worker::serve {
namespace {

// Warm single-row and batched predictions of a bundle of `mo` allocate nothing.
void ExpectNoWarmAllocation(const ModelOptions& mo, const std::string& name,
                            bool pruned = false) {
  // The serving set-up: one compute thread per engine (Eigen's multi-threaded
  // GEMM allocates its per-thread blocking on every call).
  SetNumThreads(1);
  testing::TrainedModel tm(mo, 2, 64);
  // Pruned (bundle format 3): sparse MLP layers, FwFM pairs, sparse rows.
  if (pruned) {
    ASSERT_TRUE(testing::PruneByMagnitude(tm.model.get(), tm.client.get(), 0.95, 0.8, 0.4).ok());
  }
  ExportOptions o;
  o.out_dir = testing::TmpDir("alloc_" + name);
  o.unknown_keys = testing::TrainerInit(tm);
  ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(5), o).ok());
  auto e = InferenceEngine::Open(o.out_dir);
  ASSERT_TRUE(e.ok());
  Batch b = tm.data[0];
  b.keys[3] ^= 0x777;  // one unknown key
  std::vector<float> p(b.size());
  const int F = b.num_fields;
  // Warm up: buffers reach their sizes.
  (*e)->PredictBatch(b, p.data());
  for (int i = 0; i < b.size(); ++i) (*e)->PredictRow(&b.keys[i * F], &b.values[i * F]);
  g_allocs = 0;
  g_counting = true;
  float sum = 0;
  for (int i = 0; i < b.size(); ++i) sum += (*e)->PredictRow(&b.keys[i * F], &b.values[i * F]);
  const long single = g_allocs.exchange(0);
  (*e)->PredictBatch(b, p.data());  // right after single rows: nothing resizes
  const long batched = g_allocs.exchange(0);
  g_counting = false;
  // The counter works: a vector allocates.
  g_counting = true;
  std::vector<float>* v = new std::vector<float>(100);
  g_counting = false;
  delete v;
  EXPECT_EQ(g_allocs.exchange(0), 2);
  EXPECT_GT(sum, 0.0f);
  EXPECT_EQ(single, 0) << "allocations in " << b.size() << " single-row predictions";
  EXPECT_EQ(batched, 0) << "allocations in a warm batch";
}

std::string TestName(ModelType t) {
  std::string n = ModelTypeName(t);
  n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
  return n;
}

class NoAllocation : public ::testing::TestWithParam<ModelType> {};

TEST_P(NoAllocation, WarmPredictionsDoNotAllocate) {
  ExpectNoWarmAllocation(testing::SmallModel(GetParam(), 5), TestName(GetParam()));
}

// Compressed models: decoders (folded into the first MLP layer where they
// feed it) and low-rank layers allocate nothing once warm either.
class NoAllocationCompressed : public ::testing::TestWithParam<ModelType> {};

TEST_P(NoAllocationCompressed, WarmPredictionsDoNotAllocate) {
  ExpectNoWarmAllocation(testing::CompressedModel(GetParam(), 5),
                         TestName(GetParam()) + "_compressed");
}

// Pruned models: the sparse path (factor models) and the dense model over
// sparse-row tables (the others) allocate nothing once warm either.
class NoAllocationPruned : public ::testing::TestWithParam<ModelType> {};

TEST_P(NoAllocationPruned, WarmPredictionsDoNotAllocate) {
  ModelOptions mo = testing::SmallModel(GetParam(), 5);
  mo.mlp_dims = {40, 24};
  ExpectNoWarmAllocation(mo, TestName(GetParam()) + "_pruned", /*pruned=*/true);
}

INSTANTIATE_TEST_SUITE_P(PrunedModels, NoAllocationPruned,
                         ::testing::Values(ModelType::kFM, ModelType::kFwFM, ModelType::kDeepFM,
                                           ModelType::kDeepFwFM, ModelType::kDCNv2,
                                           ModelType::kDLRM),
                         [](const ::testing::TestParamInfo<ModelType>& i) {
                           return TestName(i.param);
                         });

INSTANTIATE_TEST_SUITE_P(AllModels, NoAllocation,
                         ::testing::Values(ModelType::kLR, ModelType::kFM, ModelType::kFwFM,
                                           ModelType::kDeepFM, ModelType::kDeepFwFM,
                                           ModelType::kDCNv2, ModelType::kDLRM),
                         [](const ::testing::TestParamInfo<ModelType>& i) {
                           return TestName(i.param);
                         });

INSTANTIATE_TEST_SUITE_P(CompressedModels, NoAllocationCompressed,
                         ::testing::Values(ModelType::kFM, ModelType::kFwFM, ModelType::kDeepFM,
                                           ModelType::kDeepFwFM, ModelType::kDCNv2,
                                           ModelType::kDLRM),
                         [](const ::testing::TestParamInfo<ModelType>& i) {
                           return TestName(i.param);
                         });

}  // namespace
}  // namespace ctrps::worker::serve
