#include "worker/serve/sparse_kernels.h"

#include <algorithm>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CTRPS_SPARSE_AVX2 1
#endif

namespace ctrps::worker::serve {
namespace {

#ifdef CTRPS_SPARSE_AVX2
inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

bool IsZero(float v) { return v == 0.0f; }  // true for -0.0 too

}  // namespace

CsrMatrix CsrMatrix::FromDense(const float* colmajor, int rows, int cols) {
  CsrMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.row_starts.assign(static_cast<size_t>(rows) + 1, 0);
  for (int o = 0; o < rows; ++o) {
    for (int i = 0; i < cols; ++i) {
      const float v = colmajor[static_cast<size_t>(i) * rows + o];
      if (IsZero(v)) continue;
      m.col.push_back(static_cast<uint32_t>(i));
      m.values.push_back(v);
    }
    m.row_starts[o + 1] = static_cast<uint32_t>(m.values.size());
  }
  return m;
}

std::vector<float> CsrMatrix::ToDense() const {
  std::vector<float> d(static_cast<size_t>(rows) * cols, 0.0f);
  for (int o = 0; o < rows; ++o)
    for (uint32_t k = row_starts[o]; k < row_starts[o + 1]; ++k)
      d[static_cast<size_t>(col[k]) * rows + o] = values[k];
  return d;
}

void SpMV(const CsrMatrix& w, const float* bias, const float* x, bool relu, float* y) {
  const uint32_t* rs = w.row_starts.data();
  const uint32_t* c = w.col.data();
  const float* v = w.values.data();
  for (int o = 0; o < w.rows; ++o) {
    uint32_t k = rs[o];
    const uint32_t e = rs[o + 1];
    float s = 0.0f;
#ifdef CTRPS_SPARSE_AVX2
    if (e - k >= 8) {
      __m256 acc = _mm256_setzero_ps();
      for (; k + 8 <= e; k += 8) {
        const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + k));
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(v + k), _mm256_i32gather_ps(x, idx, 4), acc);
      }
      s = HorizontalSum(acc);
    }
#endif
    for (; k < e; ++k) s += v[k] * x[c[k]];
    if (bias != nullptr) s += bias[o];
    y[o] = relu ? std::max(s, 0.0f) : s;
  }
}

void SpMMTile(const CsrMatrix& w, const float* bias, const float* x, bool relu, float* y) {
  constexpr int T = kSparseTile;
  const uint32_t* rs = w.row_starts.data();
  const uint32_t* c = w.col.data();
  const float* v = w.values.data();
  for (int o = 0; o < w.rows; ++o) {
    const float b = bias != nullptr ? bias[o] : 0.0f;
    float* yo = y + static_cast<size_t>(o) * T;
#ifdef CTRPS_SPARSE_AVX2
    static_assert(T == 64, "the AVX2 tile kernel holds 8 vectors");
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0;
    for (uint32_t k = rs[o]; k < rs[o + 1]; ++k) {
      const __m256 wk = _mm256_broadcast_ss(v + k);
      const float* xr = x + static_cast<size_t>(c[k]) * T;
      a0 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xr), a0);
      a1 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xr + 8), a1);
      a2 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xr + 16), a2);
      a3 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xr + 24), a3);
      a4 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xr + 32), a4);
      a5 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xr + 40), a5);
      a6 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xr + 48), a6);
      a7 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xr + 56), a7);
    }
    const __m256 bv = _mm256_set1_ps(b), zero = _mm256_setzero_ps();
    __m256 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    for (int j = 0; j < 8; ++j) {
      __m256 r = _mm256_add_ps(acc[j], bv);
      if (relu) r = _mm256_max_ps(r, zero);
      _mm256_storeu_ps(yo + 8 * j, r);
    }
#else
    float acc[T] = {};
    for (uint32_t k = rs[o]; k < rs[o + 1]; ++k) {
      const float* xr = x + static_cast<size_t>(c[k]) * T;
      for (int t = 0; t < T; ++t) acc[t] += v[k] * xr[t];
    }
    for (int t = 0; t < T; ++t) yo[t] = relu ? std::max(acc[t] + b, 0.0f) : acc[t] + b;
#endif
  }
}

