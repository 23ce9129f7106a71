// ctrps report RUN_DIR... --out report.html [--title TEXT]
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "launch/commands.h"
#include "launch/report/report_page.h"

namespace ctrps::launch {
namespace {

const std::vector<FlagSpec> kReportFlags = {
    {"out", "FILE", "the HTML page to write (one self-contained file that opens offline)"},
    {"title", "TEXT", "the page's title (default: \"ctrps report: \" and the run names)"},
};

const char kSummary[] =
    "Makes one HTML page from the metrics of one or more runs (RUN_DIR: the output.dir of "
    "`ctrps train` or `ctrps compress`, holding metrics.jsonl; or the metrics file itself): "
    "training loss and validation AUC/logloss against steps and time, throughput, the per-step "
    "time split, embedding table counters, checkpoints, and for compression runs the "
    "before/after table and the AUC/size trade-off. Several runs are overlaid.\n"
    "  ctrps report RUN_DIR [RUN_DIR ...] --out report.html";

int Usage(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "ctrps report: %s\n\n", why.c_str());
  std::fputs(FlagsUsage("report", kSummary, kReportFlags).c_str(), why.empty() ? stdout : stderr);
  return why.empty() ? 0 : 2;
}

std::string NowUtc() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

}  // namespace

std::string ReportCommandFor(const std::string& run_dir) {
  // Quoted for a shell when the path needs it.
  auto quoted = [](const std::string& p) {
    if (p.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+:=@%") ==
        std::string::npos)
      return p;
    std::string q = "'";
    for (char c : p) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  return "ctrps report " + quoted(run_dir) + " --out " + quoted(run_dir + "/report.html");
}

int RunReport(const std::vector<std::string>& args) {
  // Run directories are the arguments that are neither flags nor flag values.
  std::vector<std::string> flag_args, dirs;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("-", 0) != 0) {
      dirs.push_back(a);
      continue;
    }
    flag_args.push_back(a);
    if ((a == "--out" || a == "--title") && i + 1 < args.size()) flag_args.push_back(args[++i]);
  }
  auto flags = Flags::Parse(flag_args, kReportFlags);
  if (!flags.ok()) return Usage(flags.status().message());
  if (flags->help()) return Usage("");
  if (dirs.empty()) return Usage("give at least one run directory");
  if (!flags->Has("out") || flags->Get("out").empty()) return Usage("--out FILE is required");

  std::vector<report::RunMetrics> runs;
  for (const std::string& d : dirs) {
    auto run = report::ReadRunMetrics(d);
    if (!run.ok()) {
      std::fprintf(stderr, "ctrps report: %s\n", run.status().message().c_str());
      return 1;
    }
    // Two runs of the same directory name are told apart by their paths.
    for (const report::RunMetrics& other : runs)
      if (other.name == run->name) run->name = d;
    if (run->dropped_partial_last_line)
      std::fprintf(stderr, "ctrps report: %s: its last line is unfinished (the run is still "
                           "writing, or died mid-line); left out\n", run->path.c_str());
    runs.push_back(std::move(*run));
  }
  report::ReportOptions o;
  o.generated_at = NowUtc();
  if (flags->Has("title")) {
    o.title = flags->Get("title");
  } else {
    o.title = "ctrps report:";
    for (size_t i = 0; i < runs.size(); ++i) o.title += (i ? ", " : " ") + runs[i].name;
  }
  const std::string out = flags->Get("out");
  const std::string page = report::BuildReportPage(runs, o);
  // Written beside the target and renamed: a reader never sees half a page.
  const std::string tmp = out + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(page.data(), static_cast<std::streamsize>(page.size()));
    f.close();
    if (!f) {
      std::fprintf(stderr, "ctrps report: cannot write %s\n", tmp.c_str());
      return 1;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, out, ec);
  if (ec) {
    std::fprintf(stderr, "ctrps report: cannot rename %s to %s: %s\n", tmp.c_str(), out.c_str(),
                 ec.message().c_str());
    return 1;
  }
  size_t lines = 0;
  for (const auto& r : runs) lines += r.lines.size();
  std::printf("ctrps report: %s (%zu run%s, %zu metrics lines, %zu KiB)\n", out.c_str(),
              runs.size(), runs.size() == 1 ? "" : "s", lines, page.size() / 1024);
  return 0;
}

}  // namespace ctrps::launch
