// The HTML tables of a report page: the numbers behind the charts, readable
// without a browser's scripts.
#include <cstdio>
#include <map>

#include "launch/report/report_page.h"

namespace ctrps::launch::report {
namespace {

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// An integer count with thin groups: 1234567 -> "1 234 567".
std::string Count(double v) {
  const long long n = static_cast<long long>(v);
  std::string s = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += "&#8239;";
    out += s[i];
  }
  return (n < 0 ? "-" : "") + out;
}

std::string Bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return Fixed(b, u == 0 ? 0 : 2) + " " + units[u];
}

// A cell: the formatted field, or "-" when the line does not have it.
std::string Cell(const MetricLine* l, const std::string& key, int digits) {
  if (!l || !l->Has(key) || l->fields.at(key).kind != MetricValue::Kind::kNumber) return "<td>-</td>";
  return "<td>" + (digits < 0 ? Count(l->Number(key)) : Fixed(l->Number(key), digits)) + "</td>";
}

std::string Head(const std::vector<std::string>& names) {
  std::string out = "<tr>";
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "<th class=\"l\">" : "<th>") + names[i] + "</th>";
  return out + "</tr>\n";
}

std::string NameCell(const std::string& s) { return "<td class=\"l\">" + HtmlEscape(s) + "</td>"; }

const MetricLine* Last(const std::vector<const MetricLine*>& v) { return v.empty() ? nullptr : v.back(); }

// The last line of `event` whose field `key` equals `value`.
const MetricLine* LastWhere(const RunMetrics& run, const std::string& event, const std::string& key,
                            const std::string& value) {
  const MetricLine* found = nullptr;
  for (const MetricLine* l : run.Events(event))
    if (l->Text(key) == value) found = l;
  return found;
}

const char* const kPhases[] = {"read", "pull", "compute", "allreduce", "push", "wait"};

}  // namespace

std::string RunsTable(const std::vector<RunMetrics>& runs) {
  std::string out = "<h2>Runs</h2>\n<table id=\"runs\">\n" +
                    Head({"run", "kind", "steps", "samples", "train s", "samples/s",
                          "last train loss", "valid AUC", "valid logloss", "test AUC",
                          "test logloss", "peak RSS", "metrics"});
  std::string warnings;
  for (const RunMetrics& run : runs) {
    const MetricLine* done = Last(run.Events("train_done"));
    const MetricLine* loss = nullptr;
    for (const MetricLine* l : run.Events("train"))
      if (l->Has("loss")) loss = l;
    const MetricLine* valid = LastWhere(run, "eval", "split", "valid");
    const MetricLine* test = LastWhere(run, "eval", "split", "test");
    const MetricLine* mem = Last(run.Events("memory"));
    if (!mem) mem = Last(run.Events("compress_done"));
    out += "<tr>" + NameCell(run.name) + NameCell(run.IsCompressRun() ? "compress" : "train") +
           Cell(done, "steps", -1) + Cell(done, "samples", -1) + Cell(done, "seconds", 1) +
           Cell(done, "samples_per_s", -1) + Cell(loss, "loss", 5) + Cell(valid, "auc", 5) +
           Cell(valid, "logloss", 5) + Cell(test, "auc", 5) + Cell(test, "logloss", 5) +
           (mem && mem->Has("peak_rss_bytes") ? "<td>" + Bytes(mem->Number("peak_rss_bytes")) + "</td>"
                                              : "<td>-</td>") +
           NameCell(run.path) + "</tr>\n";
    if (run.dropped_partial_last_line)
      warnings += "<p class=\"warn\">" + HtmlEscape(run.path) +
                  ": the last line was cut short (the run was still writing, or died) and is "
                  "left out.</p>\n";
  }
  return out + "</table>\n" + warnings;
}

std::string TimeSplitTable(const std::vector<RunMetrics>& runs) {
  std::vector<std::string> head = {"run", "steps", "seconds"};
  for (const char* p : kPhases) head.push_back(std::string(p) + " ms/step");
  std::string rows;
  for (const RunMetrics& run : runs) {
    auto row = [&](const std::string& name, const MetricLine* l, const std::string& mark) {
      const double steps = l->Number("steps");
      std::string r = "<tr" + mark + ">" + NameCell(name) + Cell(l, "steps", -1) + Cell(l, "seconds", 1);
      for (const char* p : kPhases) {
        const std::string key = std::string(p) + "_s";
        r += l->Has(key) && steps > 0 ? "<td>" + Fixed(1000 * l->Number(key) / steps, 3) + "</td>"
                                      : "<td>-</td>";
      }
      return r + "</tr>\n";
    };
    const auto done = run.Events("train_done");
    for (size_t i = 0; i < done.size(); ++i)
      rows += row(done.size() == 1 ? run.name : run.name + " #" + std::to_string(i + 1), done[i], "");
    for (const MetricLine* w : run.Events("worker_split")) {
      const bool slowest = w->Flag("slowest");
      rows += row(run.name + ": worker " + Count(w->Number("worker")) + " (rank " +
                      Count(w->Number("rank")) + ")" + (slowest ? " — slowest" : ""),
                  w, slowest ? " class=\"base\"" : "");
    }
  }
  if (rows.empty()) return "";
  return "<h3>Time split</h3>\n<p class=\"sub\">read includes waiting for the parser; wait is "
         "waiting for a prefetched pull; a worker's own work is read + compute, the rest is "
         "waiting on servers and peers. The slowest worker has the most own work.</p>\n"
         "<table id=\"time-split\">\n" + Head(head) + rows + "</table>\n";
}

