// What the checkpoint tests share: one small training job (DeepFM with
// dropout, Adam dense, Adagrad sparse, 4 virtual shards) that can stop,
// resume and be compared row by row, and the checkpoint helpers.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ps/client.h"
#include "storage/admission.h"
#include "storage/embedding_store.h"
#include "tests/worker/train/test_util.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/train/checkpoint.h"
#include "worker/train/trainer.h"

namespace ctrps::worker::checkpoint_testing {

inline constexpr int kFields = 5;
inline constexpr uint32_t kShards = 4;

// One training job over a fixed batch list: DeepFM with dropout (so the
// RNG state matters), Adam dense, Adagrad sparse (optimizer state per row).
struct Job {
  std::unique_ptr<Model> model;
  std::unique_ptr<DenseOptimizer> opt;
  std::unique_ptr<storage::EmbeddingStore> store;
  std::unique_ptr<ps::EmbeddingClient> client;
  std::unique_ptr<Trainer> trainer;

  // With `policy`, the store applies admission/eviction (per virtual shard).
  Job(CheckpointOptions co, int64_t max_steps = 0, int emb_dim = 4, bool overlap = false,
      const storage::TablePolicy& policy = {}) {
    storage::PolicyOptions po;
    po.defaults = policy;
    po.num_virtual_shards = kShards;
    store = std::move(storage::NewPolicyStore(storage::NewMemoryStore(), po)).value();
    client = ps::NewLocalClient(store.get(), kShards);
    ModelOptions mo;
    mo.type = ModelType::kDeepFM;
    mo.num_fields = kFields;
    mo.emb_dims.assign(kFields, emb_dim);
    mo.mlp_dims = {16, 8};
    mo.dropout = 0.2f;
    model = std::move(NewModel(mo)).value();
    DenseOptimizerOptions oo;
    oo.type = DenseOptimizerOptions::Type::kAdam;
    oo.learning_rate = 0.01f;
    opt = std::move(NewDenseOptimizer(oo, model->dense_size())).value();
    TrainerOptions to;
    to.epochs = 3;
    to.max_steps = max_steps;
    to.sparse_optimizer.type = ps::SparseOptimizerType::kAdagrad;
    to.sparse_optimizer.learning_rate = 0.05f;
    to.embedding_init_scale = 0.05f;
    to.checkpoint = std::move(co);
    to.overlap_pull = overlap;
    trainer = std::make_unique<Trainer>(to, model.get(), opt.get(), client.get(), nullptr);
    EXPECT_TRUE(trainer->DeclareTables().ok());
  }

  Status Run(const std::string& resume = "", bool auto_resume = true) {
    testing::VectorStream data(testing::PlantedBatches(23, 32, kFields, 300, 11));
    std::string from;
    RETURN_IF_ERROR(trainer->Resume(resume, auto_resume, &from));
    return trainer->Train(&data, nullptr).status();
  }

  // Every row (with optimizer state and stats) and every dense value.
  std::map<Key, std::vector<float>> Rows() const {
    std::map<Key, std::vector<float>> out;
    for (const auto& t : store->Tables()) {
      EXPECT_TRUE(store->Scan(t.table_id, [&](Key k, const float* row, const storage::RowStats& s) {
        std::vector<float> v(row, row + t.row_floats());
        v.push_back(static_cast<float>(s.count));
        v.push_back(static_cast<float>(s.last_step));
        out[k] = v;
        return true;
      }).ok());
    }
    return out;
  }
  std::vector<float> Dense() const {
    return std::vector<float>(model->dense_values(), model->dense_values() + model->dense_size());
  }
};

inline CheckpointOptions Every(const std::string& dir, int64_t steps, int full_every = 1, int keep = 3) {
  CheckpointOptions co;
  co.dir = dir;
  co.every_steps = steps;
  co.full_every = full_every;
  co.keep_last = keep;
  co.config_text = "name: \"test\"\n";
  return co;
}

inline void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0x10));
}

inline std::string Newest(const std::string& root) {
  auto all = ListCheckpoints(root);
  EXPECT_TRUE(all.ok());
  return all->empty() ? "" : all->back().path;
}

}  // namespace ctrps::worker::checkpoint_testing
