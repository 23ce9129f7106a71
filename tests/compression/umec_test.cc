// UMEC: the resource model against the multiply-adds of the built network,
// the primal-dual update (order, least-groups subgradient) against a
// straightforward reference, the final selection under the budget, the
// physical removal (kept units compute the same), the state's bytes, and
// bad budgets.
#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "compression/umec.h"
#include "worker/nn/model.h"

namespace ctrps::compression {
namespace {

using worker::MatrixF;
using worker::Model;
using worker::ModelOptions;
using worker::ModelType;
using worker::SparseBatch;
using worker::VectorF;

ModelOptions Deep(ModelType t, int fields = 5) {
  ModelOptions o;
  o.type = t;
  o.num_fields = fields;
  o.emb_dims.assign(fields, 3);
  o.mlp_dims = {7, 6};
  o.seed = 3;
  if (t == ModelType::kDLRM) {
    o.dlrm_interaction_cat = true;
    o.num_dense_fields = 2;
    o.bottom_mlp_dims = {4, 3};
  }
  return o;
}

std::unique_ptr<Model> Build(const ModelOptions& o) {
  auto m = worker::NewModel(o);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(*m);
}

// Multiply-adds counted from the built model's MLP weight matrices.
double CountMacs(const Model& m) {
  double macs = 0;
  for (const auto& p : m.DenseParams())
    if (p.name.find("mlp.") != std::string::npos && p.name.size() > 7 &&
        p.name.compare(p.name.size() - 7, 7, ".weight") == 0)
      macs += static_cast<double>(p.rows) * p.cols;
  return macs;
}

std::vector<int> DroppedWidths(const UmecNetwork& net, const UmecSelection& sel) {
  std::vector<int> dw;
  for (size_t i = 0; i < net.layers().size(); ++i) {
    int w = 0;
    for (int g : sel.dropped[i]) w += net.layers()[i].width[g];
    dw.push_back(w);
  }
  return dw;
}

TEST(UmecNetworkTest, ResourceModelCountsTheBuiltNetwork) {
  for (ModelType t : {ModelType::kDeepFM, ModelType::kDeepFwFM, ModelType::kDLRM, ModelType::kDCNv2}) {
    auto model = Build(Deep(t));
    auto net = UmecNetwork::Describe(*model, false, "umec");
    ASSERT_TRUE(net.ok()) << net.status().ToString();
    EXPECT_DOUBLE_EQ(net->dense_macs(), CountMacs(*model));
    UmecSelection sel;
    sel.dropped.resize(net->layers().size());
    // Drop the first and the last group of every layer (two for wide ones).
    for (size_t i = 0; i < net->layers().size(); ++i) {
      const int g = net->layers()[i].groups();
      sel.dropped[i] = g > 3 ? std::vector<int>{0, g - 1} : std::vector<int>{0};
    }
    auto cut = RemoveGroups(*model, *net, sel);
    ASSERT_TRUE(cut.ok()) << cut.status().ToString();
    EXPECT_DOUBLE_EQ(net->Macs(DroppedWidths(*net, sel)), CountMacs(*cut->model))
        << worker::ModelTypeName(t);
    if (net->layers().front().fields()) {
      const int gone = static_cast<int>(sel.dropped[0].size());
      EXPECT_EQ(cut->options.num_fields, model->options().num_fields - gone);
      EXPECT_EQ(static_cast<int>(cut->dropped_fields.size()), gone);
    }
  }
}

TEST(UmecNetworkTest, GroupsFollowTheModel) {
  auto dlrm = Build(Deep(ModelType::kDLRM));
  auto net = UmecNetwork::Describe(*dlrm, false, "umec");
  ASSERT_TRUE(net.ok());
  const UmecLayer& first = net->layers().front();
  ASSERT_TRUE(first.fields());
  EXPECT_EQ(first.layer, "top_mlp.0");
  EXPECT_EQ(first.groups(), 3);            // the sparse fields 2..4
  EXPECT_EQ(first.field.front(), 2);
  EXPECT_EQ(first.begin.front(), 3);       // after the bottom MLP's output
  auto dcn = Build(Deep(ModelType::kDCNv2));
  auto dn = UmecNetwork::Describe(*dcn, false, "umec");
  ASSERT_TRUE(dn.ok());
  EXPECT_FALSE(dn->layers().front().fields());  // the MLP reads the cross output
  auto in = UmecNetwork::Describe(*dcn, true, "umec");
  EXPECT_FALSE(in.ok());
  EXPECT_NE(in.status().message().find("umec.input_only"), std::string::npos);
  ModelOptions fm = Deep(ModelType::kFM);
  EXPECT_FALSE(UmecNetwork::Describe(*Build(fm), false, "umec").ok());
  ModelOptions lr = Deep(ModelType::kDeepFM);
  lr.low_rank.push_back({"mlp.1", 2, false});
  auto low = UmecNetwork::Describe(*Build(lr), false, "umec");
  EXPECT_FALSE(low.ok());
  EXPECT_NE(low.status().message().find("before AFM"), std::string::npos);
}

// A straightforward reference of one update, written from COMPRESSION.md.
struct Reference {
  std::vector<double> s, y;
  double z = 0;
};

void ReferenceUpdate(const UmecNetwork& net, const UmecOptions& o, double budget, float* w,
                     Reference* st) {
  const auto& L = net.layers();
  const size_t n = L.size();
  auto norms_of = [&](size_t i) {
    std::vector<double> v(L[i].groups(), 0.0);
    for (int g = 0; g < L[i].groups(); ++g)
      for (int c = L[i].begin[g]; c < L[i].begin[g] + L[i].width[g]; ++c) {
        double col = 0;  // per column, then over the group's columns
        for (int r = 0; r < L[i].rows; ++r) {
          const double x = w[L[i].weight_offset + static_cast<size_t>(c) * L[i].rows + r];
          col += x * x;
        }
        v[g] += col;
      }
    return v;
  };
  auto sorted = [](const std::vector<double>& v) {
    std::vector<int> idx(v.size());
    for (size_t i = 0; i < v.size(); ++i) idx[i] = static_cast<int>(i);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return v[a] < v[b]; });
    return idx;
  };
  std::vector<std::vector<double>> nm(n);
  std::vector<std::vector<int>> ord(n);
  std::vector<int> k(n), dw(n);
  for (size_t i = 0; i < n; ++i) {  // 1. shrink with the old y
    k[i] = static_cast<int>(std::ceil(st->s[i]));
    auto v = norms_of(i);
    auto idx = sorted(v);
    for (int j = 0; j < k[i]; ++j) {
      const int g = idx[j];
      for (int c = L[i].begin[g]; c < L[i].begin[g] + L[i].width[g]; ++c)
        for (int r = 0; r < L[i].rows; ++r) {
          float& x = w[L[i].weight_offset + static_cast<size_t>(c) * L[i].rows + r];
          x = static_cast<float>(x / (1 + 2 * o.lr * st->y[i]));
        }
    }
    nm[i] = norms_of(i);
    ord[i] = sorted(nm[i]);
    dw[i] = 0;
    for (int j = 0; j < k[i]; ++j) dw[i] += L[i].width[ord[i][j]];
  }
  std::vector<double> grad(n);
  for (size_t i = 0; i < n; ++i) {  // 2. s, from the (k+1)-th smallest
    const int next = ord[i][std::min(k[i], L[i].groups() - 1)];
    grad[i] = st->y[i] * nm[i][next] +
              st->z * net.ResourceSlope(dw, static_cast<int>(i), L[i].width[next]);
  }
  for (size_t i = 0; i < n; ++i)
    st->s[i] = std::min<double>(std::max(0.0, st->s[i] - o.lr_s * std::clamp(grad[i], -1.0, 1.0)),
                                L[i].groups() - 1);
  for (size_t i = 0; i < n; ++i) {  // 3. y, z at the new s
    const int kk = static_cast<int>(std::ceil(st->s[i]));
    double least = 0;
    dw[i] = 0;
    for (int j = 0; j < kk; ++j) {
      least += nm[i][ord[i][j]];
      dw[i] += L[i].width[ord[i][j]];
    }
    st->y[i] = std::max(0.0, st->y[i] + o.lr_y * least);
  }
  st->z = std::max(0.0, st->z + o.lr_z * (net.Resource(dw) - budget));
}

