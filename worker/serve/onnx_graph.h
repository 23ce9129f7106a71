// The pieces ExportOnnx (onnx_export.cc) builds its graphs from: a graph
// builder that names every node and initializer uniquely, and the bundle
// manifest's dense tensors by name as ONNX initializers. Internal to the
// ONNX export (needs libonnx's headers).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "worker/serve/bundle.h"

namespace ctrps::worker::serve::onnx_graph {

// Builds nodes and initializers of one graph with unique names.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* g) : g_(g) {}

  std::string Fresh(const std::string& hint) { return hint + "_" + std::to_string(next_++); }

  // A float initializer of `dims` from row-major values.
  std::string Floats(const std::string& name, const std::vector<int64_t>& dims, const float* v) {
    onnx::TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    size_t n = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      n *= static_cast<size_t>(d);
    }
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v), n * sizeof(float)));
    return name;
  }
  std::string Ints(const std::string& name, const std::vector<int64_t>& dims,
                   const std::vector<int64_t>& v) {
    onnx::TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 8));
    return name;
  }
  std::string Ints1(const std::vector<int64_t>& v) {
    return Ints(Fresh("const"), {static_cast<int64_t>(v.size())}, v);
  }
  std::string Scalar(float x) { return Floats(Fresh("const"), {}, &x); }

  onnx::NodeProto* Node(const std::string& op, const std::vector<std::string>& in,
                        const std::string& out) {
    onnx::NodeProto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(Fresh(op));
    for (const auto& i : in) n->add_input(i);
    n->add_output(out);
    return n;
  }
  std::string Op(const std::string& op, const std::vector<std::string>& in,
                 const std::string& hint = "") {
    const std::string out = Fresh(hint.empty() ? op : hint);
    Node(op, in, out);
    return out;
  }
  static void IntAttr(onnx::NodeProto* n, const std::string& name, int64_t v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void IntsAttr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  // ReduceSum over `axes` (opset 13 takes them as an input).
  std::string ReduceSum(const std::string& x, const std::vector<int64_t>& axes, bool keepdims) {
    const std::string out = Fresh("reduce_sum");
    IntAttr(Node("ReduceSum", {x, Ints1(axes)}, out), "keepdims", keepdims ? 1 : 0);
    return out;
  }
  std::string Reshape(const std::string& x, const std::vector<int64_t>& shape) {
    return Op("Reshape", {x, Ints1(shape)});
  }
  // x[:, start:end] along `axis`.
  std::string Slice(const std::string& x, int64_t axis, int64_t start, int64_t end) {
    return Op("Slice", {x, Ints1({start}), Ints1({end}), Ints1({axis})});
  }
  std::string Gather(const std::string& x, const std::string& idx, int64_t axis) {
    const std::string out = Fresh("gather");
    IntAttr(Node("Gather", {x, idx}, out), "axis", axis);
    return out;
  }
  std::string Concat(const std::vector<std::string>& xs, int64_t axis) {
    const std::string out = Fresh("concat");
    IntAttr(Node("Concat", xs, out), "axis", axis);
    return out;
  }

 private:
  onnx::GraphProto* g_;
  int next_ = 0;
};

// Dense tensors of the manifest by name; values are column-major.
class DenseByName {
 public:
  explicit DenseByName(const BundleManifest& m) {
    for (const DenseTensor& t : m.dense) map_[t.name] = &t;
  }
  StatusOr<const DenseTensor*> Get(const std::string& name) const {
    auto it = map_.find(name);
    if (it == map_.end()) return Status::Internal("ONNX export: no dense tensor '" + name + "'");
    return it->second;
  }
  // The tensor as a row-major [rows, cols] initializer.
  StatusOr<std::string> RowMajor(GraphBuilder* gb, const std::string& name) const {
    ASSIGN_OR_RETURN(const DenseTensor* t, Get(name));
    std::vector<float> v(t->values.size());
    for (int r = 0; r < t->rows; ++r)
      for (int c = 0; c < t->cols; ++c)
        v[static_cast<size_t>(r) * t->cols + c] = t->values[static_cast<size_t>(c) * t->rows + r];
    return gb->Floats(name, {t->rows, t->cols}, v.data());
  }
  // A column vector (rows x 1) as a 1-D initializer.
  StatusOr<std::string> Vector(GraphBuilder* gb, const std::string& name) const {
    ASSIGN_OR_RETURN(const DenseTensor* t, Get(name));
    return gb->Floats(name, {static_cast<int64_t>(t->values.size())}, t->values.data());
  }

 private:
  std::unordered_map<std::string, const DenseTensor*> map_;
};

}  // namespace ctrps::worker::serve::onnx_graph
