// A change of basis of a table's rows, applied where the rows live (a
// compression stage's table rewrite, COMPRESSION.md section 2):
//   new[0, keep)          = old[0, keep)                    (e.g. a linear weight)
//   new[keep + j], j < k  = sum_i (old[keep + i] - mean[i]) basis(i, j),  i < in_dim
// computed in double per row, so every layout gives the same bits.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "ps/client.h"

namespace ctrps::ps {

struct RowBasisChange {
  int keep_prefix = 0;
  int in_dim = 0;               // old width = keep_prefix + in_dim
  int out_dim = 0;              // new width = keep_prefix + out_dim
  std::vector<double> mean;     // in_dim
  std::vector<double> basis;    // in_dim x out_dim, column-major

  // OK if the sizes agree with each other and with the two widths.
  [[nodiscard]] Status Validate(int old_width, int new_width) const;
  void Apply(const float* old_row, float* new_row) const;
};

// The kRewrite request's blob: the new TableConfig, the change, the
// scratch directory. Decode checks every size against the bytes.
std::string EncodeRewrite(const TableConfig& config, const RowBasisChange& change,
                          const std::string& scratch_dir);
[[nodiscard]] Status DecodeRewrite(const char* blob, size_t bytes, TableConfig* config,
                                   RowBasisChange* change, std::string* scratch_dir);

}  // namespace ctrps::ps
