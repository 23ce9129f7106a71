// Every model through the Model interface: gradients w.r.t. all dense
// parameters and all sparse rows against finite differences, plus init
// determinism, parameter layout, dropout replay and a short training run.
#include <algorithm>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "tests/worker/nn/grad_check.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/nn/loss.h"
#include "worker/nn/model.h"
#include "worker/nn/threading.h"

namespace ctrps::worker {
namespace {

using testing::CheckGradient;
using testing::Dot;
using testing::RandomMatrix;

struct ModelCase {
  std::string name;
  ModelOptions options;
};
void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

std::vector<ModelCase> Cases() {
  ModelOptions base;
  base.num_fields = 4;
  base.emb_dims = {3, 3, 3, 3};
  base.mlp_dims = {5, 4};
  base.seed = 17;
  std::vector<ModelCase> cases;
  auto add = [&](const std::string& name, ModelType t, auto&& tweak) {
    ModelOptions o = base;
    o.type = t;
    tweak(o);
    cases.push_back({name, o});
  };
  auto none = [](ModelOptions&) {};
  add("LR", ModelType::kLR, [](ModelOptions& o) { o.emb_dims.clear(); });
  add("FM", ModelType::kFM, none);
  add("FwFM", ModelType::kFwFM, none);
  add("DeepFM", ModelType::kDeepFM, none);
  add("DeepFMDropout", ModelType::kDeepFM, [](ModelOptions& o) { o.dropout = 0.3f; });
  add("DeepFwFM", ModelType::kDeepFwFM, [](ModelOptions& o) { o.dropout = 0.3f; });
  add("DCNv2Full", ModelType::kDCNv2, [](ModelOptions& o) {
    o.emb_dims = {3, 2, 4, 1};  // per-field dims may differ
    o.cross_layers = 2;
  });
  add("DCNv2LowRank", ModelType::kDCNv2, [](ModelOptions& o) {
    o.emb_dims = {3, 2, 4, 1};
    o.cross_layers = 2;
    o.cross_rank = 2;
    o.dropout = 0.2f;
  });
  add("DCNv2CrossOnly", ModelType::kDCNv2, [](ModelOptions& o) {
    o.cross_layers = 3;
    o.mlp_dims.clear();
  });
  add("DLRMDot", ModelType::kDLRM, [](ModelOptions& o) {
    o.num_dense_fields = 2;
    o.bottom_mlp_dims = {4, 3};
  });
  add("DLRMCat", ModelType::kDLRM, [](ModelOptions& o) {
    o.num_dense_fields = 1;
    o.bottom_mlp_dims = {3};
    o.dlrm_interaction_cat = true;
    o.dropout = 0.3f;
  });
  add("DLRMNoDense", ModelType::kDLRM, [](ModelOptions& o) { o.num_dense_fields = 0; });
  // Dims with compiled kernels (4, 8, 16, ...); the cases above use the runtime-dim path.
  add("FMDim16", ModelType::kFM, [](ModelOptions& o) { o.emb_dims.assign(4, 16); });
  add("DeepFMDim4", ModelType::kDeepFM, [](ModelOptions& o) { o.emb_dims.assign(4, 4); });
  add("DeepFwFMDim8", ModelType::kDeepFwFM, [](ModelOptions& o) {
    o.emb_dims.assign(4, 8);
    o.dropout = 0.2f;
  });
  add("DCNv2Dim4", ModelType::kDCNv2, [](ModelOptions& o) {
    o.emb_dims.assign(4, 4);
    o.cross_rank = 3;
  });
  add("DLRMDotDim4", ModelType::kDLRM, [](ModelOptions& o) {
    o.emb_dims.assign(4, 4);
    o.num_dense_fields = 1;
    o.bottom_mlp_dims = {4};
  });
  // Compressed structures (AFM): per-field decoders (some fields keep their
  // full rows) and low-rank MLP layers, with and without the ReLU between.
  auto compress = [](ModelOptions& o, std::vector<LowRankLayer> ranks) {
    o.emb_dims = {2, 3, 1, 3};
    o.emb_decode_dims = {3, 0, 3, 3};
    o.low_rank = std::move(ranks);
  };
  add("FMCompressed", ModelType::kFM, [&](ModelOptions& o) { compress(o, {}); });
  add("FwFMCompressed", ModelType::kFwFM, [&](ModelOptions& o) { compress(o, {}); });
  add("DeepFMCompressed", ModelType::kDeepFM, [&](ModelOptions& o) {
    compress(o, {{"mlp.0", 2, true}, {"mlp.1", 3, false}, {"mlp.2", 1, false}});
    o.dropout = 0.3f;
  });
  add("DeepFwFMCompressed", ModelType::kDeepFwFM, [&](ModelOptions& o) {
    compress(o, {{"mlp.1", 2, false}});
  });
  add("DCNv2Compressed", ModelType::kDCNv2, [&](ModelOptions& o) {
    compress(o, {{"mlp.0", 3, true}});
    o.emb_decode_dims = {3, 0, 2, 4};  // per-field dims may differ
    o.cross_layers = 2;
    o.dropout = 0.2f;
  });
  add("DLRMDotCompressed", ModelType::kDLRM, [&](ModelOptions& o) {
    compress(o, {{"top_mlp.0", 2, false}, {"bottom_mlp.0", 2, true}});
    o.emb_dims = {3, 3, 1, 2};
    o.emb_decode_dims = {0, 0, 3, 3};
    o.num_dense_fields = 2;
    o.bottom_mlp_dims = {4, 3};
  });
  add("DLRMCatCompressed", ModelType::kDLRM, [&](ModelOptions& o) {
    compress(o, {{"top_mlp.1", 2, true}});
    o.emb_dims = {3, 1, 2, 3};
    o.emb_decode_dims = {0, 3, 3, 0};
    o.num_dense_fields = 1;
    o.bottom_mlp_dims = {3};
    o.dlrm_interaction_cat = true;
  });
  return cases;
}

// A batch of `batch` examples: field f has min(batch, f + 2) unique keys
// (so keys repeat), rows U(-0.5, 0.5), values U(0.5, 1.5).
SparseBatch MakeBatch(const Model& model, int batch, uint64_t seed) {
  const int F = model.options().num_fields;
  SparseBatch sb;
  sb.batch_size = batch;
  sb.fields.resize(F);
  sb.values = RandomMatrix(F, batch, seed, 0.5f).array() + 1.0f;
  for (int f = 0; f < F; ++f) {
    FieldRows& fr = sb.fields[f];
    const int u = std::min(batch, f + 2);
    for (int k = 0; k < u; ++k) fr.unique_keys.push_back(MakeKey(f, k));
    for (int b = 0; b < batch; ++b) fr.index.push_back((b * 5 + f) % u);
    fr.rows = RandomMatrix(model.RowWidth(f), u, seed * 31 + f, 0.5f);
  }
  return sb;
}

bool IsMlpParam(const std::string& name) {
  return name.rfind("mlp.", 0) == 0 || name.rfind("top_mlp.", 0) == 0 ||
         name.rfind("bottom_mlp.", 0) == 0;
}

// Keeps every ReLU pre-activation at least ~0.2 from its kink, so a finite-
// difference step never crosses one: MLP biases +-1 (both branches occur),
// MLP weights at most 0.2 / fan_in, cross weights scaled by 0.3.
void ShapeForReluSafety(Model* model) {
  for (const DenseParamInfo& p : model->DenseParams()) {
    Eigen::Map<MatrixF> v(model->dense_values() + p.offset, p.rows, p.cols);
    const bool is_bias = p.name.size() > 5 && p.name.substr(p.name.size() - 5) == ".bias";
    if (IsMlpParam(p.name) && is_bias) {
      for (int r = 0; r < p.rows; ++r) v(r, 0) = (r % 2 == 0) ? 1.0f : -1.0f;
    } else if (IsMlpParam(p.name)) {
      v *= 0.2f / (p.cols * std::max(1e-6f, v.cwiseAbs().maxCoeff()));
    } else if (p.name.rfind("cross.", 0) == 0 && !is_bias) {
      v *= 0.3f;
    }
  }
}

class ModelGradTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ModelGradTest, GradientsMatchFiniteDifferences) {
  const ModelOptions& o = GetParam().options;
  auto model_or = NewModel(o);
  ASSERT_TRUE(model_or.ok()) << model_or.status().ToString();
  Model& model = **model_or;
  ShapeForReluSafety(&model);
  const int B = 6;
  SparseBatch sb = MakeBatch(model, B, 3);
  if (o.type == ModelType::kDLRM) {  // dense fields: log-scaled counts in [0, 2]
    auto dense = sb.values.topRows(o.num_dense_fields);
    dense = (dense.array() * 1.3f - 0.6f).matrix();
  }
  const MatrixF g = RandomMatrix(B, 1, 5);
  VectorF logits;
  // Training mode (dropout on), with the mask stream rewound before every
  // Forward so all evaluations see the same masks.
  auto loss = [&] {
    model.set_rng_state(0);
    model.Forward(sb, /*training=*/true, &logits);
    return Dot(g, logits);
  };
  loss();
  std::fill_n(model.dense_grads(), model.dense_size(), 0.0f);
  model.Backward(g.col(0), &sb);

