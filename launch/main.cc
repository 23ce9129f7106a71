// The ctrps binary: `ctrps <command> [flags]`. This is the one place that
// turns a failure into a log line and an exit code.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "common/logging.h"
#include "launch/cmd_gen_data.h"
#include "launch/commands.h"

namespace {

const char kUsage[] =
    "ctrps: distributed parameter-server trainer for CTR models\n"
    "\n"
    "Usage: ctrps <command> [flags]     (ctrps <command> --help for its flags)\n"
    "\n"
    "Commands:\n"
    "  train      train a model:   ctrps train --config FILE [--set field.path=value ...]\n"
    "                              [--resume CKPT|DIR]\n"
    "  eval       evaluate a model: ctrps eval --model DIR|BUNDLE --data FILE [--truth FILE]\n"
    "  export     export a model:  ctrps export --checkpoint DIR --out BUNDLE [--format onnx]\n"
    "                              [--dtype fp32|fp16|int8] [--unknown-keys init|zero]\n"
    "  predict    score raw data:  ctrps predict --model BUNDLE --data FILE [--out FILE]\n"
    "  ckpt       checkpoints:     ctrps ckpt list DIR | inspect CKPT | verify CKPT|DIR\n"
    "  compress   compress a model: ctrps compress --config FILE --from MODEL|CKPT\n"
    "  compact-data  data without a model's dropped fields: ctrps compact-data --model DIR\n"
    "                              --in FILE --out FILE\n"
    "  gen-data   write synthetic Criteo/Avazu data from a planted click model\n"
    "  report     one HTML page of runs' metrics: ctrps report RUN_DIR... --out FILE\n"
    "  help       this text\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (cmd == "train") return ctrps::launch::RunTrain(args);
    if (cmd == "eval") return ctrps::launch::RunEval(args);
    if (cmd == "export") return ctrps::launch::RunExport(args);
    if (cmd == "predict") return ctrps::launch::RunPredict(args);
    if (cmd == "ckpt") return ctrps::launch::RunCkpt(args);
    if (cmd == "compress") return ctrps::launch::RunCompress(args);
    if (cmd == "gen-data") return ctrps::launch::RunGenData(args);
    if (cmd == "compact-data") return ctrps::launch::RunCompactData(args);
    if (cmd == "report") return ctrps::launch::RunReport(args);
    std::fprintf(stderr, "ctrps: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ctrps %s: fatal: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
