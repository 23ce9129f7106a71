// The ctrps subcommands. Each returns the process exit code: 0 success,
// 1 failure (reported on stderr), 2 bad usage.
#pragma once

#include <string>
#include <vector>

#include "launch/flags.h"

namespace ctrps::launch {

int RunTrain(const std::vector<std::string>& args);
int RunEval(const std::vector<std::string>& args);
int RunExport(const std::vector<std::string>& args);
int RunPredict(const std::vector<std::string>& args);
int RunCkpt(const std::vector<std::string>& args);
int RunCompress(const std::vector<std::string>& args);
int RunCompactData(const std::vector<std::string>& args);
int RunReport(const std::vector<std::string>& args);

// "ctrps report DIR --out DIR/report.html": the command that makes the report
// of a run, printed by train and compress at their end.
std::string ReportCommandFor(const std::string& run_dir);

}  // namespace ctrps::launch