  auto r =
      CheckGradient("dense", model.dense_values(), model.dense_grads(), model.dense_size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
  const Eigen::Map<const VectorF> dense_grads(model.dense_grads(), model.dense_size());
  EXPECT_GT(dense_grads.cwiseAbs().maxCoeff(), 0.0f);
  for (int f = 0; f < o.num_fields; ++f) {
    FieldRows& fr = sb.fields[f];
    ASSERT_EQ(fr.grads.rows(), model.RowWidth(f));
    ASSERT_EQ(fr.grads.cols(), fr.rows.cols());
    r = CheckGradient("rows of field " + std::to_string(f), fr.rows.data(), fr.grads.data(),
                      fr.rows.size(), loss);
    EXPECT_TRUE(r.ok) << r.message;
  }
}

TEST_P(ModelGradTest, ParameterLayout) {
  auto model_or = NewModel(GetParam().options);
  ASSERT_TRUE(model_or.ok());
  const Model& model = **model_or;
  std::set<std::string> names;
  size_t end = 0;
  for (const DenseParamInfo& p : model.DenseParams()) {
    EXPECT_TRUE(names.insert(p.name).second) << "duplicate " << p.name;
    EXPECT_GT(p.rows * p.cols, 0) << p.name;
    EXPECT_GE(p.offset, end) << p.name << " overlaps the previous parameter";
    EXPECT_EQ(p.offset % 16, 0u) << p.name;
    end = p.offset + static_cast<size_t>(p.rows) * p.cols;
  }
  EXPECT_LE(end, model.dense_size());
  EXPECT_GT(model.FlopsPerExample(), 0.0);
}

TEST_P(ModelGradTest, InitIsDeterministicPerSeed) {
  ModelOptions o = GetParam().options;
  auto a = NewModel(o), b = NewModel(o);
  o.seed += 1;
  auto c = NewModel(o);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const auto va = Eigen::Map<const VectorF>((*a)->dense_values(), (*a)->dense_size());
  const auto vb = Eigen::Map<const VectorF>((*b)->dense_values(), (*b)->dense_size());
  const auto vc = Eigen::Map<const VectorF>((*c)->dense_values(), (*c)->dense_size());
  EXPECT_EQ(va, vb);
  // LR and FM have only a zero-initialised bias.
  if (va.cwiseAbs().maxCoeff() > 0) {
    EXPECT_NE(va, vc);
  }
}

TEST_P(ModelGradTest, EvalIsDeterministicAndBatchSizeMayChange) {
  auto model_or = NewModel(GetParam().options);
  ASSERT_TRUE(model_or.ok());
  Model& model = **model_or;
  SparseBatch big = MakeBatch(model, 6, 1), small = MakeBatch(model, 3, 2);
  VectorF a, b, c;
  model.Forward(big, false, &a);
  model.Forward(small, false, &c);
  ASSERT_EQ(c.size(), 3);
  model.Forward(big, false, &b);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(a.allFinite());
}

TEST_P(ModelGradTest, EmptyBatch) {
  auto model_or = NewModel(GetParam().options);
  ASSERT_TRUE(model_or.ok());
  Model& model = **model_or;
  SparseBatch empty = MakeBatch(model, 0, 1);
  VectorF logits;
  model.Forward(empty, true, &logits);
  EXPECT_EQ(logits.size(), 0);
  model.Backward(VectorF(), &empty);
  for (const FieldRows& fr : empty.fields) EXPECT_EQ(fr.grads.cols(), 0);
}

INSTANTIATE_TEST_SUITE_P(AllModels, ModelGradTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<ModelCase>& info) {
                           return info.param.name;
                         });

ModelOptions DeepFwFMOptions(float dropout) {
  ModelOptions o;
  o.type = ModelType::kDeepFwFM;
  o.num_fields = 3;
  o.emb_dims = {4, 4, 4};
  o.mlp_dims = {8, 8};
  o.dropout = dropout;
  return o;
}

TEST(ModelTest, RowWidths) {
  ModelOptions o;
  o.num_fields = 2;
  o.emb_dims = {4, 4};
  o.type = ModelType::kDeepFM;
  EXPECT_EQ((*NewModel(o))->RowWidth(1), 5);  // linear weight + embedding
  o.type = ModelType::kDCNv2;
  o.emb_dims = {4, 6};
  EXPECT_EQ((*NewModel(o))->RowWidth(1), 6);  // embedding only
  o.type = ModelType::kLR;
  o.emb_dims.clear();
  EXPECT_EQ((*NewModel(o))->RowWidth(0), 1);
}

TEST(ModelTest, DropoutMasksReplayFromTheRngState) {
  auto model = std::move(NewModel(DeepFwFMOptions(0.5f)).value());
  SparseBatch sb = MakeBatch(*model, 8, 4);
  VectorF eval, t1, t2, t1_again;
  model->Forward(sb, false, &eval);
  EXPECT_EQ(model->rng_state(), 0u);  // eval draws no masks
  model->Forward(sb, true, &t1);
  model->Forward(sb, true, &t2);
  EXPECT_EQ(model->rng_state(), 2u);
  EXPECT_NE(t1, eval);
  EXPECT_NE(t1, t2);
  model->set_rng_state(0);
  model->Forward(sb, true, &t1_again);
  EXPECT_EQ(t1, t1_again);
}

TEST(ModelTest, DlrmIgnoresTheDenseFieldsRows) {
  ModelOptions o;
  o.type = ModelType::kDLRM;
  o.num_fields = 4;
  o.emb_dims = {3, 3, 3, 3};
  o.num_dense_fields = 2;
  o.bottom_mlp_dims = {5, 3};
  o.mlp_dims = {6};
  auto model = std::move(NewModel(o).value());
  SparseBatch sb = MakeBatch(*model, 5, 6);
  VectorF a, b;
  model->Forward(sb, false, &a);
  sb.fields[0].rows.setConstant(9.0f);
  model->Forward(sb, false, &b);
  EXPECT_EQ(a, b);
  sb.values(1, 2) += 1.0f;  // but a dense value matters
  model->Forward(sb, false, &b);
  EXPECT_NE(a[2], b[2]);
  model->Backward(VectorF::Ones(5), &sb);
  EXPECT_EQ(sb.fields[1].grads.cwiseAbs().maxCoeff(), 0.0f);
  EXPECT_GT(sb.fields[2].grads.cwiseAbs().maxCoeff(), 0.0f);
}

TEST(ModelTest, FlopsPerExampleOfDeepFM) {
  ModelOptions o;
  o.type = ModelType::kDeepFM;
  o.num_fields = 39;
  o.emb_dims.assign(39, 16);
  o.mlp_dims = {400, 400, 400};
  auto model = std::move(NewModel(o).value());
  const double mlp = 2.0 * (624 * 400 + 400 * 400 + 400 * 400 + 400);
  EXPECT_GE(model->FlopsPerExample(), mlp);
  EXPECT_LE(model->FlopsPerExample(), mlp * 1.02);  // linear + FM are small
}

// A learnable rule (label = 1 iff field 0's key is even) must be learned by
// DeepFM with dense Adam and plain SGD on the rows, on 1 and 2 threads.
TEST(ModelTest, TrainingReducesTheLoss) {
  const int saved = NumThreads();
  for (int threads : {1, 2}) {
    SetNumThreads(threads);
    ModelOptions o;
    o.type = ModelType::kDeepFM;
    o.num_fields = 3;
    o.emb_dims = {4, 4, 4};
    o.mlp_dims = {16, 8};
    auto model = std::move(NewModel(o).value());
    DenseOptimizerOptions oo;
    oo.learning_rate = 0.01f;
    auto opt = std::move(NewDenseOptimizer(oo, model->dense_size()).value());
    SparseBatch sb = MakeBatch(*model, 512, 7);
    for (auto& fr : sb.fields) fr.rows *= 0.1f;
    VectorF labels(512);
    for (int b = 0; b < 512; ++b) labels[b] = sb.fields[0].index[b] % 2 == 0 ? 1.0f : 0.0f;
    VectorF logits, dlogits;
    double first = 0, last = 0;
    for (int step = 0; step < 60; ++step) {
      model->Forward(sb, true, &logits);
      last = SigmoidCrossEntropyWithLogits(logits, labels, &dlogits);
      if (step == 0) first = last;
      std::fill_n(model->dense_grads(), model->dense_size(), 0.0f);
      model->Backward(dlogits, &sb);
      opt->Step(model->dense_values(), model->dense_grads());
      for (auto& fr : sb.fields) fr.rows -= 0.5f * fr.grads;
    }
    EXPECT_LT(last, 0.5 * first) << threads << " threads: loss " << first << " -> " << last;
  }
  SetNumThreads(saved);
}

}  // namespace
}  // namespace ctrps::worker