TEST(UmecSolverTest, UpdatesInThePapersOrder) {
  auto model = Build(Deep(ModelType::kDeepFM));
  auto net = UmecNetwork::Describe(*model, false, "umec");
  ASSERT_TRUE(net.ok());
  UmecOptions o;
  o.budget = 0.3;
  o.lr = 0.1;
  UmecSolver solver(o, *net, model.get(), nullptr);
  std::vector<float> ref_w(model->dense_values(), model->dense_values() + model->dense_size());
  Reference ref;
  ref.s.assign(net->layers().size(), 0.0);
  ref.y.assign(net->layers().size(), 0.0);
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 0.01f);
  for (int step = 1; step <= 60; ++step) {
    // The optimizer's step on W (the same for both).
    for (size_t i = 0; i < model->dense_size(); ++i) {
      const float d = noise(rng);
      model->dense_values()[i] += d;
      ref_w[i] += d;
    }
    solver.Update(step);
    ReferenceUpdate(*net, o, solver.budget(), ref_w.data(), &ref);
    // The same arithmetic, up to the compiler's fused multiply-adds.
    auto near = [](double a, double b) { return std::abs(a - b) <= 1e-9 * (1 + std::abs(b)); };
    for (size_t i = 0; i < ref.s.size(); ++i) {
      ASSERT_TRUE(near(solver.state().s[i], ref.s[i])) << "step " << step << " layer " << i;
      ASSERT_TRUE(near(solver.state().y[i], ref.y[i])) << "step " << step << " layer " << i;
      ASSERT_EQ(solver.last().dropped[i], static_cast<int>(std::ceil(ref.s[i])));
    }
    ASSERT_TRUE(near(solver.state().z, ref.z)) << "step " << step;
    for (size_t i = 0; i < ref_w.size(); ++i)
      ASSERT_NEAR(model->dense_values()[i], ref_w[i], 1e-6 * (1 + std::abs(ref_w[i])))
          << "step " << step << " weight " << i;
  }
  // Over budget at the start: z grew and pushed s up; y grew with it.
  EXPECT_GT(solver.state().z, 0);
  double s = 0;
  for (double v : solver.state().s) s += v;
  EXPECT_GT(s, 0);
}

