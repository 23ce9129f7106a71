// meta.json of a synthetic dataset: what was planted and what it achieved.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "worker/synth/generator.h"
#include "worker/synth/planted_model.h"

namespace ctrps::worker::synth {

inline constexpr char kMetaFileName[] = "meta.json";

// The whole document: options and their fingerprint ("options_key"),
// fields (cardinality, missing probability, noise flag, importance),
// noise fields, the planted model (bias, term stds, interaction pairs with
// weights, MLP fields), the truth file format, per split results, and
// "files": {name: bytes} for every data and truth file.
std::string BuildMetaJson(const SynthOptions& options, const PlantedModel& model,
                          const SynthReport& report);

// The parts DatasetIsUpToDate reads back.
struct MetaSummary {
  std::string options_key;
  std::vector<std::pair<std::string, int64_t>> file_bytes;
};

// Corruption when the keys are missing or malformed.
[[nodiscard]] StatusOr<MetaSummary> ParseMetaSummary(std::string_view json);

}  // namespace ctrps::worker::synth
