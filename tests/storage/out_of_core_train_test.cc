// A training run whose embedding tables are 4x the DRAM budget of the tiered
// store gives bit-identical weights, rows and AUC to the in-memory run (same
// data and seed, admission and eviction off), and the DRAM tier stays
// within its budget.
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/hash.h"
#include "ps/client.h"
#include "storage/store_factory.h"
#include "tests/storage/store_fixtures.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/train/trainer.h"

namespace ctrps::storage {
namespace {

constexpr int kFields = 6, kDim = 8, kBatch = 512;

std::vector<worker::Batch> Batches(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<worker::Batch> out(n);
  for (worker::Batch& b : out) {
    b.num_fields = kFields;
    b.Reserve(kBatch);
    for (int i = 0; i < kBatch; ++i) {
      double z = -0.5;
      for (int f = 0; f < kFields; ++f) {
        double x = std::pow(u(rng), 1.0 / (1.0 - 1.05));  // Zipf-like over [1, 20000]
        int v = static_cast<int>(std::fmin(x, 20000.0)) - 1;
        b.keys.push_back(MakeKey(f, Mix64(v * 131 + f)));
        b.values.push_back(1.0f);
        z += (Mix64(v + 17 * f) % 1000) / 1000.0 - 0.5;
      }
      b.labels.push_back(u(rng) < 1.0 / (1.0 + std::exp(-z)) ? 1.0f : 0.0f);
    }
  }
  return out;
}

class VectorStream : public worker::BatchSource {
 public:
  explicit VectorStream(const std::vector<worker::Batch>* b) : b_(b) {}
  StatusOr<bool> Next(worker::Batch* out) override {
    if (i_ >= b_->size()) return false;
    *out = (*b_)[i_++];
    return true;
  }
  Status Rewind() override { i_ = 0; return Status::OK(); }
  std::string SkippedSummary() const override { return ""; }

 private:
  const std::vector<worker::Batch>* b_;
  size_t i_ = 0;
};

struct RunResult {
  std::vector<float> dense;
  std::map<Key, std::vector<float>> rows;  // every table, row + slots + stats
  double auc = 0, logloss = 0;
  uint64_t table_bytes = 0, dram_rows = 0, evictions = 0, dram_misses = 0;
};

RunResult Train(EmbeddingStore* store, const std::vector<worker::Batch>& train,
                const std::vector<worker::Batch>& valid) {
  worker::ModelOptions mo;
  mo.type = worker::ModelType::kDeepFM;
  mo.num_fields = kFields;
  mo.emb_dims.assign(kFields, kDim);
  mo.mlp_dims = {32, 16};
  auto model = std::move(worker::NewModel(mo)).value();
  worker::DenseOptimizerOptions oo;
  oo.learning_rate = 0.01f;
  auto opt = std::move(worker::NewDenseOptimizer(oo, model->dense_size())).value();
  worker::TrainerOptions to;
  to.log_interval_s = 1e9;
  to.epochs = 2;
  to.embedding_seed = 11;
  to.sparse_optimizer.type = ps::SparseOptimizerType::kAdagrad;
  to.sparse_optimizer.learning_rate = 0.05f;
  auto client = ps::NewLocalClient(store);
  worker::Trainer trainer(to, model.get(), opt.get(), client.get(), nullptr);
  EXPECT_TRUE(trainer.DeclareTables().ok());
  VectorStream t(&train), v(&valid);
  auto r = trainer.Train(&t, nullptr);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  auto e = trainer.Evaluate(&v, 0);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  RunResult out;
  out.dense.assign(model->dense_values(), model->dense_values() + model->dense_size());
  out.auc = e->auc;
  out.logloss = e->logloss;
  for (const TableSpec& spec : store->Tables()) {
    auto s = store->Stats(spec.table_id);
    out.table_bytes += s->rows * spec.row_floats() * sizeof(float);
    out.dram_rows += s->dram_rows;
    out.evictions += s->evictions;
    out.dram_misses += s->dram_misses;
    EXPECT_TRUE(store->Scan(spec.table_id, [&](Key k, const float* row, const RowStats& st) {
      std::vector<float> x(row, row + spec.row_floats());
      x.push_back(static_cast<float>(st.count));
      x.push_back(static_cast<float>(st.last_step));
      out.rows[k] = std::move(x);
      return true;
    }).ok());
  }
  return out;
}

TEST(OutOfCoreTrainingTest, TieredAtQuarterBudgetMatchesMemoryBitForBit) {
  auto train = Batches(40, 1), valid = Batches(8, 2);
  auto mem = NewMemoryStore();
  RunResult a = Train(mem.get(), train, valid);
  ASSERT_GT(a.rows.size(), 10000u);

  TieredOptions o;
  o.disk = testing::SmallRocksDb(testing::FreshDir("ooc-train"));
  o.dram_budget_bytes = a.table_bytes / 4;  // a quarter of the row bytes alone
  auto tiered = OpenTieredStore(o);
  ASSERT_TRUE(tiered.ok()) << tiered.status().ToString();
  RunResult b = Train(tiered->get(), train, valid);

  EXPECT_GT(b.evictions, 0u);  // the run really went out of core
  EXPECT_GT(b.dram_misses, a.rows.size());
  // Resident rows never exceed the budget (each slot costs its row plus
  // bookkeeping, so fewer than a quarter of the rows fit).
  EXPECT_LT(b.dram_rows, a.rows.size() / 4);
  EXPECT_EQ(a.table_bytes, b.table_bytes);
  // Bit-identical: floats compared with ==, dense weights, every row with its
  // optimizer state and stats, and the metrics.
  ASSERT_EQ(a.dense.size(), b.dense.size());
  EXPECT_TRUE(a.dense == b.dense);
  ASSERT_EQ(a.rows.size(), b.rows.size());
  EXPECT_TRUE(a.rows == b.rows);
  EXPECT_EQ(a.auc, b.auc);
  EXPECT_EQ(a.logloss, b.logloss);
  EXPECT_GT(a.auc, 0.55);  // it learned something
}

}  // namespace
}  // namespace ctrps::storage
