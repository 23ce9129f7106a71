// Saving and loading a trained model (the simple format of single-process
// training; full checkpoints and serving bundles come with their own
// formats). A saved model is a directory:
//
//   MANIFEST          text, written last (so a model dir is whole or absent):
//                       ctrps-model 1
//                       dense <floats> <crc32>
//                       table <id> <width> <rows> <crc32>     (one per table)
//                       param <name> <rows> <cols> <offset>   (one per dense param)
//   config.pbtxt      the job config that built the model (written by launch)
//   dense.bin         the model's dense parameters, float32 little-endian
//   table_<id>.bin    rows of table <id>: per row a uint64 key then <width>
//                     float32 values (little-endian), sorted by key
//
// The crc32 (zlib) of each binary file lets a loader detect truncation and
// bit flips.
#pragma once

#include <string>

#include "common/status.h"
#include "ps/client.h"
#include "worker/nn/model.h"

namespace ctrps::worker {

// Writes model + tables into `dir` (via dir.tmp, renamed into place; an
// existing dir is replaced). Extra files already in dir.tmp... are not kept.
// `extra_files`: name -> contents written beside the model (e.g. config.pbtxt).
[[nodiscard]] Status SaveModel(const std::string& dir, Model* model,
                               ps::EmbeddingClient* client,
                               const std::vector<std::pair<std::string, std::string>>& extra_files);

// Loads a model saved by SaveModel into `model` (which must have the same
// structure) and its rows into `client` (tables already declared).
[[nodiscard]] Status LoadModel(const std::string& dir, Model* model, ps::EmbeddingClient* client);

// Reads a file's whole contents.
StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace ctrps::worker