std::string EmbeddingTablesTable(const std::vector<RunMetrics>& runs) {
  std::string rows;
  for (const RunMetrics& run : runs) {
    // The counters of the last report (train writes them once, at the end).
    const auto tables = run.Events("table");
    if (tables.empty()) continue;
    const double step = tables.back()->Number("step");
    auto row = [&](const std::string& mark, const std::string& table, const MetricLine* t) {
      const double hits = t->Number("dram_hits"), misses = t->Number("dram_misses");
      return "<tr" + mark + ">" + NameCell(run.name) + table + Cell(t, "rows", -1) +
             "<td>" + Bytes(t->Number("bytes")) + "</td>" + Cell(t, "lookups", -1) +
             Cell(t, "created", -1) + Cell(t, "dram_rows", -1) +
             (hits + misses > 0 ? "<td>" + Fixed(hits / (hits + misses), 4) + "</td>" : "<td>-</td>") +
             Cell(t, "dram_evictions", -1) + Cell(t, "writebacks", -1) + Cell(t, "admitted", -1) +
             Cell(t, "rejected_lookups", -1) + Cell(t, "dropped_updates", -1) +
             Cell(t, "evicted_stale", -1) + Cell(t, "evicted_rare", -1) + "</tr>\n";
    };
    // The sum over the tables first, then each table.
    MetricLine total;
    int n = 0;
    std::string each;
    for (const MetricLine* t : tables) {
      if (t->Number("step") != step) continue;
      ++n;
      for (const auto& [key, v] : t->fields)
        if (v.kind == MetricValue::Kind::kNumber && key != "step" && key != "table") {
          MetricValue& sum = total.fields[key];
          sum.kind = MetricValue::Kind::kNumber;
          sum.number += v.number;
        }
      each += row("", Cell(t, "table", -1), t);
    }
    rows += row(" class=\"base\"", "<td>all " + std::to_string(n) + "</td>", &total) + each;
  }
  if (rows.empty()) return "";
  return "<h2>Embedding tables</h2>\n<table id=\"embedding-tables\">\n" +
         Head({"run", "table", "rows", "bytes", "lookups", "created", "DRAM rows", "DRAM hit rate",
               "evicted to disk", "written back", "admitted", "not admitted (lookups)",
               "updates dropped", "evicted stale", "evicted rare"}) +
         rows + "</table>\n";
}

std::string CheckpointsTable(const std::vector<RunMetrics>& runs) {
  std::string rows;
  for (const RunMetrics& run : runs) {
    for (const MetricLine& l : run.lines) {
      if (l.event() == "checkpoint") {
        rows += "<tr>" + NameCell(run.name) + Cell(&l, "step", -1) + NameCell(l.Text("name")) +
                NameCell(l.Flag("incremental") ? "incremental" : "full") + Cell(&l, "rows", -1) +
                "<td>" + Bytes(l.Number("bytes")) + "</td>" + Cell(&l, "seconds", 2) +
                Cell(&l, "mb_per_s", 1) + "</tr>\n";
      } else if (l.event() == "checkpoint_failed") {
        rows += "<tr class=\"base\">" + NameCell(run.name) + Cell(&l, "step", -1) +
                NameCell("FAILED: " + l.Text("error")) + "<td></td><td></td><td></td><td></td><td></td></tr>\n";
      }
    }
  }
  if (rows.empty()) return "";
  return "<h2>Checkpoints</h2>\n<table id=\"checkpoints\">\n" +
         Head({"run", "step", "checkpoint", "kind", "rows", "bytes", "seconds", "MB/s"}) + rows +
         "</table>\n";
}

