// Reading back the metrics a run wrote (common/metrics_writer.h): one flat
// JSON object per line in RUN_DIR/metrics.jsonl, written by `ctrps train`
// and `ctrps compress`. The report (launch/report/report_page.h) is built
// from these.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ctrps::launch::report {

// One value of a metrics line: JSON number, string, true/false or null
// (the writer turns NaN and infinities into null).
struct MetricValue {
  enum class Kind { kNumber, kString, kBool, kNull };
  Kind kind = Kind::kNull;
  double number = 0;
  std::string text;
  bool flag = false;
};

// One metrics line: its fields by name, and the line as written.
struct MetricLine {
  std::map<std::string, MetricValue> fields;
  std::string raw;
  int line_number = 0;  // 1-based, in its file

  bool Has(const std::string& key) const { return fields.count(key) > 0; }
  // The number at `key`, or `fallback` when absent, null or not a number.
  double Number(const std::string& key, double fallback = 0) const;
  // The string at `key`, or "" when absent or not a string.
  std::string Text(const std::string& key) const;
  bool Flag(const std::string& key) const;
  // The "event" field ("train", "eval", "compress_model", ...).
  std::string event() const { return Text("event"); }
};

// Parses one flat JSON object (values: numbers, strings, true, false,
// null; no nesting). Errors say which column and what was expected.
[[nodiscard]] StatusOr<MetricLine> ParseMetricLine(std::string_view text);

// The metrics of one run.
struct RunMetrics {
  std::string name;  // shown in the report: the run directory's name
  std::string path;  // the metrics.jsonl read
  std::vector<MetricLine> lines;
  // Set when the last line was cut short (the process died mid-write) and
  // was left out.
  bool dropped_partial_last_line = false;

  // Lines whose "event" is `event`, in file order.
  std::vector<const MetricLine*> Events(const std::string& event) const;
  bool IsCompressRun() const { return !Events("compress_begin").empty(); }
};

// Reads RUN_DIR/metrics.jsonl (or the file itself when `path` is a file).
// A bad line is an error naming file, line and column; an unfinished last
// line (no newline at the end) is dropped, as the writer's crash contract
// allows. A file without a single line is an error too.
[[nodiscard]] StatusOr<RunMetrics> ReadRunMetrics(const std::string& path);

}  // namespace ctrps::launch::report
