// The CTR model interface. A model sees a batch as per-field sparse rows
// pulled from the parameter server (or a local table) and owns its dense
// parameters; the trainer moves rows and gradients to and from storage.
//
// Row layout: every field's row is [linear weight (if the model has a
// first-order term)] followed by [embedding of dim emb_dims[f]].
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "common/keys.h"
#include "common/status.h"

namespace ctrps::worker {

using MatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using VectorF = Eigen::Matrix<float, Eigen::Dynamic, 1>;

// One field's rows for a batch, deduplicated: example b uses unique row
// index[b]. rows is W x U column-major, so each row's W floats are
// contiguous (the same bytes as a row-major U x W table slice).
struct FieldRows {
  std::vector<Key> unique_keys;  // U
  std::vector<int32_t> index;    // B
  MatrixF rows;                  // W x U, filled before Forward
  MatrixF grads;                 // W x U, written by Backward (summed over the batch)
};

struct SparseBatch {
  int batch_size = 0;
  std::vector<FieldRows> fields;  // one per field
  // F x B column-major: values(f, b) scales field f's row for example b
  // (both the linear weight and the embedding).
  MatrixF values;
};

// A dense parameter: a view into the model's contiguous parameter buffer.
struct DenseParamInfo {
  std::string name;   // e.g. "mlp.0.weight"
  int rows = 0, cols = 0;
  size_t offset = 0;  // into the flat value/grad buffers
};

class LinearKernel;  // mlp.h

enum class ModelType { kLR, kFM, kFwFM, kDeepFM, kDeepFwFM, kDCNv2, kDLRM };

const char* ModelTypeName(ModelType t);

// A low-rank MLP layer (AFM, COMPRESSION.md section 2; worker/nn/mlp.h).
struct LowRankLayer {
  std::string layer;  // "<mlp>.<l>": "mlp.1", "top_mlp.0", "bottom_mlp.0"
  int rank = 0;       // k >= 1: the layer is two thin layers through k
  bool relu = false;  // the "act" variant: a ReLU between the two
};

// One linear map y = W x + b of a model (an MLP layer), by name.
struct LinearLayerShape {
  std::string layer;  // "mlp.1"
  int in = 0, out = 0;
  int rank = 0;       // 0: full; else low rank (see LowRankLayer)
  bool relu_between = false;
  bool hidden = false;  // followed by ReLU (and dropout) in the model
};

struct ModelOptions {
  ModelType type = ModelType::kDeepFM;
  int num_fields = 0;
  std::vector<int> emb_dims;         // per field; FM/FwFM/DeepFM/DeepFwFM/DLRM need them equal
  std::vector<int> mlp_dims = {400, 400, 400};  // hidden layer widths (deep models)
  float dropout = 0.0f;              // dropout rate on hidden layers, training only
  int cross_layers = 3;              // DCN-v2: number of cross layers
  int cross_rank = 0;                // DCN-v2: 0 = full-rank cross matrices, else low-rank
  bool dlrm_interaction_cat = false; // DLRM: false = dot interaction, true = concatenation
  int num_dense_fields = 0;          // DLRM: the first N fields form the bottom-MLP input
  std::vector<int> bottom_mlp_dims = {64, 16};  // DLRM bottom MLP (last = emb dim)
  uint64_t seed = 1;                 // dense init and dropout

  // Compressed structure (COMPRESSION.md; written by `ctrps compress`).
  // MLP layers replaced by two thin layers.
  std::vector<LowRankLayer> low_rank;
  // Embedding decoders: empty (none), or per field 0 (rows hold the field's
  // vector) or its decoded width d > 0: rows then hold k = emb_dims[f]
  // coordinates and the model decodes e = U_f c + mu_f (worker/nn/embedding.h).
  std::vector<int> emb_decode_dims;

