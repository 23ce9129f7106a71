// Sparse serving kernels for pruned models (DeepLight, COMPRESSION.md
// section 3): a pruned MLP layer y = W x + b with most of W exactly zero.
//
// The bundle stores CSR by output unit (row); the engine builds what each
// kernel wants from it at load:
//   - single example: SELL-C-sigma (below, C = 8 with AVX2, 16 with
//     AVX-512): one gather of C inputs + FMA advances C rows. A CSR row loop
//     (y[o] = b[o] + sum_k w_k x[col_k]) is bound by the mispredicted exit of
//     each short row (about 4 non-zeros a row at 1%), SELL has one exit per
//     C rows and pads little once rows are sorted by length (1608 entries
//     for 1570 non-zeros at 400 x 400, 1%, with C = 8);
//   - a tile of T examples stored feature-major (x[i * T + t]: feature i of
//     the tile's examples contiguous), CSR SpMM: for each row o the T
//     accumulators stay in registers (T = 64: eight AVX2 vectors) and each
//     non-zero adds w_k times the contiguous run x[col_k * T .. + T).
// Measured on the DeepFwFM shapes (400 x 390, 400 x 400; 2-core AMD EPYC
// Zen3, loaded; bench/inference_bench --sparse prints the table), one
// example, 1% / 10% / 30% density: CSR SpMV 2.2 / 16 / 41-54 us, SELL-8 1.5
// / 12-14 / 35-58 us, dense GEMV 11-13 us throughout, so one example runs
// sparse up to about 10% density (kSingleRowMaxDensity). A blocked format (8 x
// 1 blocks of outputs per input column, vectorised, zero inputs skipped) was
// measured too: magnitude pruning leaves isolated non-zeros, so a block
// holds 1.04 to 1.4 of its 8 slots, and its per-column loops mispredict like
// CSR's rows: 2.3 / 19-21 us, and at 30% it still loses to dense (24-30 us).
// Tiles of 64: CSR SpMM 9-11 us at 1%, 75-87 us at 10%, 260-285 us at 30%
// against 790-880 us dense (kTileMaxDensity 0.5).
//
// Every kernel writes its output and allocates nothing.
#pragma once

#include <cstdint>
#include <vector>

namespace ctrps::worker::serve {

// Examples per tile of the batched kernels.
inline constexpr int kSparseTile = 64;

struct CsrMatrix {
  int rows = 0, cols = 0;
  std::vector<uint32_t> row_starts;  // rows + 1, row_starts[0] = 0
  std::vector<uint32_t> col;         // nnz column indices, ascending within a row
  std::vector<float> values;         // nnz
  uint64_t nnz() const { return values.size(); }
  double density() const {
    return rows > 0 && cols > 0 ? static_cast<double>(nnz()) / (double(rows) * cols) : 0.0;
  }
  // The non-zeros of a rows x cols column-major matrix (exact zeros dropped;
  // -0.0 counts as zero).
  static CsrMatrix FromDense(const float* colmajor, int rows, int cols);
  // The dense column-major matrix (zeros where nothing is stored).
  std::vector<float> ToDense() const;
};

// y[o] = bias[o] + sum_k W(o, k) x[k], then max(., 0) if relu. bias may be null.
void SpMV(const CsrMatrix& w, const float* bias, const float* x, bool relu, float* y);

// Tile form: x is w.cols x kSparseTile feature-major, y w.rows x kSparseTile.
void SpMMTile(const CsrMatrix& w, const float* bias, const float* x, bool relu, float* y);

// Dense counterparts for the layers kept dense in a sparse model (W
// column-major rows x cols; the output layer, or layers too dense to gain).
void DenseMV(const float* w, int rows, int cols, const float* bias, const float* x, bool relu,
             float* y);
void DenseMMTile(const float* w, int rows, int cols, const float* bias, const float* x, bool relu,
                 float* y);

// Rows a slice of the single-example kernel advances at once: 16 where the
// build has AVX-512 (one zmm register of accumulators), else 8 (AVX2).
#if defined(__AVX512F__)
inline constexpr int kSellLanes = 16;
#else
inline constexpr int kSellLanes = 8;
#endif
// Floats of SellMV's scratch (and of a buffer holding its sorted output)
// for a matrix of `rows` rows: rows rounded up to kSellLanes.
inline int SellScratchFloats(int rows) { return (rows + kSellLanes - 1) / kSellLanes * kSellLanes; }

// Sliced ELL (SELL-C-sigma, C = kSellLanes), built from a CSR matrix for the
// single-example kernel: rows sorted by non-zero count (descending), each
// slice of C sorted rows padded to its longest row, stored interleaved so one
// C-wide load of inputs and one FMA advance all C rows. Few loop exits (one
// per slice), so few mispredicted branches, which dominate a CSR row loop at
// 1% density (about 4 non-zeros a row).
// The C inputs of a step are gathered by scalar loads at 16-bit column
// indices (read as 64-bit words of four) rather than by vgatherdps, which is
// the kernel's cost: 400 x 400 at 1%, 0.80 us with AVX2's gather
// instruction, 0.18 us with the gather replaced by a plain load (wrong
// values; the floor), 0.50 us with the scalar loads (loaded 2-core AMD
// EPYC). With AVX-512 (Zen 5), 16 lanes against 8 (scalar loads both):
// 373-485 ns against 408-567 ns at 1%, 672-860 against 727-1026 at 2%;
// the zmm gather instruction 599-638 ns at 1%.
// Matrices wider than 65536 columns keep 32-bit columns and the gather.
struct SellMatrix {
  int rows = 0, cols = 0;
  std::vector<uint32_t> slice_starts;  // slices + 1, in steps of C entries
  std::vector<uint16_t> col16;         // C per step (padding: column 0); cols <= 65536
  std::vector<int32_t> col;            // the same, 32-bit, for cols > 65536 only
  std::vector<float> values;           // C per step (padding: 0)
  std::vector<uint32_t> row_of;        // sorted position -> row (rows padded to C: rows)
  std::vector<float> bias;             // in sorted order (rows padded to C)
  static SellMatrix FromCsr(const CsrMatrix& m, const float* bias);
  uint64_t padded_entries() const { return values.size(); }
};
// y = W x + bias (the bias given to FromCsr), then ReLU if relu.
// scratch: SellScratchFloats(rows) floats. With y null the result stays in
// scratch in the sorted order (scratch[r] is row row_of[r]), for a next
// layer whose columns were renumbered to match (saves the scatter).
void SellMV(const SellMatrix& w, const float* x, bool relu, float* scratch, float* y);

// The blocked alternative measured against CSR (not used for serving):
// 8 x 1 blocks of consecutive output units per input column.
struct Blocked8Matrix {
  int rows = 0, cols = 0;  // rows padded to a multiple of 8 in the values
  std::vector<uint32_t> col_starts;  // cols + 1, into blocks
  std::vector<uint32_t> block_row;   // first output unit of each block (multiple of 8)
  std::vector<float> values;         // 8 per block
  static Blocked8Matrix FromDense(const float* colmajor, int rows, int cols);
};
// y (rows rounded up to 8) = W x + bias, relu; the scatter form of SpMV.
void Blocked8MV(const Blocked8Matrix& w, const float* bias, const float* x, bool relu, float* y);

}  // namespace ctrps::worker::serve
