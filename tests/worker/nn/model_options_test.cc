// ModelOptions::Validate: every rule, with a message naming the field.
#include <gtest/gtest.h>

#include "worker/nn/model.h"

namespace ctrps::worker {
namespace {

ModelOptions Valid(ModelType t) {
  ModelOptions o;
  o.type = t;
  o.num_fields = 4;
  o.emb_dims = {8, 8, 8, 8};
  o.mlp_dims = {16};
  if (t == ModelType::kLR) o.emb_dims.clear();
  if (t == ModelType::kDLRM) {
    o.num_dense_fields = 2;
    o.bottom_mlp_dims = {16, 8};
  }
  return o;
}

// Expects Validate and NewModel to fail with InvalidArgument and a message
// containing `needle`.
void ExpectInvalid(const ModelOptions& o, const std::string& needle) {
  const Status s = o.Validate();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << needle;
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  auto m = NewModel(o);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find(needle), std::string::npos) << m.status().message();
}

TEST(ModelOptionsTest, ValidOptionsPass) {
  for (ModelType t : {ModelType::kLR, ModelType::kFM, ModelType::kFwFM, ModelType::kDeepFM,
                      ModelType::kDeepFwFM, ModelType::kDCNv2, ModelType::kDLRM}) {
    const Status s = Valid(t).Validate();
    EXPECT_TRUE(s.ok()) << ModelTypeName(t) << ": " << s.ToString();
    EXPECT_TRUE(NewModel(Valid(t)).ok()) << ModelTypeName(t);
  }
}

TEST(ModelOptionsTest, FieldsAndDims) {
  ModelOptions o = Valid(ModelType::kDeepFM);
  o.num_fields = 0;
  ExpectInvalid(o, "num_fields = 0");
  o = Valid(ModelType::kDeepFM);
  o.num_fields = 300;
  o.emb_dims.assign(300, 8);
  ExpectInvalid(o, "num_fields = 300");
  o = Valid(ModelType::kDeepFM);
  o.emb_dims.pop_back();
  ExpectInvalid(o, "emb_dims has 3 entries");
  o = Valid(ModelType::kDeepFM);
  o.emb_dims[2] = 0;
  ExpectInvalid(o, "emb_dims[2] = 0");
  o = Valid(ModelType::kDeepFM);
  o.mlp_dims = {16, -3};
  ExpectInvalid(o, "mlp_dims[1] = -3");
}

TEST(ModelOptionsTest, EqualDimsWhereFieldsInteract) {
  for (ModelType t : {ModelType::kFM, ModelType::kFwFM, ModelType::kDeepFM, ModelType::kDeepFwFM,
                      ModelType::kDLRM}) {
    ModelOptions o = Valid(t);
    o.emb_dims[3] = 4;
    ExpectInvalid(o, "field 3 has 4");
  }
  ModelOptions dcn = Valid(ModelType::kDCNv2);
  dcn.emb_dims = {8, 4, 2, 16};
  EXPECT_TRUE(dcn.Validate().ok());
}

TEST(ModelOptionsTest, LrHasNoEmbeddings) {
  ModelOptions o = Valid(ModelType::kLR);
  o.emb_dims = {0, 0, 0, 0};
  EXPECT_TRUE(o.Validate().ok());
  o.emb_dims = {8, 8, 8, 8};
  ExpectInvalid(o, "LR has no embeddings");
}

TEST(ModelOptionsTest, Dropout) {
  ModelOptions o = Valid(ModelType::kDeepFwFM);
  o.dropout = 1.0f;
  ExpectInvalid(o, "dropout");
  o.dropout = -0.1f;
  ExpectInvalid(o, "dropout");
}

TEST(ModelOptionsTest, Dcn) {
  ModelOptions o = Valid(ModelType::kDCNv2);
  o.cross_layers = 0;
  ExpectInvalid(o, "cross_layers = 0");
  o = Valid(ModelType::kDCNv2);
  o.cross_rank = -1;
  ExpectInvalid(o, "cross_rank = -1");
}

TEST(ModelOptionsTest, Dlrm) {
  ModelOptions o = Valid(ModelType::kDLRM);
  o.num_dense_fields = 4;
  ExpectInvalid(o, "num_dense_fields = 4");
  o = Valid(ModelType::kDLRM);
  o.bottom_mlp_dims = {16, 4};
  ExpectInvalid(o, "must equal the embedding dim");
  o = Valid(ModelType::kDLRM);
  o.bottom_mlp_dims.clear();
  ExpectInvalid(o, "bottom_mlp_dims is empty");
  // One embedding field and no dense fields: nothing to take dots of.
  o = Valid(ModelType::kDLRM);
  o.num_fields = 1;
  o.emb_dims = {8};
  o.num_dense_fields = 0;
  ExpectInvalid(o, "at least two vectors");
  o.dlrm_interaction_cat = true;
  EXPECT_TRUE(o.Validate().ok());
}

}  // namespace
}  // namespace ctrps::worker
