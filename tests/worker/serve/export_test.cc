// Export round trip: a bundle written from a trained model predicts what the
// model itself predicts, for every model type, batched and one row at a time.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tests/worker/serve/serve_test_util.h"
#include "worker/eval/auc.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"

namespace ctrps::worker::serve {
namespace {

using testing::SmallModel;
using testing::TmpDir;
using testing::TrainedModel;

struct Case {
  const char* name;
  ModelType type;
  int cross_rank = 0;
  bool dlrm_cat = false;
};

class ExportRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(ExportRoundTrip, EnginePredictsWhatTheTrainerPredicts) {
  const Case c = GetParam();
  ModelOptions mo = SmallModel(c.type, 5);
  mo.cross_rank = c.cross_rank;
  mo.dlrm_interaction_cat = c.dlrm_cat;
  TrainedModel tm(mo);
  const std::vector<float> expected = tm.Scores();

  ExportOptions o;
  o.out_dir = TmpDir(std::string("roundtrip_") + c.name);
  o.source = "test";
  o.extra_files = {{"config.pbtxt", "# test\n"}};
  ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(5), o).ok());
  EXPECT_FALSE(std::filesystem::exists(o.out_dir + ".tmp"));
  EXPECT_TRUE(std::filesystem::exists(o.out_dir + "/model.pbtxt"));
  EXPECT_TRUE(std::filesystem::exists(o.out_dir + "/config.pbtxt"));

  auto engine = InferenceEngine::Open(o.out_dir);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  InferenceEngine& e = **engine;
  EXPECT_EQ(e.manifest().model.type, c.type);
  EXPECT_EQ(e.manifest().source, "test");

  std::vector<float> batched, single;
  std::vector<float> probs;
  for (const Batch& b : tm.data) {
    probs.resize(b.size());
    e.PredictBatch(b, probs.data());
    batched.insert(batched.end(), probs.begin(), probs.end());
    for (int i = 0; i < b.size(); ++i)
      single.push_back(e.PredictRow(b.keys.data() + static_cast<size_t>(i) * b.num_fields,
                                    b.values.data() + static_cast<size_t>(i) * b.num_fields));
  }
  ASSERT_EQ(batched.size(), expected.size());
  double max_batch = 0, max_single = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    max_batch = std::max(max_batch, std::fabs(double(batched[i]) - expected[i]));
    max_single = std::max(max_single, std::fabs(double(single[i]) - expected[i]));
  }
  EXPECT_LT(max_batch, 1e-6) << c.name;
  EXPECT_LT(max_single, 1e-6) << c.name;
  EXPECT_EQ(e.unknown_keys(), 0u);

  // The same AUC as the trainer's evaluation (what `ctrps eval` reports).
  std::vector<float> labels;
  for (const Batch& b : tm.data) labels.insert(labels.end(), b.labels.begin(), b.labels.end());
  auto auc_model = ComputeAuc(expected, labels);
  auto auc_bundle = ComputeAuc(batched, labels);
  ASSERT_TRUE(auc_model.ok() && auc_bundle.ok());
  EXPECT_NEAR(*auc_model, *auc_bundle, 1e-9);

  // A forked engine shares the tables and predicts the same.
  auto fork = e.Fork();
  const Batch& b0 = tm.data[0];
  std::vector<float> p0(b0.size()), p1(b0.size());
  e.PredictBatch(b0, p0.data());
  fork->PredictBatch(b0, p1.data());
  EXPECT_EQ(p0, p1);
}