  // Removed fields (UMEC, COMPRESSION.md section 4): the model's fields are
  // a subset of the data's. Empty: field f is the data's field f, its rows in
  // table f; else field f is the data's field field_tables[f] (ascending),
  // whose keys and rows belong to that table. The model itself does not use
  // it: the trainer, storage and serving do.
  std::vector<int> field_tables;
  int TableOf(int f) const { return field_tables.empty() ? f : field_tables[f]; }

  // The width of field f's vector as the model's interactions and MLP see
  // it: the decoded width, else emb_dims[f].
  int FieldDim(int f) const {
    return !emb_decode_dims.empty() && emb_decode_dims[f] > 0 ? emb_decode_dims[f] : emb_dims[f];
  }
  // The rank entry of an MLP layer ("mlp.1"), or null when it is full.
  const LowRankLayer* RankOf(const std::string& layer) const;

  Status Validate() const;
};

// Every MLP layer of the model `o` describes (o valid but for low_rank),
// in the order the model applies them, with its shape and rank.
std::vector<LinearLayerShape> LinearLayers(const ModelOptions& o);

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelOptions& options() const = 0;
  // Width of field f's sparse row (see the layout above).
  virtual int RowWidth(int field) const = 0;

  // Computes B logits. Caches what Backward needs. `training` enables dropout.
  virtual void Forward(const SparseBatch& in, bool training, VectorF* logits) = 0;
  // Given dLoss/dlogit (B), writes in->fields[f].grads (sized W x U) and adds
  // to the dense gradient buffer (which the caller zeroes before a step).
  virtual void Backward(const VectorF& dlogits, SparseBatch* in) = 0;

  // All dense parameters live in one flat buffer (and one for gradients) so
  // optimizers, allreduce and checkpoints treat them as a single array.
  virtual const std::vector<DenseParamInfo>& DenseParams() const = 0;
  virtual float* dense_values() = 0;
  virtual float* dense_grads() = 0;
  virtual size_t dense_size() const = 0;

  // Forward FLOPs per example of the dense part (for throughput reports).
  virtual double FlopsPerExample() const = 0;

  // Serving: precomputes from the current dense values what inference can
  // fold. An embedding decoder whose output feeds an MLP's first layer
  // becomes part of that layer (W1 blockdiag(U_f) over the stored
  // coordinates, plus W1_f mu_f times the field's value; COMPRESSION.md
  // section 2); interactions still get the decoded vectors. Forward(training
  // = false) uses it until the next training Forward; call it again after
  // changing dense values. Backward needs a Forward without it. Allocates;
  // a model with nothing to fold ignores it.
  virtual void PrepareForServing() {}

  // Compression statistics: while set, Forward copies the pre-activation
  // output (out x B) of each named linear map ("mlp.1", or "mlp.1.a" /
  // "mlp.1.b" for the halves of a low-rank layer) into the given matrix,
  // and runs its MLPs on one thread. An empty list removes the taps.
  // NotFound for a name the model does not have.
  [[nodiscard]] virtual Status SetLayerTaps(
      const std::vector<std::pair<std::string, MatrixF*>>& taps) = 0;

  // Serving: linear maps ("mlp.1", "top_mlp.0"; the names SetLayerTaps
  // takes) computed by the given kernels in inference Forwards (e.g. a
  // pruned layer's sparse form; the kernels outlive their use). An empty
  // list removes them. NotFound for a name the model does not have.
  [[nodiscard]] virtual Status SetServingKernels(
      const std::vector<std::pair<std::string, const LinearKernel*>>& kernels) = 0;

  // Position of the dropout mask stream (training Forward calls so far).
  // Masks are a pure function of (seed, this counter), so a checkpoint that
  // saves it lets a resumed run draw the same masks. 0 without dropout.
  virtual uint64_t rng_state() const { return 0; }
  virtual void set_rng_state(uint64_t /*state*/) {}
};

StatusOr<std::unique_ptr<Model>> NewModel(const ModelOptions& options);

}  // namespace ctrps::worker