TEST(UmecSolverTest, LeastGroupsSubgradient) {
  // One layer of neuron groups with known norms; z = 0: the s gradient is
  // y times the (ceil(s) + 1)-th smallest squared norm.
  ModelOptions mo = Deep(ModelType::kDCNv2);
  mo.mlp_dims = {4};
  auto model = Build(mo);
  auto net = UmecNetwork::Describe(*model, false, "umec");
  ASSERT_TRUE(net.ok());
  ASSERT_EQ(net->layers().size(), 1u);  // mlp.1: 4 columns (neurons of mlp.0)
  const UmecLayer& L = net->layers()[0];
  float* w = model->dense_values() + L.weight_offset;  // 1 x 4
  const float col[4] = {0.3f, 0.1f, 0.4f, 0.2f};       // squared: .09 .01 .16 .04
  for (int c = 0; c < 4; ++c) w[c] = col[c];
  UmecOptions o;
  o.budget = 1.0;
  o.lr = 0;  // no shrink
  o.lr_y = 0;
  o.lr_z = 0;
  UmecSolver solver(o, *net, model.get(), nullptr);
  UmecState st = solver.state();
  st.s = {1.5};  // ceil 2: the two weakest (cols 1, 3) counted; the next is col 0
  st.y = {2.0};
  ASSERT_TRUE(solver.RestoreState(st.Serialize()).ok());
  solver.Update(1);
  const double g = 2.0 * static_cast<double>(0.3f) * 0.3f;  // y * n_(3)
  EXPECT_DOUBLE_EQ(solver.state().s[0], 1.5 - 0.05 * g);
  EXPECT_EQ(solver.last().dropped[0], 2);
  EXPECT_DOUBLE_EQ(solver.last().least[0],
                   static_cast<double>(0.1f) * 0.1f + static_cast<double>(0.2f) * 0.2f);
}