INSTANTIATE_TEST_SUITE_P(
    AllModels, ExportRoundTrip,
    ::testing::Values(Case{"lr", ModelType::kLR}, Case{"fm", ModelType::kFM},
                      Case{"fwfm", ModelType::kFwFM}, Case{"deepfm", ModelType::kDeepFM},
                      Case{"deepfwfm", ModelType::kDeepFwFM}, Case{"dcnv2", ModelType::kDCNv2},
                      Case{"dcnv2_lowrank", ModelType::kDCNv2, 3},
                      Case{"dlrm_dot", ModelType::kDLRM},
                      Case{"dlrm_cat", ModelType::kDLRM, 0, true}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// Compressed models (bundle format 2): the engine runs the decoders (folded
// into the first MLP layer where they feed it) and the low-rank layers, and
// predicts what the trainer's own Forward of the compressed model predicts.
class CompressedRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(CompressedRoundTrip, EnginePredictsWhatTheCompressedModelPredicts) {
  const Case c = GetParam();
  ModelOptions mo = testing::CompressedModel(c.type, 5);
  mo.dlrm_interaction_cat = c.dlrm_cat;
  TrainedModel tm(mo);
  const std::vector<float> expected = tm.Scores();

  ExportOptions o;
  o.out_dir = TmpDir(std::string("compressed_") + c.name);
  o.unknown_keys = testing::TrainerInit(tm);
  ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(5), o).ok());
  auto engine = InferenceEngine::Open(o.out_dir);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  InferenceEngine& e = **engine;
  // The structure survives the bundle; tables hold rows of the stored width.
  const ModelOptions& got = e.manifest().model;
  EXPECT_EQ(got.emb_decode_dims, mo.emb_decode_dims);
  EXPECT_EQ(got.emb_dims, mo.emb_dims);
  ASSERT_EQ(got.low_rank.size(), mo.low_rank.size());
  for (size_t i = 0; i < mo.low_rank.size(); ++i) {
    EXPECT_EQ(got.low_rank[i].layer, mo.low_rank[i].layer);
    EXPECT_EQ(got.low_rank[i].rank, mo.low_rank[i].rank);
    EXPECT_EQ(got.low_rank[i].relu, mo.low_rank[i].relu);
  }
  for (int f = 0; f < 5; ++f) EXPECT_EQ(e.manifest().tables[f].width, tm.model->RowWidth(f));

  std::vector<float> batched, single, probs;
  for (const Batch& b : tm.data) {
    probs.resize(b.size());
    e.PredictBatch(b, probs.data());
    batched.insert(batched.end(), probs.begin(), probs.end());
    for (int i = 0; i < b.size(); ++i)
      single.push_back(e.PredictRow(b.keys.data() + static_cast<size_t>(i) * b.num_fields,
                                    b.values.data() + static_cast<size_t>(i) * b.num_fields));
  }
  ASSERT_EQ(batched.size(), expected.size());
  double max_batch = 0, max_single = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    max_batch = std::max(max_batch, std::fabs(double(batched[i]) - expected[i]));
    max_single = std::max(max_single, std::fabs(double(single[i]) - expected[i]));
  }
  EXPECT_LT(max_batch, 1e-6) << c.name;
  EXPECT_LT(max_single, 1e-6) << c.name;

  // Unseen keys read the trainer's key-seeded rows of the stored width.
  std::vector<Batch> fresh = testing::Data(1, 100, 5, 999);
  for (size_t k = 0; k < fresh[0].keys.size(); k += 4) fresh[0].keys[k] ^= 0x123456;
  const std::vector<float> fresh_expected = tm.Scores(fresh);
  std::vector<float> p(fresh[0].size());
  auto fork = e.Fork();
  fork->PredictBatch(fresh[0], p.data());
  EXPECT_GT(fork->unknown_keys(), 0u);
  double max_fresh = 0;
  for (size_t i = 0; i < p.size(); ++i)
    max_fresh = std::max(max_fresh, std::fabs(double(p[i]) - fresh_expected[i]));
  EXPECT_LT(max_fresh, 1e-6) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    CompressedModels, CompressedRoundTrip,
    ::testing::Values(Case{"fm", ModelType::kFM}, Case{"fwfm", ModelType::kFwFM},
                      Case{"deepfm", ModelType::kDeepFM}, Case{"deepfwfm", ModelType::kDeepFwFM},
                      Case{"dcnv2", ModelType::kDCNv2}, Case{"dlrm_dot", ModelType::kDLRM},
                      Case{"dlrm_cat", ModelType::kDLRM, 0, true}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// Fresh data with many keys the model never trained: a bundle exported with
// the trainer's init rule scores them exactly as the trainer's evaluation.
class UnknownKeysAsTrainer : public ::testing::TestWithParam<Case> {};

TEST_P(UnknownKeysAsTrainer, BundleScoresUnseenKeysAsTheTrainerDoes) {
  const Case c = GetParam();
  TrainedModel tm(SmallModel(c.type, 4), 2, 64);
  ExportOptions o;
  o.out_dir = TmpDir(std::string("unknown_init_") + c.name);
  o.unknown_keys = testing::TrainerInit(tm);
  ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(4), o).ok());
  auto e = InferenceEngine::Open(o.out_dir);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ((*e)->manifest().unknown_keys.policy, UnknownKeyRows::Policy::kKeySeededInit);
  std::vector<Batch> fresh = testing::Data(2, 200, 4, 12345);
  for (Batch& b : fresh)  // a third of the keys were never trained
    for (size_t k = 0; k < b.keys.size(); k += 3) b.keys[k] ^= 0x123456;
  const std::vector<float> expected = tm.Scores(fresh);
  size_t i = 0;
  double max_diff = 0;
  for (const Batch& b : fresh) {
    std::vector<float> p(b.size());
    (*e)->PredictBatch(b, p.data());
    for (int k = 0; k < b.size(); ++k, ++i) {
      max_diff = std::max(max_diff, std::fabs(double(p[k]) - expected[i]));
      const float single = (*e)->PredictRow(b.keys.data() + static_cast<size_t>(k) * 4,
                                            b.values.data() + static_cast<size_t>(k) * 4);
      max_diff = std::max(max_diff, std::fabs(double(single) - expected[i]));
    }
  }
  EXPECT_GT((*e)->unknown_keys(), 100u);
  EXPECT_LT(max_diff, 1e-6) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    SomeModels, UnknownKeysAsTrainer,
    ::testing::Values(Case{"lr", ModelType::kLR}, Case{"deepfm", ModelType::kDeepFM},
                      Case{"dcnv2", ModelType::kDCNv2}, Case{"dlrm", ModelType::kDLRM}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(ExportTest, UnknownKeysReadAsZeroRows) {
  TrainedModel tm(SmallModel(ModelType::kDeepFM, 3), 1, 32);
  ExportOptions o;
  o.out_dir = TmpDir("unknown");
  ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(3), o).ok());
  auto e = InferenceEngine::Open(o.out_dir);
  ASSERT_TRUE(e.ok());
  // Field 2's key was never trained: the engine counts it and treats it as
  // zero, i.e. the same as that field's value being 0.
  const Key keys[3] = {tm.data[0].keys[0], tm.data[0].keys[1], MakeKey(2, 12345678)};
  const float values[3] = {1.0f, 1.0f, 1.0f};
  const float zero_value[3] = {1.0f, 1.0f, 0.0f};
  const float p = (*e)->PredictRow(keys, values);
  EXPECT_EQ((*e)->unknown_keys(), 1u);
  const Key known[3] = {keys[0], keys[1], tm.data[0].keys[2]};
  EXPECT_FLOAT_EQ(p, (*e)->PredictRow(known, zero_value));
}

