// What a model costs to serve, for the compression trade-off (`ctrps
// compress --serving-cost`, drawn by `ctrps report`): its bundle's bytes
// on disk and the inference engine's single-row latency.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "launch/config_loader.h"
#include "ps/client.h"
#include "worker/data/batch.h"
#include "worker/nn/model.h"
#include "worker/train/trainer.h"

namespace ctrps::launch {

struct ServingCost {
  uint64_t bundle_bytes = 0;  // every file of the fp32 bundle
  int64_t rows_timed = 0;
  double row_p50_us = 0, row_p99_us = 0;  // one PredictRow, one thread
};

// Exports `model` (its rows read through `client`) as an fp32 bundle in
// `dir` (replaced, and removed again afterwards), opens it with the
// inference engine, and times PredictRow over the first `max_rows` rows of
// `data` (after one untimed pass over them). Reads the whole of each table
// into memory while exporting, as `ctrps export` does.
[[nodiscard]] StatusOr<ServingCost> MeasureServingCost(const LoadedConfig& c,
                                                       const worker::DatasetSchema& schema,
                                                       worker::Model* model,
                                                       ps::EmbeddingClient* client,
                                                       worker::BatchSource* data,
                                                       const std::string& dir, int64_t max_rows);

}  // namespace ctrps::launch