void DenseMV(const float* w, int rows, int cols, const float* bias, const float* x, bool relu,
             float* y) {
  if (rows == 1) {  // an output layer: one contiguous dot product
    int i = 0;
    float s = 0.0f;
#ifdef CTRPS_SPARSE_AVX2
    // Explicit vectors: left to itself, GCC 12 vectorised the 8 scalar
    // accumulators below across lanes with a shuffle per step (90 ns for
    // 393 inputs, 3% of a 99%-sparse DeepFwFM's single-row prediction).
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 32 <= cols; i += 32) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= cols; i += 8)
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    s = HorizontalSum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
#else
    float acc[8] = {};
    for (; i + 8 <= cols; i += 8)
      for (int k = 0; k < 8; ++k) acc[k] += w[i + k] * x[i + k];
    for (int k = 0; k < 8; ++k) s += acc[k];
#endif
    for (; i < cols; ++i) s += w[i] * x[i];
    if (bias != nullptr) s += bias[0];
    y[0] = relu ? std::max(s, 0.0f) : s;
    return;
  }
  // Column-major: y = sum_i x[i] W(:, i), skipping zero inputs (ReLU outputs).
  for (int o = 0; o < rows; ++o) y[o] = bias != nullptr ? bias[o] : 0.0f;
  for (int i = 0; i < cols; ++i) {
    const float xi = x[i];
    if (xi == 0.0f) continue;
    const float* wc = w + static_cast<size_t>(i) * rows;
    for (int o = 0; o < rows; ++o) y[o] += wc[o] * xi;
  }
  if (relu)
    for (int o = 0; o < rows; ++o) y[o] = std::max(y[o], 0.0f);
}

void DenseMMTile(const float* w, int rows, int cols, const float* bias, const float* x, bool relu,
                 float* y) {
  constexpr int T = kSparseTile;
  for (int o = 0; o < rows; ++o) {
    float acc[T];
    const float b = bias != nullptr ? bias[o] : 0.0f;
    for (int t = 0; t < T; ++t) acc[t] = 0.0f;
    for (int i = 0; i < cols; ++i) {
      const float wi = w[static_cast<size_t>(i) * rows + o];
      const float* xr = x + static_cast<size_t>(i) * T;
      for (int t = 0; t < T; ++t) acc[t] += wi * xr[t];
    }
    float* yo = y + static_cast<size_t>(o) * T;
    for (int t = 0; t < T; ++t) yo[t] = relu ? std::max(acc[t] + b, 0.0f) : acc[t] + b;
  }
}

SellMatrix SellMatrix::FromCsr(const CsrMatrix& m, const float* bias) {
  constexpr int C = kSellLanes;
  SellMatrix s;
  s.rows = m.rows;
  s.cols = m.cols;
  const int padded = SellScratchFloats(m.rows);
  const bool narrow = m.cols <= 65536;
  std::vector<uint32_t> order(m.rows);
  for (int o = 0; o < m.rows; ++o) order[o] = static_cast<uint32_t>(o);
  auto len = [&](uint32_t o) { return m.row_starts[o + 1] - m.row_starts[o]; };
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return len(a) > len(b); });
  s.row_of.assign(padded, static_cast<uint32_t>(m.rows));
  s.bias.assign(padded, 0.0f);
  s.slice_starts.push_back(0);
  for (int r0 = 0; r0 < padded; r0 += C) {
    uint32_t steps = 0;
    for (int r = r0; r < std::min(m.rows, r0 + C); ++r) steps = std::max(steps, len(order[r]));
    for (uint32_t j = 0; j < steps; ++j)
      for (int r = r0; r < r0 + C; ++r) {
        const bool real = r < m.rows && j < len(order[r]);
        const uint32_t k = real ? m.row_starts[order[r]] + j : 0;
        const uint32_t c = real ? m.col[k] : 0;
        if (narrow)
          s.col16.push_back(static_cast<uint16_t>(c));
        else
          s.col.push_back(static_cast<int32_t>(c));
        s.values.push_back(real ? m.values[k] : 0.0f);
      }
    s.slice_starts.push_back(s.slice_starts.back() + steps);
    for (int r = r0; r < std::min(m.rows, r0 + C); ++r) {
      s.row_of[r] = order[r];
      s.bias[r] = bias != nullptr ? bias[order[r]] : 0.0f;
    }
  }
  return s;
}