TEST(ExportTest, RejectsFieldCountMismatchAndEmptyOutput) {
  TrainedModel tm(SmallModel(ModelType::kFM, 3), 1, 16);
  ExportOptions o;
  o.out_dir = TmpDir("mismatch");
  Status s = ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(4), o);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("4 fields"), std::string::npos) << s.ToString();
  o.out_dir.clear();
  EXPECT_FALSE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(3), o).ok());
}

// model.pb is readable with Python's protobuf package and bundle.proto alone.
TEST(ExportTest, ModelFileReadsFromPython) {
  if (std::system("/usr/bin/python3 -c 'import google.protobuf' >/dev/null 2>&1") != 0 ||
      std::system("command -v protoc >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "needs /usr/bin/python3 with python3-protobuf and protoc (apt-get install "
                    "python3-protobuf protobuf-compiler)";
  TrainedModel tm(SmallModel(ModelType::kDeepFwFM, 4), 1, 32);
  ExportOptions o;
  o.out_dir = TmpDir("python");
  ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(4), o).ok());
  auto m = ReadBundleManifest(o.out_dir);
  ASSERT_TRUE(m.ok());
  const std::string py_dir = TmpDir("python_gen");
  std::filesystem::create_directories(py_dir);
  const std::string proto = CTRPS_BUNDLE_PROTO;
  const std::string proto_dir = std::filesystem::path(proto).parent_path().string();
  ASSERT_EQ(
      std::system(("protoc -I" + proto_dir + " --python_out=" + py_dir + " " + proto).c_str()), 0);
  const std::string script = py_dir + "/read.py";
  std::ofstream(script)
      << "import sys, struct\n"
         "sys.path.insert(0, sys.argv[1])\n"
         "import bundle_pb2\n"
         "m = bundle_pb2.BundleModel()\n"
         "m.ParseFromString(open(sys.argv[2] + '/model.pb', 'rb').read())\n"
         "r = [t for t in m.dense if t.name == 'fwfm.r'][0]\n"
         "v = struct.unpack('<%df' % (r.rows * r.cols), r.values_f32)\n"
         "print(bundle_pb2.ModelType.Name(m.model.type), m.model.num_fields,\n"
         "      len(m.tables), m.tables[3].file, r.rows, r.cols, '%.9g' % v[1])\n";
  const std::string out_file = py_dir + "/out.txt";
  ASSERT_EQ(
      std::system(("/usr/bin/python3 " + script + " " + py_dir + " " + o.out_dir + " > " + out_file)
                      .c_str()),
      0);
  std::ifstream in(out_file);
  std::string line;
  std::getline(in, line);
  float r1 = 0;
  for (const DenseTensor& t : m->dense)
    if (t.name == "fwfm.r") r1 = t.values[1];
  char expect[128];
  std::snprintf(expect, sizeof expect, "DEEPFWFM 4 4 table_3.emb 4 4 %.9g", r1);
  EXPECT_EQ(line, expect);
}

}  // namespace
}  // namespace ctrps::worker::serve
