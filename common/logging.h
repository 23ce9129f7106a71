// Logging setup. Modules log through spdlog's default logger; launch/ calls
// InitLogging once per process so every line carries the MPI rank.
#pragma once

#include <string>

#include <spdlog/spdlog.h>

namespace ctrps {

// level: "trace", "debug", "info", "warn", "error". rank < 0: single process.
void InitLogging(const std::string& level, int rank = -1);

}  // namespace ctrps
