// Sparse-row table files (table file format 2/4) read exactly at every
// width and value type, round-trip and refuse damage naming the file; a
// pruned bundle's damaged sparse sections (MLP weights, field pairs, table
// counts) are refused naming the field, with counts capped before anything
// is allocated.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include <zlib.h>

#include "tests/worker/serve/bundle_proto_util.h"
#include "tests/worker/serve/prune_util.h"
#include "tests/worker/serve/serve_test_util.h"
#include "worker/serve/bundle.pb.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"
#include "worker/serve/table_file.h"

namespace ctrps::worker::serve {
namespace {

namespace fs = std::filesystem;
namespace proto = ::ctrps::serve::proto;
using testing::ReadProto;
using testing::TmpDir;
using testing::TrainedModel;

// Sparse rows decode 8 entries at a time (and rows near the end of the
// values one by one): every width the format takes, full and empty rows and
// masks of every density, nothing written past the row.
TEST(PrunedRows, SparseRowsReadExactlyAtEveryWidth) {
  const std::string dir = TmpDir("sparse_widths");
  fs::create_directories(dir);
  std::mt19937_64 rng(6);
  for (int width : {1, 3, 7, 8, 9, 11, 16, 17, 33, 64})
    for (TableDtype dt : {TableDtype::kFloat32, TableDtype::kFloat16}) {
      const int n = 300;
      std::vector<Key> keys;
      for (int i = 0; i < n; ++i) keys.push_back(MakeKey(2, 11 + 3 * i));
      std::vector<float> rows(static_cast<size_t>(n) * width);
      for (int i = 0; i < n; ++i) {
        const double keep = i % 7 == 0 ? 1.0 : i % 7 == 1 ? 0.0 : (i % 5) / 5.0;
        for (int k = 0; k < width; ++k)
          rows[static_cast<size_t>(i) * width + k] =
              std::uniform_real_distribution<double>(0, 1)(rng) < keep
                  ? std::normal_distribution<float>(0, 1)(rng)
                  : 0.0f;
      }
      TableEntry e;
      const std::string path = dir + "/t.emb";
      ASSERT_TRUE(WriteSparseTableFile(path, 2, width, dt, keys.data(), n, rows.data(),
                                       /*drop_empty=*/false, &e)
                      .ok());
      auto t = MappedTable::Open(path, e);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      std::vector<float> out(width + 16);
      for (int i = 0; i < n; ++i) {
        std::fill(out.begin(), out.end(), -7.0f);
        ASSERT_TRUE(t->Lookup(keys[i], out.data()));
        for (int k = 0; k < width; ++k) {
          const float want = rows[static_cast<size_t>(i) * width + k];
          ASSERT_EQ(out[k], dt == TableDtype::kFloat32 ? want : HalfToFloat(FloatToHalf(want)))
              << "width " << width << " " << TableDtypeName(dt) << " row " << i << " entry " << k;
        }
        for (int k = width; k < width + 16; ++k) ASSERT_EQ(out[k], -7.0f) << "written past the row";
      }
    }
}

TEST(PrunedRows, SparseTableFileRoundTripsAndRefusesDamage) {
  const std::string dir = TmpDir("sparse_table");
  fs::create_directories(dir);
  const int width = 11, n = 40;
  std::vector<Key> keys;
  std::vector<float> rows(static_cast<size_t>(n) * width);
  std::mt19937_64 rng(5);
  for (int i = 0; i < n; ++i) keys.push_back(MakeKey(3, 1000 + 7 * i));
  std::sort(keys.begin(), keys.end());
  for (size_t i = 0; i < rows.size(); ++i)
    rows[i] = rng() % 3 == 0 || i % width == 4 ? std::normal_distribution<float>(0, 1)(rng) : 0.0f;
  std::fill_n(rows.begin() + 5 * width, width, 0.0f);  // an empty row
  for (KeyEncoding enc : {KeyEncoding::kU64, KeyEncoding::kPacked})
  for (TableDtype dt : {TableDtype::kFloat32, TableDtype::kFloat16})
    for (bool drop : {false, true}) {
      TableEntry e;
      const std::string path = dir + "/t.emb";
      ASSERT_TRUE(WriteSparseTableFile(path, 3, width, dt, keys.data(), n, rows.data(), drop, &e,
                                       enc)
                      .ok());
      EXPECT_EQ(e.key_encoding, enc);
      EXPECT_EQ(e.rows, static_cast<uint64_t>(drop ? n - 1 : n));
      EXPECT_EQ(e.file_bytes, fs::file_size(path));
      auto t = MappedTable::Open(path, e);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      std::vector<float> out(width);
      for (int i = 0; i < n; ++i) {
        const bool found = t->Lookup(keys[i], out.data());
        ASSERT_EQ(found, !(drop && i == 5)) << TableDtypeName(dt) << " drop " << drop << " row " << i;
        for (int k = 0; k < width; ++k) {
          const float want = rows[static_cast<size_t>(i) * width + k];
          EXPECT_EQ(out[k], dt == TableDtype::kFloat32 ? want : HalfToFloat(FloatToHalf(want)));
        }
      }
      if (dt != TableDtype::kFloat32 || drop || enc != KeyEncoding::kU64) continue;
      // Damage: a mask bit beyond the width (checksum fixed up, so the
      // structural check is what refuses it), a wrong nnz in model.pb.
      std::string bytes;
      {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
      }
      std::string bad = bytes;
      bad[64 + 8 * n + 8 + 1] |= 0x40;  // row 0's mask (after its block's start), bit 14 (>= width 11)
      const uint32_t crc = static_cast<uint32_t>(
          crc32(0, reinterpret_cast<const Bytef*>(bad.data() + 64), static_cast<uInt>(bad.size() - 64)));
      std::memcpy(&bad[32], &crc, 4);
      TableEntry bad_entry = e;
      bad_entry.crc32 = crc;
      const std::string bad_path = dir + "/bad.emb";
      std::ofstream(bad_path, std::ios::binary | std::ios::trunc) << bad;
      auto refused = MappedTable::Open(bad_path, bad_entry);
      ASSERT_FALSE(refused.ok());
      EXPECT_NE(refused.status().message().find("bad.emb"), std::string::npos);
      EXPECT_NE(refused.status().message().find("mask bits at or above width"), std::string::npos)
          << refused.status().ToString();
      TableEntry wrong = e;
      wrong.nnz += 1;
      auto refused2 = MappedTable::Open(path, wrong);
      ASSERT_FALSE(refused2.ok());
      EXPECT_NE(refused2.status().message().find("stored values"), std::string::npos)
          << refused2.status().ToString();
      TableEntry dense_says = e;
      dense_says.layout = TableEntry::Layout::kDenseRows;
      EXPECT_FALSE(MappedTable::Open(path, dense_says).ok());
    }
}

// ---- damaged sparse sections ----

class DamagedSparseBundle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tm_ = new TrainedModel(testing::SmallModel(ModelType::kDeepFwFM, 5), 1, 64);
    ASSERT_TRUE(testing::PruneByMagnitude(tm_->model.get(), tm_->client.get(), 0.9, 0.9, 0.4).ok());
    ExportOptions o;
    o.out_dir = TmpDir("sparse_damaged_src");
    o.table_keys = KeyEncoding::kU64;  // format 3, whose version checks these tests exercise
    ASSERT_TRUE(ExportBundle(tm_->model.get(), tm_->client.get(), testing::SpecFor(5), o).ok());
    dir_ = new std::string(o.out_dir);
  }
  static void TearDownTestSuite() {
    delete tm_;
    delete dir_;
  }
  static void ExpectRefused(const std::string& name,
                            const std::function<void(proto::BundleModel*)>& edit,
                            const std::string& expect) {
    const std::string to = testing::EditedCopy(*dir_, "sparse_damaged_" + name, edit);
    auto e = InferenceEngine::Open(to);
    ASSERT_FALSE(e.ok()) << name << " was accepted";
    EXPECT_NE(e.status().message().find(expect), std::string::npos)
        << name << ": " << e.status().ToString();
    EXPECT_NE(e.status().message().find(to), std::string::npos)
        << name << " does not name the bundle: " << e.status().ToString();
  }
  // Recomputes a weight's checksum after an edit, so the structural check is what refuses it.
  static void Recrc(proto::SparseWeight* w) {
    const std::string all = w->row_starts() + w->cols_index() + w->values_f32();
    w->set_crc32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(all.data()),
                                             static_cast<uInt>(all.size()))));
  }
  static void Recrc(proto::FieldPairs* f) {
    const std::string all = f->pairs() + f->values_f32();
    f->set_crc32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(all.data()),
                                             static_cast<uInt>(all.size()))));
  }
  static TrainedModel* tm_;
  static std::string* dir_;
};
TrainedModel* DamagedSparseBundle::tm_ = nullptr;
std::string* DamagedSparseBundle::dir_ = nullptr;