TEST(UmecSolverTest, SelectionMeetsTheBudget) {
  for (double budget : {0.5, 0.3, 0.1}) {
    auto model = Build(Deep(ModelType::kDeepFM));
    auto net = UmecNetwork::Describe(*model, false, "umec");
    ASSERT_TRUE(net.ok());
    UmecOptions o;
    o.budget = budget;
    ASSERT_TRUE(ValidateUmec(o, *net, "umec").ok());
    UmecSolver solver(o, *net, model.get(), nullptr);
    const UmecSelection sel = solver.Select();  // s = 0: everything forced
    EXPECT_LE(sel.resource, budget);
    EXPECT_GT(sel.forced, 0);
    EXPECT_DOUBLE_EQ(sel.resource, net->Resource(DroppedWidths(*net, sel)));
    for (size_t i = 0; i < sel.dropped.size(); ++i)
      EXPECT_LT(static_cast<int>(sel.dropped[i].size()), net->layers()[i].groups());
  }
}

// The run length UMEC needs: s_l moves at most lr_s per update (its
// gradient is clipped at 1), so the duals alone bring ceil(s) to a budget
// that needs G groups of a layer gone only after G / lr_s updates or more
// (plus the updates z needs to outgrow y times the next group's norm).
// Stopped early, the final choice forces the rest by magnitude; run long
// enough, the duals meet the budget themselves.
TEST(UmecSolverTest, TheDualsMeetTheBudgetOnlyAfterEnoughUpdates) {
  auto model = Build(Deep(ModelType::kDeepFM));
  auto net = UmecNetwork::Describe(*model, false, "umec");
  ASSERT_TRUE(net.ok());
  UmecOptions o;  // the paper's rates
  o.budget = 0.3;
  UmecSolver solver(o, *net, model.get(), nullptr);
  int64_t first_met = -1;
  std::vector<double> prev = solver.state().s;
  for (int step = 1; step <= 20000 && first_met < 0; ++step) {
    solver.Update(step);
    for (size_t i = 0; i < prev.size(); ++i)
      ASSERT_LE(std::abs(solver.state().s[i] - prev[i]), o.lr_s + 1e-12) << "step " << step;
    prev = solver.state().s;
    if (step == 10) {
      EXPECT_GT(solver.Select().forced, 0) << "10 updates cannot reach 0.3";
    }
    if (solver.last().resource <= solver.budget()) first_met = step;
  }
  ASSERT_GT(first_met, 0) << "the duals never met the budget";
  // At least one group must go to reach 0.3 from 1.0, at lr_s per update.
  int dropped = 0;
  for (int k : solver.last().dropped) dropped = std::max(dropped, k);
  EXPECT_GE(first_met, static_cast<int64_t>(std::floor((dropped - 1) / o.lr_s)));
  const UmecSelection sel = solver.Select();
  EXPECT_EQ(sel.forced, 0);
  EXPECT_LE(sel.resource, o.budget);
}

TEST(UmecSolverTest, FieldsToDropSetsTheBudget) {
  auto model = Build(Deep(ModelType::kDeepFM, 6));
  auto net = UmecNetwork::Describe(*model, true, "umec");
  ASSERT_TRUE(net.ok());
  ASSERT_EQ(net->layers().size(), 1u);
  UmecOptions o;
  o.input_only = true;
  o.fields_to_drop = 2;
  ASSERT_TRUE(ValidateUmec(o, *net, "umec").ok());
  // Field 4's columns are the weakest, then field 1's.
  float* w = model->dense_values() + net->layers()[0].weight_offset;
  const int rows = net->layers()[0].rows;
  for (int c = 0; c < 3; ++c)
    for (int r = 0; r < rows; ++r) {
      w[static_cast<size_t>(12 + c) * rows + r] *= 0.01f;
      w[static_cast<size_t>(3 + c) * rows + r] *= 0.1f;
    }
  UmecSolver solver(o, *net, model.get(), nullptr);
  const UmecSelection sel = solver.Select();
  EXPECT_EQ(sel.dropped[0], (std::vector<int>{1, 4}));
  auto cut = RemoveGroups(*model, *net, sel);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->dropped_fields, (std::vector<int>{1, 4}));
  EXPECT_EQ(cut->options.field_tables, (std::vector<int>{0, 2, 3, 5}));
  o.fields_to_drop = 6;
  EXPECT_FALSE(ValidateUmec(o, *net, "umec").ok());
}

