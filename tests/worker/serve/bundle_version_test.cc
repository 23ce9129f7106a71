// Bundle format versions: version 1 (uncompressed models, what every writer
// before compressed models wrote) still loads and scores; version 2 holds the
// compressed structure; version 4 packed keys, which score exactly as 8-byte
// keys; damaged structure fields are refused, naming them.
#include <gtest/gtest.h>

#include <functional>

#include "tests/worker/serve/bundle_proto_util.h"
#include "tests/worker/serve/serve_test_util.h"
#include "worker/serve/bundle.pb.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"

namespace ctrps::worker::serve {
namespace {

namespace proto = ::ctrps::serve::proto;
using testing::EditedCopy;
using testing::ReadProto;
using testing::TmpDir;
using testing::TrainedModel;

std::vector<float> Predict(InferenceEngine* e, const std::vector<Batch>& data) {
  std::vector<float> out;
  for (const Batch& b : data) {
    std::vector<float> p(b.size());
    e->PredictBatch(b, p.data());
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

TEST(BundleVersionTest, UncompressedBundlesStayVersionOneAndOldBundlesLoad) {
  TrainedModel tm(testing::SmallModel(ModelType::kDeepFM, 4), 2, 64);
  ExportOptions o;
  o.out_dir = TmpDir("version_plain");
  o.table_keys = KeyEncoding::kU64;
  ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(4), o).ok());
  // A bundle of an uncompressed model stays readable by version-1 readers.
  EXPECT_EQ(ReadProto(o.out_dir).format_version(), 1u);
  EXPECT_EQ(ReadProto(o.out_dir).model().low_rank_size(), 0);
  EXPECT_EQ(ReadProto(o.out_dir).model().emb_decode_dims_size(), 0);

  // As the version-1 writer wrote it: no field of version 2 at all (the
  // repeated fields cleared, so the bytes are what an old build serialised).
  const std::string old = EditedCopy(o.out_dir, "version_old", [](proto::BundleModel* p) {
    p->set_format_version(1);
    p->mutable_model()->clear_low_rank();
    p->mutable_model()->clear_emb_decode_dims();
  });
  auto e = InferenceEngine::Open(old);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE((*e)->manifest().model.low_rank.empty());
  EXPECT_TRUE((*e)->manifest().model.emb_decode_dims.empty());
  auto fresh = InferenceEngine::Open(o.out_dir);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(Predict(e->get(), tm.data), Predict(fresh->get(), tm.data));
}

class DamagedBundle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tm_ = new TrainedModel(testing::CompressedModel(ModelType::kDeepFM, 4), 1, 32);
    ExportOptions o;
    o.out_dir = TmpDir("version_compressed");
    o.table_keys = KeyEncoding::kU64;  // the version-2 bundle (packed keys: version 4 below)
    ASSERT_TRUE(ExportBundle(tm_->model.get(), tm_->client.get(), testing::SpecFor(4), o).ok());
    dir_ = new std::string(o.out_dir);
  }
  static void TearDownTestSuite() {
    delete tm_;
    delete dir_;
  }
  // Opens a copy edited by `edit`; expects a refusal whose message holds `expect`.
  static void ExpectRefused(const std::string& name,
                            const std::function<void(proto::BundleModel*)>& edit,
                            const std::string& expect) {
    const std::string dir = EditedCopy(*dir_, "damaged_" + name, edit);
    auto e = InferenceEngine::Open(dir);
    ASSERT_FALSE(e.ok()) << name << " was accepted";
    EXPECT_NE(e.status().message().find(expect), std::string::npos)
        << name << ": " << e.status().ToString();
    EXPECT_NE(e.status().message().find(dir), std::string::npos)
        << name << " does not name the bundle: " << e.status().ToString();
  }
  static TrainedModel* tm_;
  static std::string* dir_;
};
TrainedModel* DamagedBundle::tm_ = nullptr;
std::string* DamagedBundle::dir_ = nullptr;

