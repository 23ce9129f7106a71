// ONNX export: the graph under ONNX Runtime (npm's onnxruntime-node, run by
// ort_predict.js) predicts what the native engine predicts, to 1e-5, for
// every model type; the vocabulary file maps keys and detects damage.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/worker/serve/prune_util.h"
#include "tests/worker/serve/serve_test_util.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"
#include "worker/serve/onnx_export.h"

namespace ctrps::worker::serve {
namespace {

using testing::SmallModel;
using testing::TmpDir;
using testing::TrainedModel;

const std::string kSource = CTRPS_SOURCE_DIR;

// Empty if node and onnxruntime-node can run, else why not.
std::string OrtUnavailable() {
  if (std::system("command -v node >/dev/null 2>&1") != 0)
    return "node is not installed (apt-get install nodejs)";
  const std::string cmd =
      "cd '" + kSource + "' && node -e \"require('onnxruntime-node')\" >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0)
    return "onnxruntime-node is not installed or its native binary does not load (run `cd " +
           kSource + " && npm install --ignore-scripts onnxruntime-node`, see launch/deps.sh)";
  return "";
}

// Concatenation of the batches (one ORT run for all of them).
Batch Concat(const std::vector<Batch>& batches) {
  Batch all;
  all.num_fields = batches[0].num_fields;
  for (const Batch& b : batches) {
    all.labels.insert(all.labels.end(), b.labels.begin(), b.labels.end());
    all.keys.insert(all.keys.end(), b.keys.begin(), b.keys.end());
    all.values.insert(all.values.end(), b.values.begin(), b.values.end());
  }
  return all;
}

// Runs dir/model.onnx on `batch` under ONNX Runtime: logits then probabilities.
std::vector<float> RunOrt(const std::string& dir, const Batch& batch) {
  auto vocab = OnnxVocabulary::Load(dir + "/vocab.bin");
  EXPECT_TRUE(vocab.ok()) << vocab.status().ToString();
  if (!vocab.ok()) return {};
  std::vector<int64_t> idx;
  std::vector<float> val;
  vocab->MapBatch(batch, &idx, &val);
  {
    std::ofstream in(dir + "/input.bin", std::ios::binary);
    in.write(reinterpret_cast<const char*>(idx.data()), idx.size() * 8);
    in.write(reinterpret_cast<const char*>(val.data()), val.size() * 4);
  }
  const std::string cmd = "node '" + kSource + "/tests/worker/serve/ort_predict.js' '" + dir +
                          "/model.onnx' '" + dir + "/input.bin' '" + dir + "/output.bin' " +
                          std::to_string(batch.size()) + " " + std::to_string(batch.num_fields);
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<float> out(2 * static_cast<size_t>(batch.size()));
  std::ifstream o(dir + "/output.bin", std::ios::binary);
  o.read(reinterpret_cast<char*>(out.data()), out.size() * 4);
  EXPECT_TRUE(o.good()) << "no output from ONNX Runtime";
  return out;
}

struct Case {
  const char* name;
  ModelType type;
  int cross_rank = 0;
  bool dlrm_cat = false;
  bool mixed_dims = false;  // DCN-v2 with per-field dims
  bool compressed = false;  // testing::CompressedModel: decoders and low-rank layers
  bool removed_fields = false;  // fields a subset of the data's (UMEC), tables keep their ids
};

class OnnxMatchesEngine : public ::testing::TestWithParam<Case> {};

TEST_P(OnnxMatchesEngine, OnnxRuntimePredictsWhatTheEnginePredicts) {
  const Case c = GetParam();
  const int F = 5;
  ModelOptions mo = c.compressed ? testing::CompressedModel(c.type, F) : SmallModel(c.type, F);
  mo.cross_rank = c.cross_rank;
  mo.dlrm_interaction_cat = c.dlrm_cat;
  if (c.mixed_dims) mo.emb_dims = {4, 8, 3, 8, 6};
  if (c.removed_fields) mo.field_tables = {0, 2, 3, 6, 9};
  TrainedModel tm(mo, 3, 100);
  DataSpec spec = testing::SpecFor(F);
  spec.parser.keep_fields = mo.field_tables;
  const std::string dir = TmpDir(std::string("onnx_") + c.name);
  OnnxExportOptions oo;
  oo.out_dir = dir;
  oo.source = "test";
  Status s = ExportOnnx(tm.model.get(), tm.client.get(), spec, oo);
  if (s.code() == Status::Code::kUnimplemented) GTEST_SKIP() << s.message();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(std::filesystem::exists(dir + "/model.onnx"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/model.pbtxt"));
  EXPECT_FALSE(IsBundleDir(dir));
  // Python's onnx package (python3-onnx) agrees: full check with strict shape
  // inference, which must give outputs of shape [batch].
  if (std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0) {
    const std::string py =
        "/usr/bin/python3 -c \"import onnx, sys\n"
        "m = onnx.load(sys.argv[1])\n"
        "onnx.checker.check_model(m, full_check=True)\n"
        "g = onnx.shape_inference.infer_shapes(m, strict_mode=True).graph\n"
        "dims = [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in "
        "g.output]\n"
        "sys.exit(0 if dims == [['batch'], ['batch']] else 1)\" '" +
        dir + "/model.onnx'";
    EXPECT_EQ(std::system(py.c_str()), 0) << py;
  }

  ExportOptions bo;
  bo.out_dir = TmpDir(std::string("onnx_bundle_") + c.name);
  ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), spec, bo).ok());
  auto engine = InferenceEngine::Open(bo.out_dir);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();