// A batch over the given fields with random rows.
SparseBatch RandomBatch(const Model& m, int b, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> normal(0.0f, 0.5f);
  SparseBatch sb;
  const int F = m.options().num_fields;
  sb.batch_size = b;
  sb.fields.resize(F);
  sb.values = MatrixF::Ones(F, b);
  for (int f = 0; f < F; ++f) {
    auto& fr = sb.fields[f];
    for (int i = 0; i < b; ++i) {
      fr.unique_keys.push_back(MakeKey(f, i));
      fr.index.push_back(i);
    }
    fr.rows.resize(m.RowWidth(f), b);
    for (int i = 0; i < fr.rows.size(); ++i) fr.rows.data()[i] = normal(rng);
  }
  return sb;
}

TEST(UmecSurgeryTest, KeptUnitsComputeTheSame) {
  for (ModelType t : {ModelType::kDeepFM, ModelType::kDeepFwFM, ModelType::kDLRM, ModelType::kDCNv2}) {
    auto model = Build(Deep(t));
    auto net = UmecNetwork::Describe(*model, false, "umec");
    ASSERT_TRUE(net.ok());
    UmecSelection sel;
    sel.dropped.resize(net->layers().size());
    for (size_t i = 0; i < net->layers().size(); ++i) sel.dropped[i] = {1};
    auto cut = RemoveGroups(*model, *net, sel);
    ASSERT_TRUE(cut.ok()) << cut.status().ToString();
    // Hard-zero the removed groups (and the removed neurons' outputs) in
    // the old model, and zero the removed fields' rows in its batch.
    float* w = model->dense_values();
    for (size_t i = 0; i < net->layers().size(); ++i) {
      const UmecLayer& L = net->layers()[i];
      for (int c = L.begin[1]; c < L.begin[1] + L.width[1]; ++c)
        for (int r = 0; r < L.rows; ++r) w[L.weight_offset + static_cast<size_t>(c) * L.rows + r] = 0;
    }
    SparseBatch full = RandomBatch(*model, 6, 11);
    SparseBatch kept;
    kept.batch_size = full.batch_size;
    std::vector<int> keep;
    for (int f = 0; f < model->options().num_fields; ++f)
      if (!std::binary_search(cut->dropped_fields.begin(), cut->dropped_fields.end(), f))
        keep.push_back(f);
      else
        full.fields[f].rows.setZero();
    kept.values = MatrixF::Ones(static_cast<int>(keep.size()), full.batch_size);
    for (int f : keep) kept.fields.push_back(full.fields[f]);
    VectorF a, b;
    model->Forward(full, false, &a);
    cut->model->Forward(kept, false, &b);
    ASSERT_EQ(a.size(), b.size());
    for (int i = 0; i < a.size(); ++i)
      EXPECT_NEAR(a[i], b[i], 1e-5f) << worker::ModelTypeName(t) << " example " << i;
  }
}

