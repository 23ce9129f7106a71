// Loading and validating the job config (protobuf text format), with
// command-line overrides. Errors name the file, line and field.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "launch/config.pb.h"

namespace ctrps::launch {

class LoadedConfig {
 public:
  LoadedConfig();
  ~LoadedConfig();
  LoadedConfig(LoadedConfig&&) noexcept;
  LoadedConfig& operator=(LoadedConfig&&) noexcept;

  config::JobConfig job;
  std::string path;  // the config file ("" when built from defaults only)

  // Where a field's value came from, for error messages:
  // "cfg.pbtxt:12:3 (model.embedding_dim)", "--set model.embedding_dim",
  // or "model.embedding_dim (default)".
  std::string Where(const std::string& field_path) const;

 private:
  friend StatusOr<LoadedConfig> LoadConfig(const std::string&, const std::vector<std::string>&);
  friend StatusOr<LoadedConfig> ParseConfigText(const std::string&, const std::string&,
                                                const std::vector<std::string>&);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads `path` (protobuf text format) and applies `overrides`, each
// "field.path=value" (repeated scalar fields take a comma-separated list).
// Unknown fields, wrong types, unparsable values: InvalidArgument naming
// file:line:column or the --set.
StatusOr<LoadedConfig> LoadConfig(const std::string& path,
                                  const std::vector<std::string>& overrides);
// As LoadConfig, from text already in memory; `name` is used in messages.
StatusOr<LoadedConfig> ParseConfigText(const std::string& text, const std::string& name,
                                       const std::vector<std::string>& overrides);

// Range and consistency checks (values out of range, missing required
// values for `command`: "train", "eval"). Messages name the field and where
// its value came from.
Status ValidateConfig(const LoadedConfig& config, const std::string& command);

// The config as protobuf text, for saving beside outputs.
std::string ConfigToText(const config::JobConfig& job);

}  // namespace ctrps::launch
