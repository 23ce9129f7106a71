// Small trained models of every type, for the export and engine tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ps/client.h"
#include "storage/embedding_store.h"
#include "tests/worker/train/test_util.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/serve/bundle.h"
#include "worker/train/trainer.h"

namespace ctrps::worker::serve::testing {

inline std::string TmpDir(const std::string& name) {
  const char* t = std::getenv("CTRPS_TEST_TMPDIR");
  std::string d = std::string(t ? t : "/tmp") + "/serve_test_" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(std::filesystem::path(d).parent_path());
  return d;
}

inline ModelOptions SmallModel(ModelType type, int F) {
  ModelOptions mo;
  mo.type = type;
  mo.num_fields = F;
  mo.emb_dims.assign(F, type == ModelType::kLR ? 0 : 8);
  mo.mlp_dims = {16, 8};
  mo.cross_layers = 2;
  mo.cross_rank = 0;
  if (type == ModelType::kDLRM) {
    mo.num_dense_fields = 2;
    mo.bottom_mlp_dims = {6, 8};
  }
  mo.seed = 7;
  return mo;
}

// The compressed form of SmallModel(type, F) (F >= 4; not LR, which has
// neither embeddings nor an MLP): embedding decoders 8 -> k on most fields
// (mixed with undecoded fields, or uniform, so both layouts are covered)
// and low-rank MLP layers, with and without the ReLU between the halves.
inline ModelOptions CompressedModel(ModelType type, int F) {
  ModelOptions mo = SmallModel(type, F);
  mo.emb_decode_dims.assign(F, 8);
  mo.emb_dims.assign(F, 3);
  switch (type) {
    case ModelType::kFM:
    case ModelType::kFwFM:
    case ModelType::kDeepFwFM:
      mo.emb_decode_dims[1] = 0;  // one field keeps its full vector
      mo.emb_dims[1] = 8;
      mo.emb_dims[3] = 2;
      break;
    case ModelType::kDCNv2:  // per-field widths may differ
      mo.emb_decode_dims = {8, 0, 5, 6, 8};
      mo.emb_decode_dims.resize(F, 4);
      mo.emb_dims = {3, 4, 2, 6, 1};
      mo.emb_dims.resize(F, 2);
      break;
    case ModelType::kDLRM:  // the dense fields have no embedding to decode
      for (int f = 0; f < mo.num_dense_fields; ++f) {
        mo.emb_decode_dims[f] = 0;
        mo.emb_dims[f] = 8;
      }
      break;
    default:
      break;
  }
  if (type == ModelType::kDLRM) {
    mo.low_rank = {{"top_mlp.0", 4, false}, {"top_mlp.1", 2, true}, {"bottom_mlp.0", 2, true}};
  } else if (type != ModelType::kFM && type != ModelType::kFwFM) {
    mo.low_rank = {{"mlp.0", 4, false}, {"mlp.1", 3, true}};
  }
  return mo;
}

// Planted data whose numeric-looking fields (0 and 1) carry values other
// than 1, so value scaling (and DLRM's bottom MLP) is exercised.
inline std::vector<Batch> Data(int batches, int batch_size, int F, uint64_t seed) {
  auto data = ctrps::worker::testing::PlantedBatches(batches, batch_size, F, 30, seed);
  std::mt19937_64 rng(seed + 1);
  for (Batch& b : data)
    for (int i = 0; i < b.size(); ++i)
      for (int f = 0; f < 2 && f < F; ++f)
        b.values[static_cast<size_t>(i) * F + f] =
            std::uniform_real_distribution<float>(-1.5f, 3.0f)(rng);
  return data;
}

inline DataSpec SpecFor(int F) {
  DataSpec d;
  for (int f = 0; f < F; ++f) d.field_names.push_back("f" + std::to_string(f));
  return d;
}

// A model trained for a few steps, its rows in an in-memory store.
struct TrainedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<storage::EmbeddingStore> store = storage::NewMemoryStore();
  std::unique_ptr<ps::EmbeddingClient> client = ps::NewLocalClient(store.get());
  std::unique_ptr<DenseOptimizer> optimizer;
  std::unique_ptr<Trainer> trainer;
  TrainerOptions options;
  std::vector<Batch> data;

  TrainedModel(const ModelOptions& mo, int batches = 4, int batch_size = 128) {
    model = std::move(NewModel(mo)).value();
    DenseOptimizerOptions oo;
    optimizer = std::move(NewDenseOptimizer(oo, model->dense_size())).value();
    options.sparse_optimizer.learning_rate = 0.05f;
    options.embedding_init_scale = 0.1f;
    options.embedding_seed = 77;
    trainer =
        std::make_unique<Trainer>(options, model.get(), optimizer.get(), client.get(), nullptr);
    EXPECT_TRUE(trainer->DeclareTables().ok());
    data = Data(batches, batch_size, mo.num_fields, 11);
    // A model with removed fields: field f's keys belong to its table.
    if (!mo.field_tables.empty())
      for (Batch& b : data)
        for (size_t i = 0; i < b.keys.size(); ++i)
          b.keys[i] = MakeKey(mo.TableOf(static_cast<int>(i % mo.num_fields)), KeyHash(b.keys[i]));
    ctrps::worker::testing::VectorStream s(data);
    EXPECT_TRUE(trainer->Train(&s, nullptr).ok());
  }

  // The trainer's click probabilities (as `ctrps eval` computes them), by
  // default on its own training data (where every key has a row).
  std::vector<float> Scores() { return Scores(data); }
  std::vector<float> Scores(const std::vector<Batch>& batches) {
    ctrps::worker::testing::VectorStream s(batches);
    std::vector<float> p;
    EXPECT_TRUE(trainer->Evaluate(&s, 0, &p).ok());
    return p;
  }
};

// The unknown-key rule of a bundle that scores as the trainer does.
inline UnknownKeyRows TrainerInit(const TrainedModel& tm) {
  UnknownKeyRows u;
  u.policy = UnknownKeyRows::Policy::kKeySeededInit;
  u.init_seed = tm.options.embedding_seed;
  u.init_scale = tm.options.embedding_init_scale;
  return u;
}

}  // namespace ctrps::worker::serve::testing