TEST_F(DamagedBundle, CompressedBundleIsVersionTwoAndLoads) {
  const proto::BundleModel p = ReadProto(*dir_);
  EXPECT_EQ(p.format_version(), 2u);
  ASSERT_EQ(p.model().low_rank_size(), 2);
  EXPECT_EQ(p.model().low_rank(1).layer(), "mlp.1");
  EXPECT_EQ(p.model().low_rank(1).rank(), 3);
  EXPECT_TRUE(p.model().low_rank(1).relu());
  EXPECT_EQ(p.model().emb_decode_dims_size(), 4);
  EXPECT_EQ(p.tables(0).width(), 1 + 3);  // linear weight + 3 coordinates
  auto e = InferenceEngine::Open(*dir_);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
}

TEST_F(DamagedBundle, RefusesDamagedStructureNamingTheField) {
  ExpectRefused(
      "v1_with_structure", [](proto::BundleModel* p) { p->set_format_version(1); },
      "format_version 1 holds no compressed structure");
  ExpectRefused(
      "v6", [](proto::BundleModel* p) { p->set_format_version(6); }, "format_version 6");
  // Removed fields (version 5): not in an older version; the parser's kept
  // fields must be the model's.
  ExpectRefused(
      "fields_in_v2",
      [](proto::BundleModel* p) {
        for (int t = 0; t < 4; ++t) p->mutable_model()->add_field_tables(t);
      },
      "model.field_tables or data.keep_fields is set (a version 5 field)");
  ExpectRefused(
      "fields_without_keep",
      [](proto::BundleModel* p) {
        p->set_format_version(5);
        for (int t = 0; t < 4; ++t) p->mutable_model()->add_field_tables(t);
      },
      "data.keep_fields and model.field_tables differ");
  ExpectRefused(
      "tables_off_their_fields",
      [](proto::BundleModel* p) {
        p->set_format_version(5);
        for (int t : {0, 1, 2, 5}) {
          p->mutable_model()->add_field_tables(t);
          p->mutable_data()->add_keep_fields(t);
        }
      },
      "each with its field's table id");
  // Packed keys in a version that has none; a key encoding model.pb and the
  // table file disagree on; an encoding this build does not know.
  ExpectRefused(
      "packed_in_v2",
      [](proto::BundleModel* p) { p->mutable_tables(1)->set_key_encoding(proto::KEYS_PACKED); },
      "table 1 has key_encoding KEYS_PACKED, a version 4 field, in format_version 2");
  ExpectRefused(
      "packed_says_model",
      [](proto::BundleModel* p) {
        p->set_format_version(4);
        p->mutable_tables(1)->set_key_encoding(proto::KEYS_PACKED);
      },
      "format version 1, expected 3 (model.pb says dense rows, packed keys)");
  ExpectRefused(
      "no_version", [](proto::BundleModel* p) { p->clear_format_version(); }, "format_version 0");
  ExpectRefused(
      "unknown_layer",
      [](proto::BundleModel* p) { p->mutable_model()->mutable_low_rank(0)->set_layer("mlp.9"); },
      "'mlp.9' does not exist");
  ExpectRefused(
      "rank_zero",
      [](proto::BundleModel* p) { p->mutable_model()->mutable_low_rank(1)->set_rank(0); },
      "rank 0");
  ExpectRefused(
      "rank_missing",
      [](proto::BundleModel* p) { p->mutable_model()->mutable_low_rank(1)->clear_rank(); },
      "model.low_rank[1] lacks its layer or rank");
  ExpectRefused(
      "layer_twice",
      [](proto::BundleModel* p) {
        p->mutable_model()->mutable_low_rank(1)->set_layer("mlp.0");
      },
      "low-rank twice");
  // The structure no longer matches the tensors or the tables.
  ExpectRefused(
      "rank_changed",
      [](proto::BundleModel* p) { p->mutable_model()->mutable_low_rank(1)->set_rank(5); },
      "dense tensor 'mlp.1.a.weight' is 3 x 16, the model expects 5 x 16");
  ExpectRefused(
      "low_rank_dropped", [](proto::BundleModel* p) { p->mutable_model()->clear_low_rank(); },
      "dense tensor");
  ExpectRefused(
      "decode_count",
      [](proto::BundleModel* p) { p->mutable_model()->add_emb_decode_dims(8); },
      "emb_decode_dims has 5 entries");
  ExpectRefused(
      "decode_narrower",
      [](proto::BundleModel* p) { p->mutable_model()->set_emb_decode_dims(2, 2); },
      "field 2 decodes 3 stored coordinates to 2");
  ExpectRefused(
      "decoders_dropped",
      [](proto::BundleModel* p) { p->mutable_model()->clear_emb_decode_dims(); },
      "dense tensors");
  ExpectRefused(
      "decoder_width_changed",
      [](proto::BundleModel* p) {
        for (int f = 0; f < 4; ++f) p->mutable_model()->set_emb_decode_dims(f, 6);
      },
      "dense tensor 'emb.0.decoder.weight' is 8 x 3, the model expects 6 x 3");
  // Tables of the decoded width (what an exporter ignoring the decoders would write).
  ExpectRefused(
      "table_width",
      [](proto::BundleModel* p) { p->mutable_tables(2)->set_width(1 + 8); },
      "table 2 has width 9, the model's rows are 4 wide");
}

