#include "worker/serve/sparse_engine.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "worker/serve/mlp_fold.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CTRPS_ROW_AVX2 1
#endif

namespace ctrps::worker::serve {
namespace {

constexpr int T = kSparseTile;

#ifdef CTRPS_ROW_AVX2
inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

// The first MLP layer for one example reads x at f Dp + k, not f d + k.
CsrMatrix PadFieldColumns(const CsrMatrix& m, int F, int d, int Dp) {
  CsrMatrix p = m;
  p.cols = F * Dp;
  for (uint32_t& c : p.col) c = c / d * Dp + c % d;
  return p;
}

}  // namespace

std::unique_ptr<SparseFactorPath> SparseFactorPath::Build(const BundleManifest& m) {
  const ModelOptions& o = m.model;
  const ModelType t = o.type;
  if (t != ModelType::kLR && t != ModelType::kFM && t != ModelType::kFwFM &&
      t != ModelType::kDeepFM && t != ModelType::kDeepFwFM)
    return nullptr;
  if (!o.low_rank.empty()) return nullptr;
  for (int d : o.emb_decode_dims)
    if (d != 0) return nullptr;
  std::unordered_map<std::string, const DenseTensor*> by_name;
  for (const DenseTensor& d : m.dense) by_name[d.name] = &d;
  auto get = [&](const std::string& name, int rows, int cols) -> const DenseTensor* {
    auto it = by_name.find(name);
    if (it == by_name.end() || it->second->rows != rows || it->second->cols != cols) return nullptr;
    return it->second;
  };
  auto p = std::unique_ptr<SparseFactorPath>(new SparseFactorPath);
  p->type_ = t;
  p->F_ = o.num_fields;
  p->d_ = t == ModelType::kLR ? 0 : o.emb_dims.empty() ? 0 : o.emb_dims[0];
  for (int f = 0; f < p->F_ && t != ModelType::kLR; ++f)
    if (o.emb_dims[f] != p->d_) return nullptr;
  p->W_ = 1 + p->d_;
  p->Dp_ = (p->d_ + 7) / 8 * 8;
  p->RS_ = (p->W_ + 7) / 8 * 8;
  const DenseTensor* bias = get("bias", 1, 1);
  if (bias == nullptr) return nullptr;
  p->bias_ = bias->values[0];
  const int F = p->F_, d = p->d_;
  if (t == ModelType::kFM || t == ModelType::kDeepFM) p->pair_ = Pair::kFm;
  if (t == ModelType::kFwFM || t == ModelType::kDeepFwFM) {
    p->pair_ = Pair::kFwFm;
    const DenseTensor* r = get("fwfm.r", F, F);
    if (r == nullptr) return nullptr;
    for (int i = 0; i < F; ++i)
      for (int j = i + 1; j < F; ++j) {
        // As FwFmInteraction symmetrises R: 0.5 (R + R^T).
        const float v = 0.5f * (r->values[static_cast<size_t>(j) * F + i] +
                                r->values[static_cast<size_t>(i) * F + j]);
        if (v == 0.0f) continue;
        p->pi_.push_back(static_cast<uint16_t>(i));
        p->pj_.push_back(static_cast<uint16_t>(j));
        p->pr_.push_back(v);
      }
    for (size_t q = 0; q < p->pi_.size(); ++q)
      if (q == 0 || p->pi_[q] != p->pi_[q - 1]) p->pair_group_.push_back(static_cast<uint32_t>(q));
    p->pair_group_.push_back(static_cast<uint32_t>(p->pi_.size()));
  }
  if (t == ModelType::kDeepFM || t == ModelType::kDeepFwFM) {
    std::vector<int> dims = {F * d};
    dims.insert(dims.end(), o.mlp_dims.begin(), o.mlp_dims.end());
    dims.push_back(1);
    std::vector<DenseLayer> row_net;  // the single-row network, folded below
    for (size_t l = 0; l + 1 < dims.size(); ++l) {
      Layer L;
      L.name = "mlp." + std::to_string(l);
      L.in = dims[l];
      L.out = dims[l + 1];
      L.relu = l + 2 < dims.size();
      const DenseTensor* w = get(L.name + ".weight", L.out, L.in);
      const DenseTensor* b = get(L.name + ".bias", L.out, 1);
      if (w == nullptr || b == nullptr) return nullptr;
      L.dense = w->values;
      L.bias = b->values;
      L.csr = CsrMatrix::FromDense(w->values.data(), L.out, L.in);
      L.sparse_tile = L.csr.density() <= kTileMaxDensity;
      row_net.push_back({L.out, L.in, L.relu, L.dense, L.bias});
      p->max_width_ = std::max({p->max_width_, L.in, L.out});
      p->layers_.push_back(std::move(L));
    }
    FoldDeadNeurons(&row_net);
    for (size_t l = 0; l < row_net.size(); ++l) {
      Layer& L = p->layers_[l];
      const DenseLayer& R = row_net[l];
      L.row_out = R.out;
      L.row_bias = R.bias;
      const CsrMatrix folded = CsrMatrix::FromDense(R.w.data(), R.out, R.in);
      L.sparse_row = folded.density() <= kSingleRowMaxDensity;
      // One example: a layer after a SELL layer reads its output in that
      // layer's sorted order, so its columns are renumbered to match.
      const std::vector<uint32_t>* prev =
          l == 0 || !p->layers_[l - 1].sparse_row ? nullptr : &p->layers_[l - 1].sell.row_of;
      std::vector<uint32_t> pos;  // input index -> position in the sorted input
      if (prev != nullptr) {
        pos.assign(R.in, 0);
        for (int r = 0; r < R.in; ++r) pos[(*prev)[r]] = static_cast<uint32_t>(r);
      }
      CsrMatrix c = l == 0 ? PadFieldColumns(folded, F, d, p->Dp_) : folded;
      for (uint32_t& col : c.col)
        if (!pos.empty()) col = pos[col];
      L.row_in = c.cols;
      if (L.sparse_row)
        L.sell = SellMatrix::FromCsr(c, L.row_bias.data());
      else
        L.dense_row = c.ToDense();
    }
  }
  p->max_width_ = std::max(p->max_width_, F * p->Dp_);
  return p;
}

void SparseFactorPath::InitScratch(Scratch* s) const {
  // SELL layers leave their output in a buffer of SellScratchFloats(rows).
  const size_t w = static_cast<size_t>(SellScratchFloats(max_width_ + 8));
  s->x.assign(static_cast<size_t>(F_) * Dp_ + 8, 0.0f);
  s->h0.assign(w, 0.0f);
  s->h1.assign(w, 0.0f);
  s->scratch.assign(w, 0.0f);
  s->tx.assign(static_cast<size_t>(F_) * d_ * T + T, 0.0f);
  s->th0.assign(w * T, 0.0f);
  s->th1.assign(w * T, 0.0f);
  s->tacc.assign(static_cast<size_t>(std::max(d_, 1)) * T + T, 0.0f);
  s->tlin.assign(T, 0.0f);
}

float SparseFactorPath::Row(const float* rows, const float* values, Scratch* s) const {
  const int F = F_, d = d_, Dp = Dp_, S = RS_;
  float linear = 0.0f;
  float* x = s->x.data();
#ifdef CTRPS_ROW_AVX2
  // x's field f: v times the row's entries 1 .. d, zeros up to Dp.
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int f = 0; f < F; ++f) {
    const float* r = rows + static_cast<size_t>(f) * S;
    const float v = values[f];
    linear += v * r[0];
    const __m256 vv = _mm256_set1_ps(v);
    for (int k = 0; k < Dp; k += 8) {
      const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(d - k), lane));
      _mm256_storeu_ps(x + f * Dp + k,
                       _mm256_and_ps(_mm256_mul_ps(vv, _mm256_loadu_ps(r + 1 + k)), keep));
    }
  }