  Batch all = Concat(tm.data);
  // A few keys no table has: both sides read them as zero rows.
  for (int i = 0; i < 20; ++i) all.keys[static_cast<size_t>(i) * 7 % all.keys.size()] ^= 0x5a5a5a;
  std::vector<float> logits(all.size());
  (*engine)->PredictBatchLogits(all, logits.data());
  EXPECT_GT((*engine)->unknown_keys(), 0u);

  const std::string why = OrtUnavailable();
  if (!why.empty()) GTEST_SKIP() << "ONNX Runtime check skipped: " << why;
  const std::vector<float> ort = RunOrt(dir, all);
  ASSERT_EQ(ort.size(), 2 * logits.size());
  double max_logit = 0, max_prob = 0;
  for (int b = 0; b < all.size(); ++b) {
    max_logit = std::max(max_logit, std::fabs(double(ort[b]) - logits[b]));
    max_prob = std::max(max_prob, std::fabs(double(ort[all.size() + b]) - Sigmoid(logits[b])));
  }
  EXPECT_LT(max_logit, 1e-5) << c.name;
  EXPECT_LT(max_prob, 1e-5) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    AllModels, OnnxMatchesEngine,
    ::testing::Values(Case{"lr", ModelType::kLR}, Case{"fm", ModelType::kFM},
                      Case{"fwfm", ModelType::kFwFM}, Case{"deepfm", ModelType::kDeepFM},
                      Case{"deepfwfm", ModelType::kDeepFwFM}, Case{"dcnv2", ModelType::kDCNv2},
                      Case{"dcnv2_lowrank_mixed_dims", ModelType::kDCNv2, 3, false, true},
                      Case{"dlrm_dot", ModelType::kDLRM},
                      Case{"dlrm_cat", ModelType::kDLRM, 0, true},
                      // Compressed: low-rank Gemm pairs, decoders (batched when
                      // uniform, per field when mixed), folded first MLP layers.
                      Case{"fm_compressed", ModelType::kFM, 0, false, false, true},
                      Case{"fwfm_compressed", ModelType::kFwFM, 0, false, false, true},
                      Case{"deepfm_compressed", ModelType::kDeepFM, 0, false, false, true},
                      Case{"deepfwfm_compressed", ModelType::kDeepFwFM, 0, false, false, true},
                      Case{"dcnv2_compressed", ModelType::kDCNv2, 2, false, false, true},
                      Case{"dlrm_dot_compressed", ModelType::kDLRM, 0, false, false, true},
                      Case{"dlrm_cat_compressed", ModelType::kDLRM, 0, true, false, true},
                      Case{"deepfm_removed_fields", ModelType::kDeepFM, 0, false, false, false, true},
                      Case{"fwfm_removed_fields", ModelType::kFwFM, 0, false, false, false, true}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// Pruned models (DeepLight): the ONNX graph keeps dense ops over the pruned
// weights (zeros included; ONNX Runtime's CPU provider has no sparse Gemm or
// sparse initializers for MatMul), and predicts what the native sparse path
// of the format-3 bundle of the same model predicts.
class OnnxMatchesSparseEngine : public ::testing::TestWithParam<ModelType> {};

TEST_P(OnnxMatchesSparseEngine, PrunedModelUnderOnnxRuntimeEqualsTheSparseEngine) {
  const int F = 5;
  ModelOptions mo = SmallModel(GetParam(), F);
  mo.mlp_dims = {40, 24};
  TrainedModel tm(mo, 3, 100);
  ASSERT_TRUE(testing::PruneByMagnitude(tm.model.get(), tm.client.get(), 0.95, 0.8, 0.4).ok());
  const std::string name = std::string("onnx_pruned_") + ModelTypeName(GetParam());
  OnnxExportOptions oo;
  oo.out_dir = TmpDir(name);
  Status s = ExportOnnx(tm.model.get(), tm.client.get(), testing::SpecFor(F), oo);
  if (s.code() == Status::Code::kUnimplemented) GTEST_SKIP() << s.message();
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExportOptions bo;
  bo.out_dir = TmpDir(name + "_bundle");
  ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(F), bo).ok());
  auto engine = InferenceEngine::Open(bo.out_dir);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_TRUE((*engine)->sparse_path());
  Batch all = Concat(tm.data);
  for (int i = 0; i < 20; ++i) all.keys[static_cast<size_t>(i) * 7 % all.keys.size()] ^= 0x5a5a5a;
  std::vector<float> logits(all.size());
  (*engine)->PredictBatchLogits(all, logits.data());
  const std::string why = OrtUnavailable();
  if (!why.empty()) GTEST_SKIP() << "ONNX Runtime check skipped: " << why;
  const std::vector<float> ort = RunOrt(oo.out_dir, all);
  ASSERT_EQ(ort.size(), 2 * logits.size());
  double max_logit = 0;
  for (int b = 0; b < all.size(); ++b)
    max_logit = std::max(max_logit, std::fabs(double(ort[b]) - logits[b]));
  EXPECT_LT(max_logit, 1e-5) << (*engine)->DescribeSparsePath();
}

INSTANTIATE_TEST_SUITE_P(PrunedModels, OnnxMatchesSparseEngine,
                         ::testing::Values(ModelType::kFwFM, ModelType::kDeepFM,
                                           ModelType::kDeepFwFM),
                         [](const ::testing::TestParamInfo<ModelType>& i) {
                           std::string n = ModelTypeName(i.param);
                           n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
                           return n;
                         });

TEST(OnnxVocabularyTest, MapsKeysToRowsAndDetectsDamage) {
  const std::string dir = TmpDir("vocab");
  std::filesystem::create_directories(dir);
  const std::vector<std::vector<Key>> keys = {
      {MakeKey(0, 3), MakeKey(0, 9)}, {}, {MakeKey(2, 1), MakeKey(2, 2), MakeKey(2, 7)}};
  ASSERT_TRUE(OnnxVocabulary::Write(dir + "/vocab.bin", keys).ok());
  auto v = OnnxVocabulary::Load(dir + "/vocab.bin");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->num_fields(), 3);
  EXPECT_EQ(v->RowIndex(0, MakeKey(0, 3)), 1);
  EXPECT_EQ(v->RowIndex(0, MakeKey(0, 9)), 2);
  EXPECT_EQ(v->RowIndex(0, MakeKey(0, 4)), 0);
  EXPECT_EQ(v->RowIndex(1, MakeKey(1, 4)), 0);
  EXPECT_EQ(v->RowIndex(2, MakeKey(2, 1)), 3);
  EXPECT_EQ(v->RowIndex(2, MakeKey(2, 7)), 5);

  std::string bytes;
  {
    std::ifstream in(dir + "/vocab.bin", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string flipped = bytes;
  flipped[30] ^= 1;
  std::ofstream(dir + "/bad.bin", std::ios::binary | std::ios::trunc) << flipped;
  auto bad = OnnxVocabulary::Load(dir + "/bad.bin");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
  EXPECT_NE(bad.status().message().find("bad.bin"), std::string::npos);
  std::ofstream(dir + "/short.bin", std::ios::binary | std::ios::trunc) << bytes.substr(0, 12);
  EXPECT_EQ(OnnxVocabulary::Load(dir + "/short.bin").status().code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace ctrps::worker::serve
