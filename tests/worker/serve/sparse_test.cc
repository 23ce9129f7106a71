// Pruned models (DeepLight, COMPRESSION.md section 3): the sparse kernels
// against dense arithmetic; bundle format 3 (sparse MLP weights, surviving
// FwFM pairs, sparse-row tables, dropped empty rows) scores as the dense
// bundle of the same weights to 1e-6, single row and batch, for every model
// type; damaged sparse sections are refused naming the field, with counts
// capped before anything is allocated.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include <zlib.h>

#include "tests/worker/serve/prune_util.h"
#include "tests/worker/serve/serve_test_util.h"
#include "worker/serve/bundle.pb.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"
#include "worker/serve/sparse_kernels.h"
#include "worker/serve/table_file.h"

namespace ctrps::worker::serve {
namespace {

namespace fs = std::filesystem;
namespace proto = ::ctrps::serve::proto;
using testing::TmpDir;
using testing::TrainedModel;

// ---- kernels ----

std::vector<float> RandomSparse(int rows, int cols, double density, std::mt19937_64* rng) {
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> w(static_cast<size_t>(rows) * cols);
  for (float& v : w) v = u(*rng) < density ? n(*rng) : 0.0f;
  return w;
}

// y = W x + b (double), ReLU if relu.
std::vector<double> Reference(const std::vector<float>& w, int rows, int cols, const float* b,
                              const float* x, bool relu) {
  std::vector<double> y(rows);
  for (int o = 0; o < rows; ++o) {
    double s = b[o];
    for (int i = 0; i < cols; ++i) s += double(w[static_cast<size_t>(i) * rows + o]) * x[i];
    y[o] = relu ? std::max(s, 0.0) : s;
  }
  return y;
}

TEST(SparseKernelTest, EveryKernelComputesTheDenseProduct) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> n(0, 1);
  for (int rows : {1, 7, 8, 16, 17, 37, 400})
    for (int cols : {1, 9, 53, 390})
      for (double density : {0.0, 0.01, 0.1, 0.6, 1.0})
        for (bool relu : {false, true}) {
          const std::vector<float> w = RandomSparse(rows, cols, density, &rng);
          std::vector<float> bias(rows), x(cols), xt(static_cast<size_t>(cols) * kSparseTile);
          for (float& v : bias) v = n(rng);
          for (float& v : x) v = n(rng) > 0 ? n(rng) : 0.0f;  // ReLU-like zeros
          for (float& v : xt) v = n(rng);
          const CsrMatrix c = CsrMatrix::FromDense(w.data(), rows, cols);
          EXPECT_EQ(c.ToDense(), w);
          const std::vector<double> ref = Reference(w, rows, cols, bias.data(), x.data(), relu);
          const int padded = SellScratchFloats(rows);
          std::vector<float> y(padded), scratch(padded);
          auto expect_near = [&](const char* kernel) {
            for (int o = 0; o < rows; ++o)
              ASSERT_NEAR(y[o], ref[o], 1e-4 * (1 + std::fabs(ref[o])))
                  << kernel << " " << rows << "x" << cols << " density " << density << " row "
                  << o;
          };
          SpMV(c, bias.data(), x.data(), relu, y.data());
          expect_near("SpMV");
          const SellMatrix s = SellMatrix::FromCsr(c, bias.data());
          SellMV(s, x.data(), relu, scratch.data(), y.data());
          expect_near("SellMV");
          DenseMV(w.data(), rows, cols, bias.data(), x.data(), relu, y.data());
          expect_near("DenseMV");
          const Blocked8Matrix b = Blocked8Matrix::FromDense(w.data(), rows, cols);
          Blocked8MV(b, bias.data(), x.data(), relu, y.data());
          expect_near("Blocked8MV");
          // Tiles: example t is column t of the feature-major tile.
          std::vector<float> yt(static_cast<size_t>(rows) * kSparseTile),
              yd(static_cast<size_t>(rows) * kSparseTile);
          SpMMTile(c, bias.data(), xt.data(), relu, yt.data());
          DenseMMTile(w.data(), rows, cols, bias.data(), xt.data(), relu, yd.data());
          for (int t = 0; t < kSparseTile; t += 13) {
            std::vector<float> col(cols);
            for (int i = 0; i < cols; ++i) col[i] = xt[static_cast<size_t>(i) * kSparseTile + t];
            const std::vector<double> r = Reference(w, rows, cols, bias.data(), col.data(), relu);
            for (int o = 0; o < rows; ++o) {
              ASSERT_NEAR(yt[static_cast<size_t>(o) * kSparseTile + t], r[o], 1e-4 * (1 + std::fabs(r[o])));
              ASSERT_NEAR(yd[static_cast<size_t>(o) * kSparseTile + t], r[o], 1e-4 * (1 + std::fabs(r[o])));
            }
          }
        }
}

// SELL reads 16-bit columns up to 65536 columns and 32-bit ones (the
// gather instruction) past that; both paths, either side of the boundary.
TEST(SparseKernelTest, SellHandlesNarrowAndWideColumnIndices) {
  std::mt19937_64 rng(4);
  std::normal_distribution<float> n(0, 1);
  for (int cols : {65535, 65536, 65537, 70000}) {
    const int rows = 13;
    std::vector<float> w = RandomSparse(rows, cols, 0.0005, &rng);
    w[static_cast<size_t>(cols - 1) * rows + 2] = 1.5f;  // the last column is read
    std::vector<float> bias(rows), x(cols);
    for (float& v : bias) v = n(rng);
    for (float& v : x) v = n(rng);
    const CsrMatrix c = CsrMatrix::FromDense(w.data(), rows, cols);
    const SellMatrix s = SellMatrix::FromCsr(c, bias.data());
    EXPECT_EQ(s.col16.empty(), cols > 65536) << cols;
    const std::vector<double> ref = Reference(w, rows, cols, bias.data(), x.data(), false);
    std::vector<float> y(rows), scratch(SellScratchFloats(rows));
    SellMV(s, x.data(), false, scratch.data(), y.data());
    for (int o = 0; o < rows; ++o)
      ASSERT_NEAR(y[o], ref[o], 1e-4 * (1 + std::fabs(ref[o]))) << cols << " row " << o;
  }
}

// ---- bundles of pruned models ----

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

proto::BundleModel ReadProto(const std::string& dir) {
  proto::BundleModel p;
  std::ifstream in(dir + "/model.pb", std::ios::binary);
  EXPECT_TRUE(p.ParseFromIstream(&in)) << dir;
  return p;
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
    const std::string to = TmpDir("sparse_damaged_" + name);
    fs::copy(*dir_, to, fs::copy_options::recursive);
    proto::BundleModel p = ReadProto(to);
    edit(&p);
    {
      std::ofstream out(to + "/model.pb", std::ios::binary | std::ios::trunc);
      ASSERT_TRUE(p.SerializeToOstream(&out));
    }
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
