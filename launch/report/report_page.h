// The report of one or more runs (`ctrps report`): one self-contained HTML
// page, its charting library and data inlined, that opens offline. Tables
// (runs, time split, embedding tables, checkpoints, compression before/
// after, UMEC's selections, DeepLight's pruning) are written here; the charts
// (loss, validation AUC/logloss against steps and time, throughput, per-step
// time split, per-worker split, the compression trade-off plots, UMEC's
// resource, dropped groups and multipliers, DeepLight's sparsity) are drawn
// in the page by report.js from the runs' metrics lines, all runs overlaid.
#pragma once

#include <string>
#include <vector>

#include "launch/report/metrics_log.h"

namespace ctrps::launch::report {

struct ReportOptions {
  std::string title = "ctrps report";
  std::string generated_at;  // shown in the header, e.g. "2026-12-07 03:10 UTC"
};

// The whole page. Runs are shown in the order given.
std::string BuildReportPage(const std::vector<RunMetrics>& runs, const ReportOptions& options);

// The HTML tables of the page (report_tables.cc), each a <section> or ""
// when no run has the metrics it shows.
std::string RunsTable(const std::vector<RunMetrics>& runs);
std::string TimeSplitTable(const std::vector<RunMetrics>& runs);
std::string EmbeddingTablesTable(const std::vector<RunMetrics>& runs);
std::string CheckpointsTable(const std::vector<RunMetrics>& runs);
std::string CompressionTables(const std::vector<RunMetrics>& runs);
// UMEC's selections ("compress_umec" of a compress stage, "umec_removed" of
// ctrps train) and DeepLight's last pruning per run ("prune" lines).
std::string UmecTable(const std::vector<RunMetrics>& runs);
std::string DeepLightTable(const std::vector<RunMetrics>& runs);

// Text made safe inside HTML elements and attributes.
std::string HtmlEscape(const std::string& s);

}  // namespace ctrps::launch::report