namespace {

#ifdef CTRPS_SPARSE_AVX2
// Four inputs at the 16-bit columns packed in w.
inline __m128 Gather4(const float* x, uint64_t w) {
  return _mm_set_ps(x[w >> 48], x[(w >> 32) & 0xffff], x[(w >> 16) & 0xffff], x[w & 0xffff]);
}
#endif

#if defined(CTRPS_SPARSE_AVX2) && defined(__AVX512F__)

void SellMV16(const SellMatrix& w, const float* x, bool relu, float* scratch) {
  const int slices = static_cast<int>(w.slice_starts.size()) - 1;
  const float* v = w.values.data();
  const bool narrow = !w.col16.empty() || w.values.empty();
  for (int s = 0; s < slices; ++s) {
    __m512 acc = _mm512_loadu_ps(w.bias.data() + 16 * s), acc2 = _mm512_setzero_ps();
    const uint32_t e = w.slice_starts[s + 1];
    for (uint32_t j = w.slice_starts[s]; j < e; ++j) {
      __m512 g;
      if (narrow) {
        uint64_t c[4];  // the step's 16 columns
        std::memcpy(c, w.col16.data() + 16 * size_t{j}, sizeof c);
        g = _mm512_insertf32x4(
            _mm512_insertf32x4(
                _mm512_insertf32x4(_mm512_zextps128_ps512(Gather4(x, c[0])), Gather4(x, c[1]), 1),
                Gather4(x, c[2]), 2),
            Gather4(x, c[3]), 3);
      } else {
        g = _mm512_i32gather_ps(_mm512_loadu_si512(w.col.data() + 16 * size_t{j}), x, 4);
      }
      const __m512 wv = _mm512_loadu_ps(v + 16 * size_t{j});
      if (j & 1)  // two chains, so the FMA latency overlaps
        acc2 = _mm512_fmadd_ps(wv, g, acc2);
      else
        acc = _mm512_fmadd_ps(wv, g, acc);
    }
    acc = _mm512_add_ps(acc, acc2);
    if (relu) acc = _mm512_max_ps(acc, _mm512_setzero_ps());
    _mm512_storeu_ps(scratch + 16 * s, acc);
  }
}
#endif

#if defined(CTRPS_SPARSE_AVX2) && !defined(__AVX512F__)
void SellMV8(const SellMatrix& w, const float* x, bool relu, float* scratch) {
  const int slices = static_cast<int>(w.slice_starts.size()) - 1;
  const int32_t* c = w.col.data();
  const uint16_t* c16 = w.col16.data();
  const bool narrow = !w.col16.empty() || w.values.empty();
  const float* v = w.values.data();
  for (int s = 0; s < slices; ++s) {
    if (narrow) {
      __m256 acc = _mm256_loadu_ps(w.bias.data() + 8 * s), acc2 = _mm256_setzero_ps();
      const uint32_t e = w.slice_starts[s + 1];
      for (uint32_t j = w.slice_starts[s]; j < e; ++j) {
        uint64_t a, b;  // the step's 8 columns
        std::memcpy(&a, c16 + 8 * size_t{j}, 8);
        std::memcpy(&b, c16 + 8 * size_t{j} + 4, 8);
        const __m256 g =
            _mm256_insertf128_ps(_mm256_castps128_ps256(Gather4(x, a)), Gather4(x, b), 1);
        const __m256 wv = _mm256_loadu_ps(v + 8 * size_t{j});
        if (j & 1)  // two chains, so the FMA latency overlaps
          acc2 = _mm256_fmadd_ps(wv, g, acc2);
        else
          acc = _mm256_fmadd_ps(wv, g, acc);
      }
      acc = _mm256_add_ps(acc, acc2);
      if (relu) acc = _mm256_max_ps(acc, _mm256_setzero_ps());
      _mm256_storeu_ps(scratch + 8 * s, acc);
      continue;
    }
    __m256 acc = _mm256_loadu_ps(w.bias.data() + 8 * s), acc2 = _mm256_setzero_ps();
    uint32_t j = w.slice_starts[s];
    const uint32_t e = w.slice_starts[s + 1];
    for (; j + 2 <= e; j += 2) {
      const __m256i i0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 8 * size_t{j}));
      const __m256i i1 =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 8 * size_t{j} + 8));
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(v + 8 * size_t{j}), _mm256_i32gather_ps(x, i0, 4),
                            acc);
      acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(v + 8 * size_t{j} + 8),
                             _mm256_i32gather_ps(x, i1, 4), acc2);
    }
    if (j < e) {
      const __m256i i0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 8 * size_t{j}));
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(v + 8 * size_t{j}), _mm256_i32gather_ps(x, i0, 4),
                            acc);
    }
    acc = _mm256_add_ps(acc, acc2);
    if (relu) acc = _mm256_max_ps(acc, _mm256_setzero_ps());
    _mm256_storeu_ps(scratch + 8 * s, acc);
  }
}
#endif