#else
  for (int f = 0; f < F; ++f) {
    const float* r = rows + static_cast<size_t>(f) * S;
    const float v = values[f];
    linear += v * r[0];
    for (int k = 0; k < d; ++k) x[f * Dp + k] = v * r[1 + k];
  }
#endif
  float logit = linear + bias_;
  if (pair_ == Pair::kFwFm) {
    // sum over pairs of r_ij <x_i, x_j> = sum_i <x_i, sum_j r_ij x_j>: the
    // inner sum in vector registers, one dot per first field.
    float acc = 0.0f;
#ifdef CTRPS_ROW_AVX2
    if (Dp == 16) {
      __m256 t0 = _mm256_setzero_ps(), t1 = t0;
      for (size_t g = 0; g + 1 < pair_group_.size(); ++g) {
        __m256 z0 = _mm256_setzero_ps(), z1 = z0;
        for (uint32_t q = pair_group_[g]; q < pair_group_[g + 1]; ++q) {
          const float* b = x + pj_[q] * 16;
          const __m256 r = _mm256_set1_ps(pr_[q]);
          z0 = _mm256_fmadd_ps(r, _mm256_loadu_ps(b), z0);
          z1 = _mm256_fmadd_ps(r, _mm256_loadu_ps(b + 8), z1);
        }
        const float* a = x + pi_[pair_group_[g]] * 16;
        t0 = _mm256_fmadd_ps(_mm256_loadu_ps(a), z0, t0);
        t1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + 8), z1, t1);
      }
      acc = HorizontalSum(_mm256_add_ps(t0, t1));
    } else
