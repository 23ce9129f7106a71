#include "launch/report/report_page.h"

#include "common/metrics_writer.h"
#include "launch/report/report_assets.h"

namespace ctrps::launch::report {
namespace {

const char kStyle[] = R"css(
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 17px; margin-top: 28px; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
tr.base td { font-weight: 600; background: #fafaf0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
.box { border: 1px solid #e4e4e4; border-radius: 4px; padding: 8px; }
.box h3 { font-size: 14px; margin: 0 0 4px 0; }
.box .chart { position: relative; height: 300px; }
.box.empty .chart { display: none; } .note { color: #888; font-style: italic; }
.warn { color: #a40; }
)css";

// A chart's place on the page: title, canvas, and a note shown instead
// when the runs have no data for it (report.js fills the note).
std::string ChartBox(const std::string& id, const std::string& title) {
  return "<div class=\"box\" id=\"box-" + id + "\"><h3>" + HtmlEscape(title) +
         "</h3><div class=\"chart\"><canvas id=\"chart-" + id +
         "\"></canvas></div><p class=\"note\"></p></div>\n";
}

// The runs' metrics lines as a JSON array for report.js, safe inside a
// <script> element ("</" can never close it).
std::string RunsJson(const std::vector<RunMetrics>& runs) {
  std::string out = "[";
  for (size_t r = 0; r < runs.size(); ++r) {
    const RunMetrics& run = runs[r];
    if (r > 0) out += ",\n";
    out += "{\"name\":\"" + JsonEscape(run.name) + "\",\"path\":\"" + JsonEscape(run.path) +
           "\",\"compress\":" + (run.IsCompressRun() ? "true" : "false") + ",\"events\":[";
    for (size_t i = 0; i < run.lines.size(); ++i) {
      if (i > 0) out += ",\n";
      out += run.lines[i].raw;
    }
    out += "]}";
  }
  out += "]";
  std::string safe;
  safe.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    // "<\/" is the same JSON string; "<!--" is kept out too.
    if (out[i] == '<' && i + 1 < out.size() && (out[i + 1] == '/' || out[i + 1] == '!')) {
      safe += "\\u003c";
      continue;
    }
    safe += out[i];
  }
  return safe;
}

}  // namespace

std::string HtmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string BuildReportPage(const std::vector<RunMetrics>& runs, const ReportOptions& options) {
  bool compress = false;
  for (const RunMetrics& r : runs) compress = compress || r.IsCompressRun();
  std::string page;
  page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
          HtmlEscape(options.title) + "</title>\n<style>" + kStyle + "</style>\n";
  // Errors are collected from the very start, before any other script, and
  // written into the page (#ctrps-errors) for a headless check.
  page += "<script>window.ctrpsErrors = [];\n"
          "window.addEventListener('error', e => window.ctrpsErrors.push(String(e.message)));\n"
          "(function () { const f = console.error; console.error = function () {\n"
          "  window.ctrpsErrors.push(Array.from(arguments).join(' ')); f.apply(console, arguments); };\n"
          "})();</script>\n</head>\n<body>\n";
  page += "<h1>" + HtmlEscape(options.title) + "</h1>\n<p class=\"sub\">" +
          std::to_string(runs.size()) + (runs.size() == 1 ? " run" : " runs") +
          (options.generated_at.empty() ? "" : ", made " + HtmlEscape(options.generated_at)) +
          " by <code>ctrps report</code></p>\n";
  page += RunsTable(runs);

  page += "<h2>Training</h2>\n<div class=\"grid\">\n";
  page += ChartBox("loss_step", "Training loss against steps");
  page += ChartBox("loss_time", "Training loss against time");
  page += ChartBox("auc_step", "Validation AUC against steps");
  page += ChartBox("auc_time", "Validation AUC against time");
  page += ChartBox("logloss_step", "Validation logloss against steps");
  page += ChartBox("logloss_time", "Validation logloss against time");
  page += "</div>\n";

  page += "<h2>Speed</h2>\n<div class=\"grid\">\n";
  page += ChartBox("throughput", "Throughput (samples/s since the start)");
  page += ChartBox("split", "Per-step time split (ms per step, worker 0)");
  page += ChartBox("worker_split", "Per-step time split of each worker (distributed runs)");
  page += "</div>\n";
  page += TimeSplitTable(runs);
  page += EmbeddingTablesTable(runs);
  page += CheckpointsTable(runs);

  if (compress) {
    page += "<h2>Compression</h2>\n<div class=\"grid\">\n";
    page += ChartBox("tradeoff_bytes", "AUC against model bytes (star: uncompressed; triangle: "
                                       "before fine-tuning)");
    page += ChartBox("tradeoff_latency", "AUC against single-row latency");
    page += "</div>\n";
    page += CompressionTables(runs);
  }
  bool umec = false, deeplight = false;
  for (const RunMetrics& r : runs) {
    umec = umec || !r.Events("umec").empty() || !r.Events("compress_umec").empty() ||
           !r.Events("umec_removed").empty();
    deeplight = deeplight || !r.Events("prune").empty();
  }
  if (umec) {
    page += "<h2>UMEC: fields and neurons under a FLOPs budget</h2>\n<div class=\"grid\">\n";
    page += ChartBox("umec_resource", "MLP multiply-adds of the selection (fraction of dense) "
                                      "against steps, and the budget");
    page += ChartBox("umec_dropped", "Groups dropped per layer (ceil s) against steps");
    page += ChartBox("umec_duals", "Multipliers against steps (z: budget; y: per layer)");
    page += "</div>\n";
    page += UmecTable(runs);
  }
  if (deeplight) {
    page += "<h2>DeepLight: structured pruning</h2>\n<div class=\"grid\">\n";
    page += ChartBox("deeplight_sparsity", "Sparsity against steps (the schedule's target and "
                                           "what each part reached)");
    page += "</div>\n";
    page += DeepLightTable(runs);
  }

  // What every chart holds once drawn (report.js), and the errors seen.
  page += "<pre id=\"ctrps-rendered\" hidden></pre>\n";
  page += "<script type=\"application/json\" id=\"ctrps-data\">" + RunsJson(runs) + "</script>\n";
  page += "<script>\n";
  page += ChartJsSource();
  page += "\n</script>\n<script>\n";
  page += ReportScriptSource();
  page += "\n</script>\n";
  page += "<pre id=\"ctrps-errors\" hidden></pre>\n"
          "<script>document.getElementById('ctrps-errors').textContent = "
          "JSON.stringify(window.ctrpsErrors);</script>\n";
  page += "</body>\n</html>\n";
  return page;
}

}  // namespace ctrps::launch::report
