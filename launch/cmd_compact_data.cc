// ctrps compact-data --model MODEL_DIR | --config FILE --in DATA --out FILE
//
// Rewrites a dataset without the fields a model dropped (UMEC:
// model.dropped_fields), in its own format, streaming, so the logs a team
// keeps shrink with the model: Criteo and Avazu keep their columns (a
// dropped field's column is left empty, which every reader takes as the
// field's missing value; Avazu's `hour` stays, it carries two fields),
// libffm lines lose the dropped fields' tokens. Plain or gzip in; gzip out
// when OUT ends in .gz. Written to OUT.tmp and renamed, so OUT is whole or
// absent. Lines are copied in order; a malformed line is copied unchanged
// (the readers skip it as before).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <zlib.h>

#include "common/logging.h"
#include "launch/commands.h"
#include "launch/flags.h"
#include "launch/job_setup.h"
#include "worker/data/byte_source.h"
#include "worker/data/line_parser.h"
#include "worker/data/line_reader.h"

namespace ctrps::launch {
namespace {

namespace fs = std::filesystem;

const std::vector<FlagSpec> kCompactFlags = {
    {"model", "DIR", "a saved model whose config names the dropped fields (model.dropped_fields)"},
    {"config", "FILE", "or a job config with model.dropped_fields and the data format"},
    {"in", "FILE", "the data to compact (plain or gzip)"},
    {"out", "FILE", "where to write it (gzip when it ends in .gz)"},
    {"set", "FIELD=VALUE", "override a config field", true},
};

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Output, plain or gzip.
class Sink {
 public:
  // The finished output is closed (and checked) by Close(); a failed run removes its file.
  ~Sink() { (void)Close(); }
  Status Open(const std::string& path, bool gzip) {
    path_ = path;
    if (gzip) {
      gz_ = gzopen(path.c_str(), "wb6");
      if (!gz_) return Status::IOError("cannot create " + path);
    } else {
      f_ = std::fopen(path.c_str(), "wb");
      if (!f_) return Status::IOError("cannot create " + path);
    }
    return Status::OK();
  }
  Status Write(std::string_view s) {
    bytes_ += s.size();
    if (gz_) {
      if (!s.empty() && gzwrite(gz_, s.data(), static_cast<unsigned>(s.size())) != static_cast<int>(s.size()))
        return Status::IOError("writing " + path_ + " failed");
    } else if (std::fwrite(s.data(), 1, s.size(), f_) != s.size()) {
      return Status::IOError("writing " + path_ + " failed (disk full?)");
    }
    return Status::OK();
  }
  Status Close() {
    Status s;
    if (gz_ && gzclose(gz_) != Z_OK) s = Status::IOError("closing " + path_ + " failed");
    if (f_ && std::fclose(f_) != 0) s = Status::IOError("closing " + path_ + " failed");
    gz_ = nullptr;
    f_ = nullptr;
    return s;
  }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string path_;
  gzFile gz_ = nullptr;
  FILE* f_ = nullptr;
  uint64_t bytes_ = 0;
};

// Copies `line` with the columns in `blank` (separated by `sep`) emptied.
void BlankColumns(std::string_view line, char sep, const std::vector<bool>& blank, std::string* out) {
  size_t col = 0, start = 0;
  while (true) {
    const size_t end = line.find(sep, start);
    const std::string_view cell = line.substr(start, end == std::string_view::npos ? line.npos : end - start);
    if (!(col < blank.size() && blank[col])) out->append(cell);
    if (end == std::string_view::npos) break;
    out->push_back(sep);
    start = end + 1;
    ++col;
  }
}

// Copies a libffm line without the tokens of the dropped field indices.
void DropTokens(std::string_view line, const std::vector<bool>& dropped, std::string* out) {
  size_t i = 0;
  bool first = true;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    const std::string_view tok = line.substr(i, j - i);
    const size_t colon = tok.find(':');
    bool keep = true;
    if (colon != std::string_view::npos && colon > 0 && colon < 6) {
      int f = 0;
      bool digits = true;
      for (size_t k = 0; k < colon; ++k) {
        digits &= tok[k] >= '0' && tok[k] <= '9';
        f = f * 10 + (tok[k] - '0');
      }
      keep = !(digits && f < static_cast<int>(dropped.size()) && dropped[f]);
    }
    if (keep) {
      if (!first) out->push_back(' ');
      out->append(tok);
      first = false;
    }
    i = j;
  }
}

Status Compact(const LoadedConfig& c, const std::string& in, const std::string& out) {
  const auto& dropped = c.job.model().dropped_fields();
  if (dropped.empty())
    return Status::InvalidArgument("the model drops no field (model.dropped_fields is empty): "
                                   "nothing to compact");
  worker::ParserOptions p = MakeParserOptions(c.job.data());
  ASSIGN_OR_RETURN(auto parser, worker::NewLineParser(p));
  const worker::DatasetSchema& all = parser->schema();
  std::vector<bool> gone(all.num_fields(), false);
  for (const std::string& name : dropped) {
    auto it = std::find(all.field_names.begin(), all.field_names.end(), name);
    if (it == all.field_names.end()) {
      std::string known;
      for (const std::string& f : all.field_names) known += (known.empty() ? "" : " ") + f;
      return Status::InvalidArgument("model.dropped_fields names '" + name + "', which " +
                                     worker::DataFormatName(p.format) + " data has not (its fields: " +
                                     known + ")");
    }
    gone[it - all.field_names.begin()] = true;
  }
  ASSIGN_OR_RETURN(bool gz_in, worker::IsGzipFile(in));
  ASSIGN_OR_RETURN(auto source, gz_in ? worker::OpenGzipSource(in) : worker::OpenFileSource(in, 0));
  worker::LineReader reader(std::move(source), 0, worker::LineReaderOptions{});
  const std::string tmp = out + ".tmp";
  Sink sink;
  RETURN_IF_ERROR(sink.Open(tmp, out.size() > 3 && out.compare(out.size() - 3, 3, ".gz") == 0));
  std::vector<bool> blank;  // Criteo / Avazu: columns to empty
  const auto t0 = std::chrono::steady_clock::now();
  auto last_log = t0;
  uint64_t lines = 0, in_bytes = 0;
  std::string line_out;
  worker::Line line;
  Status s;
  while (true) {
    auto more = reader.Next(&line);
    if (!more.ok()) { s = more.status().WithContext(in); break; }
    if (!*more) break;
    ++lines;
    in_bytes += line.size_bytes;
    line_out.clear();
    if (line.too_long) {
      s = Status::InvalidArgument(in + ":" + std::to_string(lines) + ": a line longer than 1 MiB, which "
                                  "compact-data cannot copy (the readers skip it); nothing is written");
      break;
    }
    switch (p.format) {
      case worker::DataFormat::kCriteo:
        if (lines == 1) {  // labeled: label then the 39 fields; unlabeled (test.txt): the fields
          const int first = worker::LooksLabeled(p.format, line.text) ? 1 : 0;
          blank.assign(first + all.num_fields(), false);
          for (int f = 0; f < all.num_fields(); ++f) blank[first + f] = gone[f];
        }
        BlankColumns(line.text, '\t', blank, &line_out);
        break;
      case worker::DataFormat::kAvazu:
        if (lines == 1) {  // the header names the columns
          size_t start = 0;
          while (true) {
            const size_t end = line.text.find(',', start);
            const std::string name(line.text.substr(start, end == line.text.npos ? line.text.npos : end - start));
            auto it = std::find(all.field_names.begin(), all.field_names.end(), name);
            blank.push_back(it != all.field_names.end() && gone[it - all.field_names.begin()]);
            if (end == line.text.npos) break;
            start = end + 1;
          }
          line_out.assign(line.text);
        } else {
          BlankColumns(line.text, ',', blank, &line_out);
        }
        break;
      case worker::DataFormat::kLibffm:
        DropTokens(line.text, gone, &line_out);
        break;
    }
    line_out.push_back('\n');
    if (!(s = sink.Write(line_out)).ok()) break;
    if (Since(last_log) >= 10) {
      last_log = std::chrono::steady_clock::now();
      spdlog::info("compact-data: {} lines, {:.0f} lines/s", lines, lines / Since(t0));
    }
  }
  Status closed = sink.Close();
  if (s.ok()) s = closed;
  if (s.ok()) {
    std::error_code ec;
    fs::rename(tmp, out, ec);
    if (ec) s = Status::IOError("cannot rename " + tmp + " to " + out + ": " + ec.message());
  }
  if (!s.ok()) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return s;
  }
  const double secs = Since(t0);
  const uint64_t out_bytes = fs::file_size(out);
  const uint64_t in_file = fs::file_size(in);
  std::printf("ctrps compact-data: %s -> %s\n  %llu lines in %.2f s (%.0f lines/s, %.1f MB/s of "
              "text), %zu field(s) dropped\n  %llu bytes -> %llu bytes (%.3fx; text %llu -> %llu)\n",
              in.c_str(), out.c_str(), static_cast<unsigned long long>(lines), secs,
              lines / std::max(secs, 1e-9), in_bytes / 1e6 / std::max(secs, 1e-9),
              static_cast<size_t>(dropped.size()), static_cast<unsigned long long>(in_file),
              static_cast<unsigned long long>(out_bytes),
              static_cast<double>(in_file) / std::max<uint64_t>(out_bytes, 1),
              static_cast<unsigned long long>(in_bytes), static_cast<unsigned long long>(sink.bytes()));
  return Status::OK();
}

}  // namespace