// Packed keys (format 4, what exports write by default): any model, compressed
// or not, scores bit for bit as the same model with 8-byte keys, unknown keys
// included, and its tables are smaller.
TEST(BundleVersionTest, PackedKeysAreVersionFourSmallerAndScoreTheSame) {
  for (bool compressed : {false, true}) {
    const ModelOptions mo = compressed ? testing::CompressedModel(ModelType::kDeepFM, 4)
                                       : testing::SmallModel(ModelType::kDeepFM, 4);
    TrainedModel tm(mo, 2, 64);
    const std::string tag = compressed ? "compressed" : "plain";
    ExportOptions packed;
    packed.out_dir = TmpDir("version_packed_" + tag);
    ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(4), packed).ok());
    ExportOptions u64 = packed;
    u64.out_dir = TmpDir("version_u64_" + tag);
    u64.table_keys = KeyEncoding::kU64;
    ASSERT_TRUE(ExportBundle(tm.model.get(), tm.client.get(), testing::SpecFor(4), u64).ok());
    const proto::BundleModel p = ReadProto(packed.out_dir);
    EXPECT_EQ(p.format_version(), 4u);
    EXPECT_EQ(ReadProto(u64.out_dir).format_version(), compressed ? 2u : 1u);
    uint64_t packed_bytes = 0, u64_bytes = 0, rows = 0;
    for (const proto::TableEntry& t : p.tables()) {
      EXPECT_EQ(t.key_encoding(), proto::KEYS_PACKED) << t.table_id();
      packed_bytes += t.file_bytes();
      rows += t.rows();
    }
    const proto::BundleModel pu = ReadProto(u64.out_dir);
    for (const proto::TableEntry& t : pu.tables()) u64_bytes += t.file_bytes();
    ASSERT_GT(rows, 100u);
    EXPECT_LT(packed_bytes, u64_bytes) << tag;

    auto pe = InferenceEngine::Open(packed.out_dir);
    ASSERT_TRUE(pe.ok()) << pe.status().ToString();
    auto ue = InferenceEngine::Open(u64.out_dir);
    ASSERT_TRUE(ue.ok()) << ue.status().ToString();
    // Batches, and rows one at a time, with some keys the tables lack.
    std::vector<Batch> data = tm.data;
    for (Batch& b : data)
      for (size_t i = 0; i < b.keys.size(); i += 7) b.keys[i] ^= 0x5a5a5a5a5aULL;
    EXPECT_EQ(Predict(pe->get(), data), Predict(ue->get(), data)) << tag;
    const Batch& b = data[0];
    for (int r = 0; r < b.size(); ++r) {
      const Key* keys = &b.keys[static_cast<size_t>(r) * b.num_fields];
      const float* values = &b.values[static_cast<size_t>(r) * b.num_fields];
      ASSERT_EQ((*pe)->PredictRow(keys, values), (*ue)->PredictRow(keys, values)) << tag << r;
    }
    EXPECT_EQ((*pe)->unknown_keys(), (*ue)->unknown_keys());
    EXPECT_GT((*pe)->unknown_keys(), 0u);
  }
}

}  // namespace
}  // namespace ctrps::worker::serve