#endif
    {
      for (size_t g = 0; g + 1 < pair_group_.size(); ++g) {
        const float* a = x + pi_[pair_group_[g]] * Dp;
        for (uint32_t q = pair_group_[g]; q < pair_group_[g + 1]; ++q) {
          const float* b = x + pj_[q] * Dp;
          float dot = 0.0f;
          for (int k = 0; k < d; ++k) dot += a[k] * b[k];
          acc += pr_[q] * dot;
        }
      }
    }
    logit += acc;
  } else if (pair_ == Pair::kFm) {
    float sq = 0.0f, ss = 0.0f;
    for (int k = 0; k < d; ++k) {
      float sum = 0.0f;
      for (int f = 0; f < F; ++f) {
        const float e = x[f * Dp + k];
        sum += e;
        sq += e * e;
      }
      ss += sum * sum;
    }
    logit += 0.5f * (ss - sq);
  }
  if (!layers_.empty()) {
    const float* in = x;
    float* bufs[2] = {s->h0.data(), s->h1.data()};
    int which = 0;
    for (const Layer& L : layers_) {
      float* out = bufs[which];
      if (L.sparse_row)  // out in the sorted order; the next layer reads it so
        SellMV(L.sell, in, L.relu, out, nullptr);
      else
        DenseMV(L.dense_row.data(), L.row_out, L.row_in, L.row_bias.data(), in, L.relu, out);
      in = out;
      which ^= 1;
    }
    logit += in[0];
  }
  return logit;
}

void SparseFactorPath::Tile(const float* rows, const float* values, int n, Scratch* s,
                            float* logits) const {
  const int F = F_, d = d_, W = W_;
  float* tx = s->tx.data();
  float* lin = s->tlin.data();
  // Gather: value-scaled embeddings feature-major, linear terms; the tile's
  // unused examples are zeros.
  for (int t = 0; t < T; ++t) lin[t] = bias_;
  if (n < T)
    for (int i = 0; i < F * d; ++i) std::fill(tx + static_cast<size_t>(i) * T + n, tx + (i + 1) * size_t{T}, 0.0f);
  for (int t = 0; t < n; ++t) {
    const float* r = rows + static_cast<size_t>(t) * F * W;
    const float* v = values + static_cast<size_t>(t) * F;
    float linear = 0.0f;
    for (int f = 0; f < F; ++f) {
      const float* rf = r + static_cast<size_t>(f) * W;
      linear += v[f] * rf[0];
      for (int k = 0; k < d; ++k) tx[static_cast<size_t>(f * d + k) * T + t] = v[f] * rf[1 + k];
    }
    lin[t] += linear;
  }
  if (pair_ == Pair::kFwFm) {
    float* acc = s->tacc.data();  // T: the pair term
    float* dot = acc + T;         // T
    std::fill(acc, acc + T, 0.0f);
    const size_t P = pr_.size();
    for (size_t p = 0; p < P; ++p) {
      const float* a = tx + static_cast<size_t>(pi_[p]) * d * T;
      const float* b = tx + static_cast<size_t>(pj_[p]) * d * T;
      for (int t = 0; t < T; ++t) dot[t] = a[t] * b[t];
      for (int k = 1; k < d; ++k)
        for (int t = 0; t < T; ++t) dot[t] += a[k * T + t] * b[k * T + t];
      const float r = pr_[p];
      for (int t = 0; t < T; ++t) acc[t] += r * dot[t];
    }
    for (int t = 0; t < T; ++t) lin[t] += acc[t];
  } else if (pair_ == Pair::kFm) {
    float* ss = s->tacc.data();  // T
    float* sum = ss + T;         // T
    float sq[T];
    for (int t = 0; t < T; ++t) ss[t] = sq[t] = 0.0f;
    for (int k = 0; k < d; ++k) {
      for (int t = 0; t < T; ++t) sum[t] = 0.0f;
      for (int f = 0; f < F; ++f) {
        const float* e = tx + static_cast<size_t>(f * d + k) * T;
        for (int t = 0; t < T; ++t) {
          sum[t] += e[t];
          sq[t] += e[t] * e[t];
        }
      }
      for (int t = 0; t < T; ++t) ss[t] += sum[t] * sum[t];
    }
    for (int t = 0; t < T; ++t) lin[t] += 0.5f * (ss[t] - sq[t]);
  }
  if (!layers_.empty()) {
    const float* in = tx;
    float* bufs[2] = {s->th0.data(), s->th1.data()};
    int which = 0;
    for (const Layer& L : layers_) {
      float* out = bufs[which];
      if (L.sparse_tile)
        SpMMTile(L.csr, L.bias.data(), in, L.relu, out);
      else
        DenseMMTile(L.dense.data(), L.out, L.in, L.bias.data(), in, L.relu, out);
      in = out;
      which ^= 1;
    }
    for (int t = 0; t < T; ++t) lin[t] += in[t];
  }
  std::copy_n(lin, n, logits);
}