TEST_F(DamagedSparseBundle, IntactBundleLoads) {
  const proto::BundleModel p = ReadProto(*dir_);
  ASSERT_EQ(p.format_version(), 3u);
  ASSERT_EQ(p.sparse().weights_size(), 2);  // mlp.0 and mlp.1; the output layer stays dense
  EXPECT_EQ(p.sparse().weights(0).layer(), "mlp.0");
  ASSERT_TRUE(InferenceEngine::Open(*dir_).ok());
}

TEST_F(DamagedSparseBundle, StructureAndCountsAreCheckedNamingTheField) {
  ExpectRefused("old_version", [](proto::BundleModel* p) { p->set_format_version(2); },
                "holds no sparse parts, but sparse is set");
  ExpectRefused("old_version_table", [](proto::BundleModel* p) {
    p->set_format_version(2);
    p->clear_sparse();
  }, "layout SPARSE_ROWS");
  // Sizes are checked against the caps before anything is allocated.
  ExpectRefused("huge_rows", [](proto::BundleModel* p) {
    p->mutable_sparse()->mutable_weights(0)->set_rows(1 << 30);
  }, "sparse.weights[0] ('mlp.0'): shape");
  ExpectRefused("huge_nnz", [](proto::BundleModel* p) {
    p->mutable_sparse()->mutable_weights(1)->set_nnz(uint64_t{1} << 40);
  }, "sparse.weights[1] ('mlp.1'): nnz");
  ExpectRefused("short_values", [](proto::BundleModel* p) {
    auto* w = p->mutable_sparse()->mutable_weights(0);
    w->mutable_values_f32()->resize(w->values_f32().size() - 4);
  }, "sparse.weights[0] ('mlp.0'): values_f32 holds");
  ExpectRefused("short_row_starts", [](proto::BundleModel* p) {
    p->mutable_sparse()->mutable_weights(0)->mutable_row_starts()->resize(8);
  }, "row_starts holds");
  ExpectRefused("checksum", [](proto::BundleModel* p) {
    (*p->mutable_sparse()->mutable_weights(0)->mutable_values_f32())[0] ^= 1;
  }, "sparse.weights[0] ('mlp.0'): checksum mismatch");
  ExpectRefused("column_out_of_range", [](proto::BundleModel* p) {
    auto* w = p->mutable_sparse()->mutable_weights(0);
    std::string c = w->cols_index();
    c[0] = c[1] = static_cast<char>(0xff);  // uint16 65535 >= cols
    w->set_cols_index(c);
    Recrc(w);
  }, "not ascending within");
  ExpectRefused("row_starts_end", [](proto::BundleModel* p) {
    auto* w = p->mutable_sparse()->mutable_weights(0);
    std::string r = w->row_starts();
    r[r.size() - 4] ^= 1;
    w->set_row_starts(r);
    Recrc(w);
  }, "row_starts run from");
  ExpectRefused("shape_mismatch", [](proto::BundleModel* p) {
    p->mutable_sparse()->mutable_weights(0)->set_layer("mlp.1");
    p->mutable_sparse()->mutable_weights(1)->set_layer("mlp.0");
  }, "dense tensor 'mlp.0.weight' is 8 x 16, the model expects 16 x 40");
  ExpectRefused("both_dense_and_sparse", [](proto::BundleModel* p) {
    auto* t = p->add_dense();
    t->set_name("mlp.1.weight");
    t->set_rows(8);
    t->set_cols(16);
    t->set_values_f32(std::string(8 * 16 * 4, '\0'));
  }, "stored both dense and sparse");
  ExpectRefused("pairs_count", [](proto::BundleModel* p) {
    p->mutable_sparse()->mutable_field_pairs()->set_count(1000);
  }, "sparse.field_pairs ('fwfm.r'): count");
  ExpectRefused("pairs_order", [](proto::BundleModel* p) {
    auto* f = p->mutable_sparse()->mutable_field_pairs();
    std::string s = f->pairs();
    std::swap(s[0], s[2]);  // (i, j) -> (j, i)
    f->set_pairs(s);
    Recrc(f);
  }, "is not i < j");
  ExpectRefused("pairs_fields", [](proto::BundleModel* p) {
    p->mutable_sparse()->mutable_field_pairs()->set_num_fields(6);
  }, "num_fields 6");
  ExpectRefused("table_nnz", [](proto::BundleModel* p) {
    p->mutable_tables(1)->set_nnz(p->tables(1).nnz() + 1);
  }, "table_1.emb");
}

}  // namespace
}  // namespace ctrps::worker::serve
