// Reading the .truth side files of a synthetic dataset (format: see
// generator.h) and scoring the truth against the data's realised clicks:
// the Bayes-optimal AUC and log loss, the ceiling any model trained on the
// data can reach in expectation.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "worker/eval/eval_accumulator.h"

namespace ctrps::worker::synth {

inline constexpr char kTruthHeader[] = "click_prob";

// All probabilities of a truth file, in line order (a first line
// "click_prob", the Avazu header, is skipped). InvalidArgument naming
// "path:line" for a line that is not a probability in [0, 1]; IOError when
// the file cannot be read.
[[nodiscard]] StatusOr<std::vector<float>> ReadTruthFile(const std::string& path);

// Scores the truth file against the labels of its data file (Criteo or
// Avazu, told apart by Avazu's "id,click," header). Both files are streamed;
// 8 bytes per row are kept for the exact AUC. Errors name "file:line": a
// malformed probability or label, a header in one file but not the other,
// or line counts that differ.
[[nodiscard]] StatusOr<EvalMetrics> EvaluateTruth(const std::string& truth_path,
                                                  const std::string& data_path);

// "dir/test.txt.truth" -> "dir/test.txt"; InvalidArgument when the name does
// not end in ".truth".
[[nodiscard]] StatusOr<std::string> DataPathForTruth(const std::string& truth_path);

}  // namespace ctrps::worker::synth