int RunCompactData(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, kCompactFlags);
  const bool ok = flags.ok() && !flags->help() && flags->Has("in") && flags->Has("out") &&
                  (flags->Has("model") != flags->Has("config"));
  if (!ok) {
    if (!flags.ok()) std::fprintf(stderr, "ctrps compact-data: %s\n\n", flags.status().message().c_str());
    else if (!flags->help())
      std::fprintf(stderr, "ctrps compact-data: --in, --out and one of --model or --config are required\n\n");
    std::fputs(FlagsUsage("compact-data", "Rewrites data without the fields a model dropped (UMEC), "
                          "in its own format.", kCompactFlags).c_str(),
               flags.ok() && flags->help() ? stdout : stderr);
    return flags.ok() && flags->help() ? 0 : 2;
  }
  InitLogging("info");
  const std::string config = flags->Has("model") ? flags->Get("model") + "/config.pbtxt" : flags->Get("config");
  auto c = LoadConfig(config, flags->GetAll("set"));
  if (!c.ok()) {
    std::fprintf(stderr, "ctrps compact-data: bad config: %s\n", c.status().message().c_str());
    return 2;
  }
  Status s = Compact(*c, flags->Get("in"), flags->Get("out"));
  if (!s.ok()) {
    std::fprintf(stderr, "ctrps compact-data: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace ctrps::launch
