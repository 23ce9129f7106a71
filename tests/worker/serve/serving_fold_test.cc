// Model::PrepareForServing (worker/nn/model.h), which the engine calls at
// load: the decoders folded into the first MLP layer give the logits of the
// unfolded Forward; the fold is what an eval Forward uses until the next
// training Forward; Backward refuses to follow a folded Forward.
#include <gtest/gtest.h>

#include "tests/worker/serve/serve_test_util.h"
#include "tests/worker/train/test_util.h"
#include "worker/train/sparse_batch_builder.h"

namespace ctrps::worker::serve {
namespace {

// A SparseBatch of `b` with random rows of the model's widths.
SparseBatch RandomRows(const Model& model, const Batch& b) {
  std::vector<int> widths(model.options().num_fields);
  for (size_t f = 0; f < widths.size(); ++f) widths[f] = model.RowWidth(static_cast<int>(f));
  SparseBatchBuilder builder(widths);
  SparseBatch sb;
  builder.Build(b, &sb);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  for (FieldRows& fr : sb.fields)
    for (Eigen::Index i = 0; i < fr.rows.size(); ++i) fr.rows.data()[i] = u(rng);
  return sb;
}

// The models whose decoded vectors feed an MLP's first layer.
struct Case {
  const char* name;
  ModelType type;
  bool dlrm_cat;
  const char* first_weight;  // that layer's first linear map
};

ModelOptions Options(const Case& c) {
  ModelOptions mo = testing::CompressedModel(c.type, 5);
  mo.dlrm_interaction_cat = c.dlrm_cat;
  return mo;
}

class ServingFold : public ::testing::TestWithParam<Case> {};

TEST_P(ServingFold, FoldedForwardMatchesAndLastsUntilTraining) {
  auto model = std::move(NewModel(Options(GetParam()))).value();
  std::vector<Batch> data = testing::Data(1, 64, 5, 3);
  SparseBatch sb = RandomRows(*model, data[0]);
  VectorF plain, folded, again;
  model->Forward(sb, /*training=*/false, &plain);
  model->PrepareForServing();
  model->Forward(sb, /*training=*/false, &folded);
  ASSERT_EQ(folded.size(), plain.size());
  EXPECT_LT((folded - plain).cwiseAbs().maxCoeff(), 1e-5f);

  // The fold is a copy taken at PrepareForServing: changing the first MLP
  // weight afterwards does not reach an eval Forward...
  const DenseParamInfo* first = nullptr;
  for (const DenseParamInfo& p : model->DenseParams())
    if (p.name == GetParam().first_weight) first = &p;
  ASSERT_NE(first, nullptr);
  float* w = model->dense_values() + first->offset;
  for (int i = 0; i < first->rows * first->cols; ++i) w[i] *= 2.0f;
  model->Forward(sb, /*training=*/false, &again);
  EXPECT_EQ(again, folded);
  // ...until a training Forward drops it: then the new weight counts.
  VectorF train;
  model->Forward(sb, /*training=*/true, &train);
  model->Forward(sb, /*training=*/false, &again);
  EXPECT_GT((again - folded).cwiseAbs().maxCoeff(), 1e-4f);
  EXPECT_EQ(again, train);  // no dropout in the small models
  // And Backward works again after the unfolded Forward.
  VectorF d = VectorF::Ones(again.size());
  model->Backward(d, &sb);
}

TEST_P(ServingFold, BackwardRefusesAFoldedForward) {
  auto model = std::move(NewModel(Options(GetParam()))).value();
  std::vector<Batch> data = testing::Data(1, 8, 5, 3);
  SparseBatch sb = RandomRows(*model, data[0]);
  model->PrepareForServing();
  VectorF logits;
  model->Forward(sb, /*training=*/false, &logits);
  VectorF d = VectorF::Ones(logits.size());
  EXPECT_DEATH(model->Backward(d, &sb), "serving Forward");
}

INSTANTIATE_TEST_SUITE_P(
    FoldingModels, ServingFold,
    ::testing::Values(Case{"deepfm", ModelType::kDeepFM, false, "mlp.0.a.weight"},
                      Case{"deepfwfm", ModelType::kDeepFwFM, false, "mlp.0.a.weight"},
                      Case{"dlrm_cat", ModelType::kDLRM, true, "top_mlp.0.a.weight"}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace ctrps::worker::serve
