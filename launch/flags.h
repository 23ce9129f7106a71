// Command-line flags of the ctrps subcommands: --name value, --name=value,
// and repeatable flags (--set). Unknown flags and missing values are errors.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace ctrps::launch {

struct FlagSpec {
  std::string name;        // without dashes, e.g. "config"
  std::string value_name;  // e.g. "FILE"; empty for a boolean switch
  std::string help;
  bool repeated = false;
};

class Flags {
 public:
  // Parses args (after the subcommand) against specs; --help is always known.
  static StatusOr<Flags> Parse(const std::vector<std::string>& args,
                               const std::vector<FlagSpec>& specs);
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> GetAll(const std::string& name) const;
  StatusOr<int64_t> GetInt(const std::string& name, int64_t fallback) const;
  bool help() const { return help_; }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  bool help_ = false;
};

// "Usage: ctrps CMD ..." with one line per flag.
std::string FlagsUsage(const std::string& command, const std::string& summary,
                       const std::vector<FlagSpec>& specs);

}  // namespace ctrps::launch
