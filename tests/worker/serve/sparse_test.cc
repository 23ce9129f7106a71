// Pruned models (DeepLight, COMPRESSION.md section 3): bundle format 3
// (sparse MLP weights, surviving FwFM pairs, sparse-row tables, dropped empty
// rows) scores as the dense bundle of the same weights to 1e-6, single row
// and batch, for every model type. The kernels: sparse_kernel_test.cc; the
// sparse-row table files and damaged sparse sections: sparse_rows_test.cc.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/worker/serve/bundle_proto_util.h"
#include "tests/worker/serve/prune_util.h"
#include "tests/worker/serve/serve_test_util.h"
#include "worker/serve/bundle.pb.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"

namespace ctrps::worker::serve {
namespace {

namespace fs = std::filesystem;
namespace proto = ::ctrps::serve::proto;
using testing::ReadProto;
using testing::TmpDir;
using testing::TrainedModel;

std::vector<float> BatchLogits(InferenceEngine* e, const std::vector<Batch>& data) {
  std::vector<float> out;
  for (const Batch& b : data) {
    std::vector<float> p(b.size());
    e->PredictBatchLogits(b, p.data());
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

std::vector<float> RowLogits(InferenceEngine* e, const std::vector<Batch>& data) {
  std::vector<float> out;
  for (const Batch& b : data) {
    const int F = b.num_fields;
    for (int i = 0; i < b.size(); ++i)
      out.push_back(e->PredictRowLogit(&b.keys[static_cast<size_t>(i) * F],
                                       &b.values[static_cast<size_t>(i) * F]));
  }
  return out;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

// Data with some keys no table has.
std::vector<Batch> WithUnknownKeys(std::vector<Batch> data) {
  for (Batch& b : data)
    for (size_t i = 0; i < b.keys.size(); i += 11) b.keys[i] ^= 0x5a5a5a;
  return data;
}

struct PruneCase {
  const char* name;
  ModelType type;
  double mlp, pairs, emb;
  bool big = false;  // a wider DeepFwFM (F 8, MLP 64-48), so SELL slices and tiles fill
};

class PrunedBundle : public ::testing::TestWithParam<PruneCase> {};

TEST_P(PrunedBundle, SparseBundleScoresAsTheDenseBundleOfTheSameWeights) {
  const PruneCase c = GetParam();
  const int F = c.big ? 8 : 5;
  ModelOptions mo = testing::SmallModel(c.type, F);
  if (c.big) mo.mlp_dims = {64, 48};
  TrainedModel tm(mo, 3, 100);
  ASSERT_TRUE(
      testing::PruneByMagnitude(tm.model.get(), tm.client.get(), c.mlp, c.pairs, c.emb).ok());
  // With 8-byte keys (format 3, as before packed keys) and packed keys (format 4).
  for (KeyEncoding keys : {KeyEncoding::kU64, KeyEncoding::kPacked}) {
    const std::string suffix =
        std::string(c.name) + (keys == KeyEncoding::kU64 ? "_u64" : "_packed");
    ExportOptions dense;
    dense.out_dir = TmpDir("pruned_dense_" + suffix);
    dense.sparse = false;
    dense.table_keys = keys;
    ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(F), dense).ok());
    ExportOptions sparse;
    sparse.out_dir = TmpDir("pruned_sparse_" + suffix);
    sparse.table_keys = keys;
    ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(F), sparse).ok());
    const proto::BundleModel p = ReadProto(sparse.out_dir);
    EXPECT_EQ(p.format_version(), keys == KeyEncoding::kU64 ? 3u : 4u);
    if (keys == KeyEncoding::kU64) {
      EXPECT_LE(ReadProto(dense.out_dir).format_version(), 2u);
    }
    EXPECT_LT(DirBytes(sparse.out_dir), DirBytes(dense.out_dir)) << c.name;
    const bool has_mlp = c.type == ModelType::kDeepFM || c.type == ModelType::kDeepFwFM ||
                         c.type == ModelType::kDCNv2 || c.type == ModelType::kDLRM;
    if (has_mlp) {
      EXPECT_GT(p.sparse().weights_size(), 0);
    }
    for (const proto::SparseWeight& w : p.sparse().weights())
      for (const proto::DenseTensor& t : p.dense()) EXPECT_NE(t.name(), w.layer() + ".weight");
    if (c.type == ModelType::kFwFM || c.type == ModelType::kDeepFwFM) {
      EXPECT_TRUE(p.sparse().has_field_pairs());
      EXPECT_EQ(p.sparse().field_pairs().count(),
                static_cast<uint32_t>(F * (F - 1) / 2 - static_cast<int>(c.pairs * (F * (F - 1) / 2))));
    }

    auto de = InferenceEngine::Open(dense.out_dir);
    ASSERT_TRUE(de.ok()) << de.status().ToString();
    auto se = InferenceEngine::Open(sparse.out_dir);
    ASSERT_TRUE(se.ok()) << se.status().ToString();
    const bool factor = c.type != ModelType::kDCNv2 && c.type != ModelType::kDLRM;
    EXPECT_EQ((*se)->sparse_path(), factor) << (*se)->DescribeSparsePath();
    if (!factor) {  // DCN-v2, DLRM: the dense model with sparse kernels for the pruned layers
      EXPECT_NE((*se)->DescribeSparsePath().find("sparse kernels"), std::string::npos)
          << (*se)->DescribeSparsePath();
    }
    EXPECT_FALSE((*de)->sparse_path());
    // So sparse MLPs have dead neurons: the single-row path folds them away
    // (mlp_fold.h), and still scores as the dense bundle below.
    if (factor && has_mlp && c.mlp >= 0.95) {
      EXPECT_NE((*se)->DescribeSparsePath().find("after folding"), std::string::npos)
          << (*se)->DescribeSparsePath();
    }
    const std::vector<Batch> data = WithUnknownKeys(tm.data);
    const std::vector<float> want_b = BatchLogits(de->get(), data);
    const std::vector<float> want_r = RowLogits(de->get(), data);
    const std::vector<float> got_b = BatchLogits(se->get(), data);
    const std::vector<float> got_r = RowLogits(se->get(), data);
    ASSERT_EQ(got_b.size(), want_b.size());
    double max_b = 0, max_r = 0;
    for (size_t i = 0; i < want_b.size(); ++i) {
      max_b = std::max(max_b, std::fabs(double(got_b[i]) - want_b[i]));
      max_r = std::max(max_r, std::fabs(double(got_r[i]) - want_r[i]));
    }
    EXPECT_LT(max_b, 1e-6) << c.name << " batch; " << (*se)->DescribeSparsePath();
    EXPECT_LT(max_r, 1e-6) << c.name << " single row; " << (*se)->DescribeSparsePath();
    EXPECT_EQ((*se)->unknown_keys(), (*de)->unknown_keys());
    // A fork shares the path and scores the same.
    auto fork = (*se)->Fork();
    EXPECT_EQ(BatchLogits(fork.get(), data), got_b);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllModels, PrunedBundle,
    ::testing::Values(
        // The paper's setting, and a sparser MLP (its layers then take the
        // single-row sparse kernel too).
        PruneCase{"deepfwfm_paper", ModelType::kDeepFwFM, 0.9, 0.9, 0.4},
        PruneCase{"deepfwfm_99", ModelType::kDeepFwFM, 0.99, 0.9, 0.4},
        PruneCase{"deepfwfm_big_95", ModelType::kDeepFwFM, 0.95, 0.6, 0.4, true},
        PruneCase{"deepfwfm_big_half", ModelType::kDeepFwFM, 0.5, 0.5, 0.5, true},
        PruneCase{"fwfm", ModelType::kFwFM, 0, 0.7, 0.4},
        PruneCase{"deepfm", ModelType::kDeepFM, 0.95, 0, 0.4},
        PruneCase{"fm", ModelType::kFM, 0, 0, 0.6},
        PruneCase{"dcnv2", ModelType::kDCNv2, 0.9, 0, 0.4},
        PruneCase{"dlrm", ModelType::kDLRM, 0.9, 0, 0.4}),
    [](const ::testing::TestParamInfo<PruneCase>& i) { return std::string(i.param.name); });

// Rows with nothing left: dropped when unknown keys read as zeros (same
// score), kept with an empty mask when they read as key-seeded rows (so the
// bundle still scores exactly as the trainer's evaluation of the pruned model).
TEST(PrunedRows, EmptyRowsAreDroppedOnlyWhenAbsentKeysReadAsZeros) {
  const int F = 5;
  TrainedModel tm(testing::SmallModel(ModelType::kDeepFwFM, F), 3, 100);
  ASSERT_TRUE(testing::PruneByMagnitude(tm.model.get(), tm.client.get(), 0.9, 0.9, 0.4).ok());
  // Empty three rows of table 2 entirely (linear weight too).
  std::vector<Key> keys;
  std::vector<float> rows;
  const int w = tm.model->RowWidth(2);
  ASSERT_TRUE(tm.client->ScanRows(2, [&](Key k, const float* r) {
    keys.push_back(k);
    rows.insert(rows.end(), r, r + w);
    return true;
  }).ok());
  ASSERT_GT(keys.size(), 3u);
  std::fill(rows.begin(), rows.begin() + 3 * w, 0.0f);
  ASSERT_TRUE(tm.client->LoadRows(2, keys.data(), keys.size(), rows.data()).ok());

  for (bool zero_policy : {true, false}) {
    ExportOptions o;
    o.out_dir = TmpDir(zero_policy ? "pruned_rows_zero" : "pruned_rows_seeded");
    if (!zero_policy) o.unknown_keys = testing::TrainerInit(tm);
    ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(F), o).ok());
    const proto::BundleModel p = ReadProto(o.out_dir);
    ASSERT_EQ(p.tables(2).layout(), proto::SPARSE_ROWS);
    EXPECT_EQ(p.tables(2).rows(), keys.size() - (zero_policy ? 3 : 0));
    auto e = InferenceEngine::Open(o.out_dir);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    const std::vector<float> want = tm.Scores();  // the trainer's evaluation
    std::vector<float> got;
    for (const Batch& b : tm.data) {
      std::vector<float> pb(b.size());
      (*e)->PredictBatch(b, pb.data());
      got.insert(got.end(), pb.begin(), pb.end());
    }
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-6) << (zero_policy ? "zero" : "seeded") << " row " << i;
    // The dropped rows count as unknown keys; the kept empty rows do not.
    EXPECT_EQ((*e)->unknown_keys() > 0, zero_policy);
  }
}

}  // namespace
}  // namespace ctrps::worker::serve
