// `ctrps gen-data`: writes a synthetic Criteo/Avazu dataset with a planted
// click model (worker/synth), and the truth report `ctrps eval --truth`
// prints for it.
#pragma once

#include <string>
#include <vector>

namespace ctrps::launch {

// Runs `ctrps gen-data <args>` (args exclude "gen-data" itself). Returns
// the process exit code: 0 on success (also when an up-to-date dataset is
// skipped, or for --help), 2 for a usage error (unknown flag, bad or missing
// value), 1 when generation fails.
int RunGenData(const std::vector<std::string>& args);

// The --help text.
std::string GenDataUsage();

// Prints the Bayes-optimal metrics of one split: the truth file scored
// against its data file's clicks. data_path empty: the truth path without
// its ".truth" suffix. Returns 0, or 1 after printing the error.
int RunTruthReport(const std::string& truth_path, const std::string& data_path = "");

}  // namespace ctrps::launch