#ifndef CTRPS_SPARSE_AVX2
// Any lane count, no vector instructions.
void SellMVScalar(const SellMatrix& w, const float* x, bool relu, float* scratch) {
  constexpr int C = kSellLanes;
  const bool narrow = !w.col16.empty() || w.values.empty();
  const float* v = w.values.data();
  for (size_t s = 0; s + 1 < w.slice_starts.size(); ++s) {
    float acc[C];
    for (int r = 0; r < C; ++r) acc[r] = w.bias[C * s + r];
    for (uint32_t j = w.slice_starts[s]; j < w.slice_starts[s + 1]; ++j)
      for (int r = 0; r < C; ++r)
        acc[r] += v[C * size_t{j} + r] *
                  x[narrow ? w.col16[C * size_t{j} + r] : w.col[C * size_t{j} + r]];
    for (int r = 0; r < C; ++r) scratch[C * s + r] = relu ? std::max(acc[r], 0.0f) : acc[r];
  }
}
#endif

}  // namespace

void SellMV(const SellMatrix& w, const float* x, bool relu, float* scratch, float* y) {
#if defined(CTRPS_SPARSE_AVX2) && defined(__AVX512F__)
  SellMV16(w, x, relu, scratch);
#elif defined(CTRPS_SPARSE_AVX2)
  SellMV8(w, x, relu, scratch);
#else
  SellMVScalar(w, x, relu, scratch);
#endif
  if (y != nullptr)
    for (int r = 0; r < w.rows; ++r) y[w.row_of[r]] = scratch[r];
}

Blocked8Matrix Blocked8Matrix::FromDense(const float* colmajor, int rows, int cols) {
  Blocked8Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.col_starts.assign(static_cast<size_t>(cols) + 1, 0);
  for (int i = 0; i < cols; ++i) {
    const float* c = colmajor + static_cast<size_t>(i) * rows;
    for (int r0 = 0; r0 < rows; r0 += 8) {
      bool any = false;
      for (int r = r0; r < std::min(rows, r0 + 8); ++r) any = any || !IsZero(c[r]);
      if (!any) continue;
      m.block_row.push_back(static_cast<uint32_t>(r0));
      for (int r = r0; r < r0 + 8; ++r) m.values.push_back(r < rows ? c[r] : 0.0f);
    }
    m.col_starts[i + 1] = static_cast<uint32_t>(m.block_row.size());
  }
  return m;
}

void Blocked8MV(const Blocked8Matrix& w, const float* bias, const float* x, bool relu, float* y) {
  const int padded = (w.rows + 7) / 8 * 8;
  for (int o = 0; o < padded; ++o) y[o] = bias != nullptr && o < w.rows ? bias[o] : 0.0f;
  for (int i = 0; i < w.cols; ++i) {
    const float xi = x[i];
    if (xi == 0.0f) continue;
#ifdef CTRPS_SPARSE_AVX2
    const __m256 xv = _mm256_set1_ps(xi);
    for (uint32_t b = w.col_starts[i]; b < w.col_starts[i + 1]; ++b) {
      float* yb = y + w.block_row[b];
      _mm256_storeu_ps(yb, _mm256_fmadd_ps(_mm256_loadu_ps(w.values.data() + 8 * size_t{b}), xv,
                                           _mm256_loadu_ps(yb)));
    }
#else
    for (uint32_t b = w.col_starts[i]; b < w.col_starts[i + 1]; ++b)
      for (int r = 0; r < 8; ++r) y[w.block_row[b] + r] += w.values[8 * size_t{b} + r] * xi;
#endif
  }
  if (relu)
    for (int o = 0; o < padded; ++o) y[o] = std::max(y[o], 0.0f);
}

}  // namespace ctrps::worker::serve