std::string SparseFactorPath::Describe() const {
  std::string s = ModelTypeName(type_);
  char buf[256];
  if (pair_ == Pair::kFwFm) {
    std::snprintf(buf, sizeof buf, ", FwFM pairs %zu of %d", pr_.size(), F_ * (F_ - 1) / 2);
    s += buf;
  }
  for (const Layer& L : layers_) {
    const int in = &L == &layers_.front() ? L.in : L.row_in;  // layer 0's row_in is padded
    std::string folded;
    if (L.row_out != L.out || in != L.in)
      folded = " " + std::to_string(L.row_out) + "x" + std::to_string(in) + " after folding";
    std::snprintf(buf, sizeof buf, ", %s %dx%d density %.4f (row %s%s, tile %s)", L.name.c_str(),
                  L.out, L.in, L.csr.density(), L.sparse_row ? "sparse" : "dense",
                  folded.c_str(), L.sparse_tile ? "sparse" : "dense");
    s += buf;
  }
  return s;
}

uint64_t SparseFactorPath::mlp_nnz() const {
  uint64_t n = 0;
  for (const Layer& L : layers_) n += L.csr.nnz();
  return n;
}

SparseLinearKernel::SparseLinearKernel(const CsrMatrix& w, std::vector<float> bias)
    : csr_(w), bias_(std::move(bias)) {
  sparse_row_ = csr_.density() <= kSingleRowMaxDensity;
  if (sparse_row_)
    sell_ = SellMatrix::FromCsr(csr_, bias_.data());
  else
    dense_ = csr_.ToDense();
  tx_.assign(static_cast<size_t>(csr_.cols) * T, 0.0f);
  ty_.assign(static_cast<size_t>(csr_.rows) * T, 0.0f);
  scratch_.assign(static_cast<size_t>(SellScratchFloats(csr_.rows)), 0.0f);
}

void SparseLinearKernel::Apply(const float* x, int64_t n, float* y) const {
  const int in = csr_.cols, out = csr_.rows;
  if (n == 1) {
    if (sparse_row_)
      SellMV(sell_, x, /*relu=*/false, scratch_.data(), y);
    else
      DenseMV(dense_.data(), out, in, bias_.data(), x, /*relu=*/false, y);
    return;
  }
  for (int64_t b0 = 0; b0 < n; b0 += T) {
    const int m = static_cast<int>(std::min<int64_t>(T, n - b0));
    float* tx = tx_.data();
    for (int t = 0; t < m; ++t) {
      const float* xc = x + static_cast<size_t>(b0 + t) * in;
      for (int i = 0; i < in; ++i) tx[static_cast<size_t>(i) * T + t] = xc[i];
    }
    if (m < T)
      for (int i = 0; i < in; ++i) std::fill_n(tx + static_cast<size_t>(i) * T + m, T - m, 0.0f);
    SpMMTile(csr_, bias_.data(), tx, /*relu=*/false, ty_.data());
    for (int t = 0; t < m; ++t) {
      float* yc = y + static_cast<size_t>(b0 + t) * out;
      for (int o = 0; o < out; ++o) yc[o] = ty_[static_cast<size_t>(o) * T + t];
    }
  }
}

}  // namespace ctrps::worker::serve