std::string CompressionTables(const std::vector<RunMetrics>& runs) {
  std::string out;
  for (const RunMetrics& run : runs) {
    const auto models = run.Events("compress_model");
    if (models.empty()) continue;
    const MetricLine* base = nullptr;
    for (const MetricLine* m : models)
      if (m->Text("model") == "uncompressed") base = m;
    out += "<h3>" + HtmlEscape(run.name) + ": before and after</h3>\n<table class=\"before-after\">\n" +
           Head({"model", "params", "bytes", "rows", "bundle bytes", "row p50 µs", "valid AUC",
                 "valid logloss", "test AUC", "test logloss", "seconds", "bytes vs uncompressed",
                 "test AUC vs uncompressed"});
    for (const MetricLine* m : models) {
      const bool is_base = m == base;
      std::string ratio = "<td>-</td>", delta = "<td>-</td>";
      if (base && !is_base && m->Number("bytes") > 0)
        ratio = "<td>" + Fixed(base->Number("bytes") / m->Number("bytes"), 2) + "x fewer</td>";
      if (base && !is_base && m->Has("test_auc") && base->Has("test_auc")) {
        char d[32];
        std::snprintf(d, sizeof(d), "%+.5f", m->Number("test_auc") - base->Number("test_auc"));
        delta = "<td>" + std::string(d) + "</td>";
      }
      out += std::string(is_base ? "<tr class=\"base\">" : "<tr>") + NameCell(m->Text("model")) +
             Cell(m, "params", -1) + "<td>" + Bytes(m->Number("bytes")) + "</td>" + Cell(m, "rows", -1) +
             (m->Has("bundle_bytes") ? "<td>" + Bytes(m->Number("bundle_bytes")) + "</td>" : "<td>-</td>") +
             Cell(m, "row_p50_us", 1) + Cell(m, "valid_auc", 5) + Cell(m, "valid_logloss", 5) +
             Cell(m, "test_auc", 5) + Cell(m, "test_logloss", 5) + Cell(m, "seconds", 1) + ratio +
             delta + "</tr>\n";
    }
    out += "</table>\n";
    std::string ranks;
    for (const MetricLine* r : run.Events("compress_rank"))
      ranks += "<tr>" + NameCell(r->Text("stage")) + NameCell(r->Text("what")) + Cell(r, "width", -1) +
               Cell(r, "rank", -1) + Cell(r, "kept", 4) + "</tr>\n";
    if (!ranks.empty())
      out += "<table class=\"ranks\">\n" + Head({"stage", "what", "width", "rank", "variance kept"}) +
             ranks + "</table>\n";
    std::string stages;
    for (const MetricLine* s : run.Events("compress_stage"))
      stages += "<tr>" + NameCell(s->Text("stage")) + Cell(s, "stats_s", 2) + Cell(s, "eig_s", 3) +
                Cell(s, "rewrite_s", 2) + Cell(s, "rewritten_rows", -1) + "</tr>\n";
    if (!stages.empty())
      out += "<table class=\"stages\">\n" +
             Head({"stage", "statistics s", "eigendecompositions s", "rewrite s", "rows rewritten"}) +
             stages + "</table>\n";
  }
  return out;
}

std::string UmecTable(const std::vector<RunMetrics>& runs) {
  std::string rows;
  for (const RunMetrics& run : runs)
    for (const MetricLine& l : run.lines) {
      if (l.event() != "compress_umec" && l.event() != "umec_removed") continue;
      rows += "<tr>" + NameCell(run.name) +
              NameCell(l.event() == "compress_umec" ? "compress stage " + l.Text("stage") : "ctrps train") +
              Cell(&l, "resource", 4) + Cell(&l, "budget", 4) + Cell(&l, "forced", -1) +
              NameCell(l.Text("dropped_fields").empty() ? "(none)" : l.Text("dropped_fields")) +
              NameCell(l.Text("mlp_dims")) + "</tr>\n";
    }
  if (rows.empty()) return "";
  return "<table id=\"umec-selection\">\n" +
         Head({"run", "where", "resource", "budget", "groups forced", "dropped fields", "MLP kept"}) +
         rows + "</table>\n";
}

std::string DeepLightTable(const std::vector<RunMetrics>& runs) {
  std::string rows;
  for (const RunMetrics& run : runs) {
    const MetricLine* l = Last(run.Events("prune"));
    if (!l) continue;
    auto share = [](double part, double all) {
      return all > 0 ? "<td>" + Fixed(100.0 * part / all, 2) + "%</td>" : std::string("<td>-</td>");
    };
    rows += "<tr>" + NameCell(run.name) + Cell(l, "step", -1) + Cell(l, "target", 4) +
            Cell(l, "mlp_nonzero", -1) + Cell(l, "mlp_weights", -1) +
            share(l->Number("mlp_weights") - l->Number("mlp_nonzero"), l->Number("mlp_weights")) +
            Cell(l, "pairs_nonzero", -1) + Cell(l, "pairs", -1) + Cell(l, "embedding_zero", -1) +
            Cell(l, "embedding_entries", -1) +
            share(l->Number("embedding_zero"), l->Number("embedding_entries")) + "</tr>\n";
  }
  if (rows.empty()) return "";
  return "<table id=\"deeplight-prune\">\n" +
         Head({"run", "last pruning step", "target", "MLP non-zero", "MLP weights", "MLP sparsity",
               "pairs non-zero", "pairs", "embedding zeros", "embedding entries", "embedding sparsity"}) +
         rows + "</table>\n";
}

}  // namespace ctrps::launch::report
