// GenerateDataset: writes a synthetic Criteo- or Avazu-format dataset with a
// known click model, for testing the trainer end to end and checking what
// it learns against the truth.
//
// Output in options.out_dir:
//   train.txt valid.txt test.txt (Avazu: .csv)  the data, exact real layout
//   <data file>.truth  the true click probability of each data line: one
//                      decimal with 9 digits after the point ("0.213456789")
//                      per line, line n describing data line n; for Avazu
//                      line 1 is the header "click_prob", matching the
//                      data's header line
//   meta.json          the options, the planted model (noise fields, pairs,
//                      MLP fields, bias) and per split the realised CTR and
//                      the Bayes-optimal AUC and log loss
// Labels are drawn from the truth: label = 1 with probability p.
//
// Deterministic: the same options (threads aside) give byte-identical files.
// Rows are generated in fixed-size chunks, each from its own stream seeded by
// (seed, split, chunk index), by `threads` threads, and written in order.
// The library is built without FMA contraction, so native and portable
// builds agree too; across machines only libm's last-bit differences could
// matter, and only for a value sitting on a rounding boundary.
// Files are written under temporary names and renamed; meta.json is written
// last, so a directory with a meta.json holds a complete dataset.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/synth/planted_model.h"
#include "worker/synth/synth_options.h"

namespace ctrps::worker::synth {

// Rows per generation chunk. Part of the output's definition (each chunk has
// its own random stream): changing it changes every file.
inline constexpr int64_t kRowsPerChunk = 16384;
// Up to this many rows the Bayes AUC of a split uses every row; above it a
// fixed hash-chosen subsample of about this size (memory: 8 bytes per row).
inline constexpr int64_t kMaxExactAucRows = int64_t{1} << 24;

struct SplitReport {
  std::string name;        // "train", "valid", "test"
  std::string data_file;   // file name inside out_dir
  std::string truth_file;
  int64_t rows = 0;
  int64_t data_bytes = 0, truth_bytes = 0;
  int64_t clicks = 0;
  double mean_truth = 0;   // mean true click probability
  double bayes_auc = 0;    // AUC of the truth against the realised clicks
  int64_t bayes_auc_rows = 0;
  double bayes_logloss = 0;  // mean log loss of the truth, nats, all rows
  double bayes_normalized_entropy = 0;
  double seconds = 0;
};

struct SynthReport {
  std::string out_dir;
  std::vector<SplitReport> splits;
  double model_bias = 0;
  double model_logit_std = 0;
  OracleAucs oracle;
  double seconds = 0;  // whole run, model set-up included
  int64_t total_bytes() const;
  int64_t total_rows() const;
};

[[nodiscard]] StatusOr<SynthReport> GenerateDataset(const SynthOptions& options);

// True when options.out_dir holds a complete dataset made with the same
// SynthFingerprint: meta.json matches and every file has its recorded size.
// False (not an error) when there is no meta.json.
[[nodiscard]] StatusOr<bool> DatasetIsUpToDate(const SynthOptions& options);

// "train.txt" (Criteo) or "train.csv" (Avazu), and its truth file name.
std::string DataFileName(DataFormat format, const std::string& split);
std::string TruthFileName(const std::string& data_file);

}  // namespace ctrps::worker::synth