TEST(UmecBaselineTest, UniformThinningKeepsOneFractionAndEveryField) {
  auto model = Build(Deep(ModelType::kDeepFM));
  auto net = UmecNetwork::Describe(*model, false, "umec");
  ASSERT_TRUE(net.ok());
  UmecOptions o;
  o.selector = UmecSelector::kUniform;
  o.budget = 0.4;
  ASSERT_TRUE(ValidateUmec(o, *net, "umec").ok());
  UmecSolver solver(o, *net, model.get(), nullptr);
  const UmecSelection sel = solver.Select();
  EXPECT_LE(sel.resource, 0.4);
  EXPECT_TRUE(sel.dropped[0].empty());  // the fields
  // mlp.1 (7 neurons of mlp.0) and mlp.2 (6 of mlp.1): the same kept fraction j / 7.
  const int kept1 = 7 - static_cast<int>(sel.dropped[1].size());
  const int kept2 = 6 - static_cast<int>(sel.dropped[2].size());
  EXPECT_EQ(kept2, std::max(1, kept1 * 6 / 7));
  // One neuron more in every layer would break the budget.
  std::vector<int> dw = {0, 7 - (kept1 + 1), 6 - std::max(1, (kept1 + 1) * 6 / 7)};
  if (kept1 < 7) {
    EXPECT_GT(net->Resource(dw), 0.4);
  }
  o.input_only = true;
  auto in = UmecNetwork::Describe(*model, true, "umec");
  ASSERT_TRUE(in.ok());
  EXPECT_FALSE(ValidateUmec(o, *in, "umec").ok());
}

TEST(UmecBaselineTest, GroupLassoShrinksEveryGroupByTheProximalStep) {
  auto model = Build(Deep(ModelType::kDeepFM));
  auto net = UmecNetwork::Describe(*model, false, "umec");
  ASSERT_TRUE(net.ok());
  UmecOptions o;
  o.selector = UmecSelector::kGroupLasso;
  o.lr = 0.1;
  o.group_lasso = 0.5;
  UmecSolver solver(o, *net, model.get(), nullptr);
  const UmecLayer& L = net->layers()[0];
  const std::vector<double> before = GroupNorms(L, model->dense_values());
  ASSERT_TRUE(solver.AfterStep(1).ok());
  const std::vector<double> after = GroupNorms(L, model->dense_values());
  for (int g = 0; g < L.groups(); ++g) {
    const double n = std::sqrt(before[g]), want = std::max(0.0, n - 0.05);
    EXPECT_NEAR(std::sqrt(after[g]), want, 1e-5 * (1 + n)) << "group " << g;
  }
  // Magnitude and group lasso select from nothing removed: all forced.
  o.budget = 0.5;
  o.selector = UmecSelector::kMagnitude;
  UmecSolver magnitude(o, *net, model.get(), nullptr);
  const UmecSelection sel = magnitude.Select();
  int dropped = 0;
  for (const auto& d : sel.dropped) dropped += static_cast<int>(d.size());
  EXPECT_EQ(sel.forced, dropped);
  EXPECT_LE(sel.resource, 0.5);
}

TEST(UmecStateTest, BytesRoundTripAndDamageIsRefused) {
  UmecState st;
  st.s = {0.5, 3.25};
  st.y = {1e-3, 7};
  st.z = 0.125;
  st.updates = 42;
  UmecState back;
  ASSERT_TRUE(back.Parse(st.Serialize(), 2).ok());
  EXPECT_EQ(back.s, st.s);
  EXPECT_EQ(back.y, st.y);
  EXPECT_EQ(back.z, st.z);
  EXPECT_EQ(back.updates, 42);
  EXPECT_FALSE(back.Parse(st.Serialize(), 3).ok());
  EXPECT_FALSE(back.Parse(st.Serialize().substr(1), 2).ok());
}

TEST(UmecValidateTest, BadBudgetsAreRefusedByName) {
  auto model = Build(Deep(ModelType::kDeepFM));
  auto net = UmecNetwork::Describe(*model, false, "umec");
  ASSERT_TRUE(net.ok());
  for (double b : {0.0, -0.5, 1.5, 1e-6}) {
    UmecOptions o;
    o.budget = b;
    Status s = ValidateUmec(o, *net, "compression.stages[0].umec");
    EXPECT_FALSE(s.ok()) << b;
    EXPECT_NE(s.message().find("compression.stages[0].umec.budget"), std::string::npos) << s.message();
  }
  UmecOptions ok;
  ok.budget = 1.0;
  EXPECT_TRUE(ValidateUmec(ok, *net, "umec").ok());
}

}  // namespace
}  // namespace ctrps::compression
