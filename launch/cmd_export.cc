// ctrps export --checkpoint DIR --out BUNDLE [--format native|onnx] [--dtype fp32|fp16|int8]
//              [--keys packed|u64] [--unknown-keys init|zero]
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>

#include "common/logging.h"
#include "launch/commands.h"
#include "launch/job_setup.h"
#include "launch/saved_model.h"
#include "worker/serve/exporter.h"
#include "worker/serve/onnx_export.h"
#include "worker/train/model_io.h"

namespace ctrps::launch {
namespace {

const std::vector<FlagSpec> kExportFlags = {
    {"checkpoint", "DIR",
     "the trained model to export: a model dir saved by `ctrps train` "
     "(checkpoint dirs once they exist)"},
    {"model", "DIR", "alias of --checkpoint"},
    {"out", "DIR", "output directory (replaced if it exists)"},
    {"format", "native|onnx",
     "native: a ctrps serving bundle (default); onnx: model.onnx plus "
     "vocab.bin mapping keys to row indices"},
    {"dtype", "fp32|fp16|int8",
     "native format: element type of the embedding tables (default fp32)"},
    {"keys", "packed|u64",
     "native format: how table files store their keys: packed (about 5 "
     "bytes a key instead of 8 for million-row tables, bundle format 4; "
     "default) or u64 (8 bytes a key, readable by builds before format 4)"},
    {"unknown-keys", "init|zero",
     "native format: rows of keys the model never trained: init = the "
     "key-seeded rows training would create, so the bundle scores "
     "exactly as `ctrps eval` of the model (default); zero = all-zero "
     "rows (what the ONNX export does)"},
    {"set", "FIELD=VALUE", "override a field of the model's config", true},
};

Status Export(const LoadedConfig& c, const std::string& src, const Flags& flags) {
  const auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(SavedModel saved, LoadExportSource(c, src));
  const std::string out = flags.Get("out");
  const std::string format = flags.Get("format", "native");
  if (format == "native") {
    worker::serve::ExportOptions o;
    o.out_dir = out;
    ASSIGN_OR_RETURN(o.table_dtype, worker::serve::ParseTableDtype(flags.Get("dtype", "fp32")));
    o.source = src;
    const std::string keys = flags.Get("keys", "packed");
    if (keys == "u64")
      o.table_keys = worker::serve::KeyEncoding::kU64;
    else if (keys != "packed")
      return Status::InvalidArgument("--keys " + keys + ": expected packed or u64");
    const std::string unknown = flags.Get("unknown-keys", "init");
    if (unknown == "init")
      o.unknown_keys = saved.init_rows;
    else if (unknown != "zero")
      return Status::InvalidArgument("--unknown-keys " + unknown + ": expected init or zero");
    o.extra_files.emplace_back("config.pbtxt", ConfigToText(c.job));
    RETURN_IF_ERROR_CTX(
        worker::serve::ExportBundle(saved.model.get(), saved.client.get(), saved.data, o),
        "exporting to " + out);
  } else if (format == "onnx") {
    if (flags.Has("dtype") && flags.Get("dtype") != "fp32")
      return Status::InvalidArgument(
          "--dtype applies to the native format only (ONNX tables are fp32)");
    if (flags.Has("keys"))
      return Status::InvalidArgument(
          "--keys applies to the native format only (ONNX keys live in vocab.bin)");
    if (flags.Has("unknown-keys") && flags.Get("unknown-keys") != "zero")
      return Status::InvalidArgument(
          "--unknown-keys: ONNX graphs always read unknown keys as zero "
          "rows (row index 0)");
    worker::serve::OnnxExportOptions o;
    o.out_dir = out;
    o.source = src;
    RETURN_IF_ERROR_CTX(
        worker::serve::ExportOnnx(saved.model.get(), saved.client.get(), saved.data, o),
        "exporting ONNX to " + out);
  } else {
    return Status::InvalidArgument("--format " + format + ": expected native or onnx");
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("ctrps export: %s model %s -> %s (%s) in %.2fs\n",
              worker::ModelTypeName(saved.model->options().type), src.c_str(), out.c_str(),
              format.c_str(), s);
  return Status::OK();
}

}  // namespace

int RunExport(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, kExportFlags);
  const bool has_src = flags.ok() && (flags->Has("checkpoint") || flags->Has("model"));
  if (!flags.ok() || flags->help() || !has_src || !flags->Has("out")) {
    if (!flags.ok())
      std::fprintf(stderr, "ctrps export: %s\n\n", flags.status().message().c_str());
    else if (!flags->help())
      std::fprintf(stderr, "ctrps export: --checkpoint (or --model) and --out are required\n\n");
    std::fputs(FlagsUsage("export", "Exports a trained model as a serving bundle or an ONNX graph.",
                          kExportFlags)
                   .c_str(),
               flags.ok() && flags->help() ? stdout : stderr);
    return flags.ok() && flags->help() ? 0 : 2;
  }
  const std::string src = flags->Has("checkpoint") ? flags->Get("checkpoint") : flags->Get("model");
  auto config = LoadConfig(src + "/config.pbtxt", flags->GetAll("set"));
  if (!config.ok()) {
    std::fprintf(stderr, "ctrps export: %s\n", config.status().message().c_str());
    return 2;
  }
  Status s = ValidateConfig(*config, "eval");
  if (!s.ok()) {
    std::fprintf(stderr, "ctrps export: bad config: %s\n", s.message().c_str());
    return 2;
  }
  InitLogging(config->job.output().log_level());
  s = Export(*config, src, *flags);
  if (!s.ok()) {
    spdlog::error("export failed: {}", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace ctrps::launch
