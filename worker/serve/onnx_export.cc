// ExportOnnx: builds the ONNX graph of a model from its bundle manifest (the
// dense weights by name) and its sorted tables, then runs libonnx's checker.
// The graph computes exactly what worker/nn's Forward computes (see the
// model files there); only the order of float additions differs.
//
// Compressed models: low-rank layers are two Gemm nodes (a Relu between them
// for the "act" variant); embedding decoders are one batched MatMul over the
// fields when every decoded field has the same widths (else a MatMul per
// field), and where the decoded vectors feed an MLP's first layer (DeepFM,
// DeepFwFM, DLRM with the concatenation interaction) that layer reads the
// stored coordinates and the decoded fields' values through the folded
// weight, as the native engine does (Model::PrepareForServing).
#include "worker/serve/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <Eigen/Core>


#include "worker/serve/exporter.h"
#include "worker/serve/onnx_graph.h"

namespace ctrps::worker::serve {
namespace {

using onnx_graph::DenseByName;
using onnx_graph::GraphBuilder;

constexpr int kOpset = 13;

// The weight name of an MLP's first linear map: "<prefix>.0" or, low rank,
// "<prefix>.0.a".
std::string FirstLinear(const ModelOptions& o, const std::string& prefix) {
  const std::string l0 = prefix + ".0";
  return o.RankOf(l0) != nullptr ? l0 + ".a" : l0;
}

// An MLP named like worker/nn/mlp.h, its layers as LinearLayers(o) lists
// them: "<prefix>.<l>.weight" (out x in) and ".bias", or for a low-rank layer
// "<prefix>.<l>.a.*" then "<prefix>.<l>.b.*" (a Relu between them if the
// layer says so); ReLU after the hidden layers. w0, if set, is a row-major
// initializer that replaces the first linear map's weight (a folded decoder).
StatusOr<std::string> Mlp(GraphBuilder* gb, const DenseByName& dense, const ModelOptions& o,
                          const std::string& prefix, std::string x, const std::string& w0 = "") {
  int layers = 0;
  bool first_map = true;
  auto gemm = [&](const std::string& name, const std::string& in) -> StatusOr<std::string> {
    std::string w = w0;
    if (!first_map || w0.empty()) {
      ASSIGN_OR_RETURN(w, dense.RowMajor(gb, name + ".weight"));
    }
    first_map = false;
    ASSIGN_OR_RETURN(std::string b, dense.Vector(gb, name + ".bias"));
    const std::string y = gb->Fresh(name);
    GraphBuilder::IntAttr(gb->Node("Gemm", {in, w, b}, y), "transB", 1);
    return y;
  };
  for (const LinearLayerShape& s : LinearLayers(o)) {
    if (s.layer.rfind(prefix + ".", 0) != 0 ||
        s.layer.find('.', prefix.size() + 1) != std::string::npos)
      continue;
    std::string y;
    if (s.rank == 0) {
      ASSIGN_OR_RETURN(y, gemm(s.layer, x));
    } else {
      ASSIGN_OR_RETURN(std::string h, gemm(s.layer + ".a", x));
      if (s.relu_between) h = gb->Op("Relu", {h});
      ASSIGN_OR_RETURN(y, gemm(s.layer + ".b", h));
    }
    x = s.hidden ? gb->Op("Relu", {y}) : y;
    ++layers;
  }
  if (layers == 0) return Status::Internal("ONNX export: no layers named " + prefix + ".*");
  return x;
}

struct Layout {
  int F = 0, W = 0, lin = 0;  // fields, padded row width, linear weight first?
  std::vector<int> dims;      // stored embedding width per field (k where it has a decoder)
};

// Field f's decoded width, 0 without a decoder.
int DecodeDim(const ModelOptions& o, int f) {
  return o.emb_decode_dims.empty() ? 0 : o.emb_decode_dims[f];
}

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColMap = Eigen::Map<const Eigen::MatrixXf>;

// EmbeddingInput::FoldWeight from the manifest's tensors: the weight of
// linear map `name`, reading [keep other inputs; the decoded vectors of
// fields >= first], folded over the decoders to read [the same keep inputs;
// coordinates of fields >= first; values of the decoded fields], row-major.
StatusOr<RowMajorF> FoldedWeight(const DenseByName& dense, const ModelOptions& o,
                                 const Layout& L, int keep, int first, const std::string& name) {
  ASSIGN_OR_RETURN(const DenseTensor* w, dense.Get(name + ".weight"));
  int stored = 0, decoded = 0, out_width = keep;
  for (int f = first; f < L.F; ++f) {
    stored += L.dims[f];
    decoded += DecodeDim(o, f) > 0 ? 1 : 0;
    out_width += o.FieldDim(f);
  }
  if (w->cols != out_width)
    return Status::Internal("ONNX export: " + name + ".weight has " + std::to_string(w->cols) +
                            " columns, the decoded vectors are " + std::to_string(out_width));
  const ColMap wm(w->values.data(), w->rows, w->cols);
  RowMajorF folded(w->rows, keep + stored + decoded);
  folded.leftCols(keep) = wm.leftCols(keep);
  int in_col = keep, coord_col = keep, value_col = keep + stored;
  for (int f = first; f < L.F; ++f) {
    const int k = L.dims[f], d = o.FieldDim(f);
    const auto wf = wm.middleCols(in_col, d);
    in_col += d;
    if (DecodeDim(o, f) == 0) {
      folded.middleCols(coord_col, k) = wf;
    } else {
      const std::string p = "emb." + std::to_string(f) + ".decoder";
      ASSIGN_OR_RETURN(const DenseTensor* u, dense.Get(p + ".weight"));
      ASSIGN_OR_RETURN(const DenseTensor* mu, dense.Get(p + ".bias"));
      folded.middleCols(coord_col, k).noalias() = wf * ColMap(u->values.data(), d, k);
      folded.col(value_col++).noalias() = wf * ColMap(mu->values.data(), d, 1);
    }
    coord_col += k;
  }
  return folded;
}

StatusOr<onnx::ModelProto> BuildGraph(const BundleManifest& m,
                                      const std::vector<SortedRows>& tables,
                                      const std::string& doc) {
  const ModelOptions& o = m.model;
  Layout L;
  L.F = o.num_fields;
  const bool factor = o.type == ModelType::kLR || o.type == ModelType::kFM ||
                      o.type == ModelType::kFwFM || o.type == ModelType::kDeepFM ||
                      o.type == ModelType::kDeepFwFM;
  L.lin = factor ? 1 : 0;
  for (int f = 0; f < L.F; ++f) {
    L.dims.push_back(o.type == ModelType::kLR ? 0 : o.emb_dims[f]);
    L.W = std::max(L.W, tables[f].width);
    if (tables[f].width != L.lin + L.dims[f])
      return Status::Internal("ONNX export: table " + std::to_string(f) + " is " +
                              std::to_string(tables[f].width) + " wide, expected " +
                              std::to_string(L.lin + L.dims[f]));
  }
  L.W = std::max(L.W, 1);

  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("ctrps");
  model.set_producer_version("1");
  model.set_doc_string(doc);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name(std::string("ctrps_") + ModelTypeName(o.type));
  GraphBuilder gb(g);
  DenseByName dense(m);

  auto add_io = [](google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
                   const std::string& name, int type, std::vector<int64_t> dims) {
    onnx::ValueInfoProto* v = list->Add();
    v->set_name(name);
    onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(type);
    for (int64_t d : dims) {
      auto* dim = t->mutable_shape()->add_dim();
      if (d < 0)
        dim->set_dim_param("batch");
      else
        dim->set_dim_value(d);
    }
  };
  add_io(g->mutable_input(), "row_index", onnx::TensorProto::INT64, {-1, L.F});
  add_io(g->mutable_input(), "value", onnx::TensorProto::FLOAT, {-1, L.F});
  add_io(g->mutable_output(), "logit", onnx::TensorProto::FLOAT, {-1});
  add_io(g->mutable_output(), "probability", onnx::TensorProto::FLOAT, {-1});

  // The concatenated table: row 0 zeros, then every field's rows, padded to W.
  uint64_t total = 1;
  for (const SortedRows& t : tables) total += t.keys.size();
  std::vector<float> table(total * L.W, 0.0f);
  uint64_t row = 1;
  for (const SortedRows& t : tables)
    for (size_t i = 0; i < t.keys.size(); ++i, ++row)
      std::copy_n(&t.rows[i * t.width], t.width, &table[row * L.W]);
  gb.Floats("embedding_table", {static_cast<int64_t>(total), L.W}, table.data());
  table = {};

  // rows [B, F, W], scaled by each field's value.
  const std::string gathered = gb.Gather("embedding_table", "row_index", 0);
  const std::string v3 = gb.Op("Unsqueeze", {"value", gb.Ints1({2})});
  const std::string scaled = gb.Op("Mul", {gathered, v3}, "scaled_rows");
  const std::string flat = gb.Reshape(scaled, {-1, static_cast<int64_t>(L.F) * L.W});
  // [B, sum k]: the stored (value-scaled) coordinates of fields [first, last).
  auto coords = [&](int first, int last) {
    std::vector<int64_t> idx;
    for (int f = first; f < last; ++f)
      for (int k = 0; k < L.dims[f]; ++k) idx.push_back(static_cast<int64_t>(f) * L.W + L.lin + k);
    return gb.Gather(flat, gb.Ints1(idx), 1);
  };
  auto transpose = [&](const std::string& x, const std::vector<int64_t>& perm) {
    const std::string out = gb.Fresh("transpose");
    GraphBuilder::IntsAttr(gb.Node("Transpose", {x}, out), "perm", perm);
    return out;
  };
  // x0 [B, D]: the vectors of fields >= first, decoded where the field has a
  // decoder (v (U c + mu) = U (v c) + v mu), concatenated (EmbeddingInput).
  // c: coords(first, F) if already made.
  auto embeddings = [&](int first, std::string c = "") -> StatusOr<std::string> {
    if (c.empty()) c = coords(first, L.F);
    bool any = false, uniform = true;
    const int k = L.dims[first], d = DecodeDim(o, first);
    for (int f = first; f < L.F; ++f) {
      any = any || DecodeDim(o, f) > 0;
      uniform = uniform && DecodeDim(o, f) == d && L.dims[f] == k;
    }
    if (!any) return c;
    const int n = L.F - first;
    if (uniform) {
      // Every field decodes k -> d: one batched MatMul [n, B, k] x [n, k, d].
      std::vector<float> ut(static_cast<size_t>(n) * k * d), mu(static_cast<size_t>(n) * d);
      for (int i = 0; i < n; ++i) {
        const std::string p = "emb." + std::to_string(first + i) + ".decoder";
        ASSIGN_OR_RETURN(const DenseTensor* u, dense.Get(p + ".weight"));
        ASSIGN_OR_RETURN(const DenseTensor* m, dense.Get(p + ".bias"));
        // U (d x k) column-major is U^T (k x d) row-major.
        std::copy_n(u->values.data(), k * d, &ut[static_cast<size_t>(i) * k * d]);
        std::copy_n(m->values.data(), d, &mu[static_cast<size_t>(i) * d]);
      }
      const std::string ut_name = gb.Floats("emb.decoders_t", {n, k, d}, ut.data());
      const std::string mu_name = gb.Floats("emb.decoder_biases", {n, d}, mu.data());
      const std::string ct = transpose(gb.Reshape(c, {-1, n, k}), {1, 0, 2});
      const std::string decoded = transpose(gb.Op("MatMul", {ct, ut_name}), {1, 0, 2});
      const std::string v = gb.Op("Unsqueeze", {gb.Slice("value", 1, first, L.F), gb.Ints1({2})});
      const std::string sum = gb.Op("Add", {decoded, gb.Op("Mul", {v, mu_name})}, "decoded");
      return gb.Reshape(sum, {-1, static_cast<int64_t>(n) * d});
    }
    std::vector<std::string> pieces;
    for (int f = first; f < L.F; ++f) {
      const std::string cf = coords(f, f + 1);
      if (DecodeDim(o, f) == 0) {
        pieces.push_back(cf);
        continue;
      }
      const std::string p = "emb." + std::to_string(f) + ".decoder";
      ASSIGN_OR_RETURN(const DenseTensor* u, dense.Get(p + ".weight"));
      // [k, d] = U^T row-major: U's column-major values as they are.
      const std::string ut = gb.Floats(p + ".weight_t", {u->cols, u->rows}, u->values.data());
      ASSIGN_OR_RETURN(std::string mu, dense.Vector(&gb, p + ".bias"));
      const std::string vmu = gb.Op("Mul", {gb.Slice("value", 1, f, f + 1), mu});
      pieces.push_back(gb.Op("Add", {gb.Op("MatMul", {cf, ut}), vmu}, "decoded"));
    }
    return gb.Concat(pieces, 1);
  };

  std::vector<std::string> terms;  // [B] pieces of the logit, or [B, 1]
  std::string logit2d;             // an MLP's [B, 1] output
  switch (o.type) {
    case ModelType::kLR:
    case ModelType::kFM:
    case ModelType::kFwFM:
    case ModelType::kDeepFM:
    case ModelType::kDeepFwFM: {
      ASSIGN_OR_RETURN(const DenseTensor* bias, dense.Get("bias"));
      const std::string lin = gb.ReduceSum(gb.Slice(scaled, 2, 0, 1), {1, 2}, false);
      terms.push_back(gb.Op("Add", {lin, gb.Scalar(bias->values[0])}));
      if (o.type == ModelType::kLR) break;
      const int d = o.FieldDim(0);
      const std::string c0 = coords(0, L.F);
      ASSIGN_OR_RETURN(const std::string x0, embeddings(0, c0));
      const std::string e3 = gb.Reshape(x0, {-1, L.F, d});  // [B, F, d]
      if (o.type == ModelType::kFM || o.type == ModelType::kDeepFM) {
        // 0.5 (|sum_f e_f|^2 - sum_f |e_f|^2)
        const std::string s = gb.ReduceSum(e3, {1}, false);
        const std::string sq = gb.ReduceSum(gb.Op("Mul", {s, s}), {1}, false);
        const std::string ee = gb.ReduceSum(gb.Op("Mul", {e3, e3}), {1, 2}, false);
        terms.push_back(gb.Op("Mul", {gb.Op("Sub", {sq, ee}), gb.Scalar(0.5f)}, "fm"));
      } else {
        // 0.5 sum_ij rs_ij <e_i, e_j>, rs = (R + R^T) / 2 with zero diagonal.
        ASSIGN_OR_RETURN(const DenseTensor* r, dense.Get("fwfm.r"));
        std::vector<float> rs(static_cast<size_t>(L.F) * L.F);
        for (int i = 0; i < L.F; ++i)
          for (int j = 0; j < L.F; ++j)
            rs[i * L.F + j] = i == j ? 0.0f
                                     : 0.5f * (r->values[static_cast<size_t>(j) * L.F + i] +
                                               r->values[static_cast<size_t>(i) * L.F + j]);
        const std::string rs_name = gb.Floats("fwfm.r_symmetric", {L.F, L.F}, rs.data());
        const std::string mixed = gb.Op("MatMul", {rs_name, e3});  // [B, F, d]
        const std::string s = gb.ReduceSum(gb.Op("Mul", {e3, mixed}), {1, 2}, false);
        terms.push_back(gb.Op("Mul", {s, gb.Scalar(0.5f)}, "fwfm"));
      }
      if ((o.type == ModelType::kDeepFM || o.type == ModelType::kDeepFwFM) && x0 != c0) {
        // Decoders feed the MLP: its first layer reads the coordinates and the
        // decoded fields' values through the folded weight.
        const std::string first = FirstLinear(o, "mlp");
        ASSIGN_OR_RETURN(RowMajorF w0, FoldedWeight(dense, o, L, 0, 0, first));
        const std::string w0_name = gb.Floats(first + ".folded_weight", {w0.rows(), w0.cols()},
                                              w0.data());
        std::vector<int64_t> decoded;
        for (int f = 0; f < L.F; ++f)
          if (DecodeDim(o, f) > 0) decoded.push_back(f);
        const std::string x = gb.Concat({c0, gb.Gather("value", gb.Ints1(decoded), 1)}, 1);
        ASSIGN_OR_RETURN(logit2d, Mlp(&gb, dense, o, "mlp", x, w0_name));
      } else if (o.type == ModelType::kDeepFM || o.type == ModelType::kDeepFwFM) {
        ASSIGN_OR_RETURN(logit2d, Mlp(&gb, dense, o, "mlp", x0));
      }
      break;
    }
    case ModelType::kDCNv2: {
      ASSIGN_OR_RETURN(const std::string x0, embeddings(0));
      std::string x = x0;
      for (int l = 0; l < o.cross_layers; ++l) {
        const std::string p = "cross." + std::to_string(l);
        ASSIGN_OR_RETURN(std::string b, dense.Vector(&gb, p + ".bias"));
        std::string z = gb.Fresh(p + "_z");
        if (o.cross_rank == 0) {
          ASSIGN_OR_RETURN(std::string w, dense.RowMajor(&gb, p + ".weight"));
          GraphBuilder::IntAttr(gb.Node("Gemm", {x, w, b}, z), "transB", 1);
        } else {
          // W x = U (V^T x): rows x V, then times U^T.
          ASSIGN_OR_RETURN(std::string u, dense.RowMajor(&gb, p + ".u"));
          ASSIGN_OR_RETURN(std::string v, dense.RowMajor(&gb, p + ".v"));
          const std::string h = gb.Op("MatMul", {x, v});
          GraphBuilder::IntAttr(gb.Node("Gemm", {h, u, b}, z), "transB", 1);
        }
        x = gb.Op("Add", {gb.Op("Mul", {x0, z}), x}, p);
      }
      ASSIGN_OR_RETURN(logit2d, Mlp(&gb, dense, o, "mlp", x));
      break;
    }
    case ModelType::kDLRM: {
      const int N = o.num_dense_fields, d = o.FieldDim(N);
      std::vector<std::string> vecs;  // [B, k * d] pieces of z
      std::string bottom;
      if (N > 0) {
        ASSIGN_OR_RETURN(bottom, Mlp(&gb, dense, o, "bottom_mlp", gb.Slice("value", 1, 0, N)));
        vecs.push_back(bottom);
      }
      std::vector<int64_t> decoded;
      for (int f = N; f < L.F; ++f)
        if (DecodeDim(o, f) > 0) decoded.push_back(f);
      if (o.dlrm_interaction_cat && !decoded.empty()) {
        // The decoded vectors would feed the top MLP as they are: its first
        // layer reads the bottom output, the coordinates and the decoded
        // fields' values through the folded weight instead.
        const std::string first = FirstLinear(o, "top_mlp");
        ASSIGN_OR_RETURN(RowMajorF w0, FoldedWeight(dense, o, L, N > 0 ? d : 0, N, first));
        const std::string w0_name = gb.Floats(first + ".folded_weight", {w0.rows(), w0.cols()},
                                              w0.data());
        vecs.push_back(coords(N, L.F));
        vecs.push_back(gb.Gather("value", gb.Ints1(decoded), 1));
        ASSIGN_OR_RETURN(logit2d, Mlp(&gb, dense, o, "top_mlp", gb.Concat(vecs, 1), w0_name));
        break;
      }
      ASSIGN_OR_RETURN(const std::string emb, embeddings(N));
      vecs.push_back(emb);
      const std::string z = vecs.size() == 1 ? vecs[0] : gb.Concat(vecs, 1);
      const int n = L.F - N + (N > 0 ? 1 : 0);
      std::string top_in = z;
      if (!o.dlrm_interaction_cat) {
        const std::string z3 = gb.Reshape(z, {-1, n, d});
        const std::string zt = gb.Fresh("zt");
        GraphBuilder::IntsAttr(gb.Node("Transpose", {z3}, zt), "perm", {0, 2, 1});
        const std::string gram = gb.Reshape(gb.Op("MatMul", {z3, zt}), {-1, int64_t{n} * n});
        std::vector<int64_t> upper;
        for (int i = 0; i < n; ++i)
          for (int j = i + 1; j < n; ++j) upper.push_back(int64_t{i} * n + j);
        const std::string pairs = gb.Gather(gram, gb.Ints1(upper), 1);
        top_in = N > 0 ? gb.Concat({bottom, pairs}, 1) : pairs;
      }
      ASSIGN_OR_RETURN(logit2d, Mlp(&gb, dense, o, "top_mlp", top_in));
      break;
    }
  }
  if (!logit2d.empty()) terms.push_back(gb.Reshape(logit2d, {-1}));
  std::string logit = terms[0];
  for (size_t i = 1; i < terms.size(); ++i) logit = gb.Op("Add", {logit, terms[i]});
  gb.Node("Identity", {logit}, "logit");
  gb.Node("Sigmoid", {"logit"}, "probability");
  return model;
}

}  // namespace

Status ExportOnnx(Model* model, ps::EmbeddingClient* source, const DataSpec& data,
                  const OnnxExportOptions& options) {
  if (options.out_dir.empty()) return Status::InvalidArgument("ONNX export: no output directory");
  const int F = model->options().num_fields;
  BundleManifest m = DescribeModel(model, data);
  std::vector<SortedRows> tables;
  std::vector<std::vector<Key>> vocab;
  for (int f = 0; f < F; ++f) {
    // A model with removed fields keeps its tables' ids.
    ASSIGN_OR_RETURN(SortedRows t,
                     CollectTable(source, model->options().TableOf(f), model->RowWidth(f)));
    vocab.push_back(t.keys);
    tables.push_back(std::move(t));
  }
  ASSIGN_OR_RETURN(onnx::ModelProto proto,
                   BuildGraph(m, tables,
                              "ctrps " + std::string(ModelTypeName(m.model.type)) +
                                  " exported from " + options.source));
  tables.clear();
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("ONNX export: the checker rejects the graph: ") + e.what());
  }
  std::string bytes;
  if (proto.ByteSizeLong() >= (size_t{1} << 31) || !proto.SerializeToString(&bytes))
    return Status::ResourceExhausted(
        "ONNX export: the graph is over protobuf's 2 GiB limit; export the native bundle instead");
  ASSIGN_OR_RETURN(std::string tmp, BeginOutputDir(options.out_dir));
  RETURN_IF_ERROR(WriteWholeFile(tmp + "/model.onnx", bytes));
  RETURN_IF_ERROR(OnnxVocabulary::Write(tmp + "/vocab.bin", vocab));
  // The structure and data format as text, so tools know how raw lines
  // become the graph's inputs (no model.pb: this is not a native bundle).
  RETURN_IF_ERROR(WriteBundleManifestText(tmp, m));
  return CommitOutputDir(tmp, options.out_dir);
}

}  // namespace ctrps::worker::serve
