#include "launch/report/metrics_log.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ctrps::launch::report {
namespace {

// A cursor over one line, with errors that name the column.
class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  StatusOr<MetricLine> Object() {
    MetricLine line;
    SkipSpace();
    RETURN_IF_ERROR(Expect('{', "'{' (a metrics line is one JSON object)"));
    SkipSpace();
    if (Peek() == '}') {
      ++i_;
    } else {
      while (true) {
        SkipSpace();
        if (Peek() != '"') return Error("a field name in double quotes");
        ASSIGN_OR_RETURN(std::string key, String());
        SkipSpace();
        RETURN_IF_ERROR(Expect(':', "':' after field \"" + key + "\""));
        SkipSpace();
        ASSIGN_OR_RETURN(MetricValue v, Value(key));
        if (line.fields.count(key))
          return Status::InvalidArgument("column " + std::to_string(i_ + 1) + ": field \"" + key +
                                         "\" appears twice");
        line.fields[key] = std::move(v);
        SkipSpace();
        if (Peek() == ',') {
          ++i_;
          continue;
        }
        RETURN_IF_ERROR(Expect('}', "',' or '}' after field \"" + key + "\""));
        break;
      }
    }
    SkipSpace();
    if (i_ != s_.size()) return Error("the end of the line after the object");
    line.raw = std::string(s_);
    return line;
  }

 private:
  char Peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  Status Error(const std::string& expected) const {
    const std::string found =
        i_ < s_.size() ? "'" + std::string(1, s_[i_]) + "'" : std::string("the end of the line");
    return Status::InvalidArgument("column " + std::to_string(i_ + 1) + ": expected " + expected +
                                   ", found " + found);
  }
  Status Expect(char c, const std::string& what) {
    if (Peek() != c) return Error(what);
    ++i_;
    return Status::OK();
  }

  StatusOr<std::string> String() {
    ++i_;  // the opening quote
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (static_cast<unsigned char>(c) < 0x20) {
        --i_;
        return Error("no control character inside a string");
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = Peek();
      ++i_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (i_ + 4 > s_.size()) return Error("four hex digits after \\u");
          unsigned cp = 0;
          for (int k = 0; k < 4; ++k) {
            const char h = s_[i_ + k];
            if (!std::isxdigit(static_cast<unsigned char>(h))) return Error("four hex digits after \\u");
            cp = cp * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          i_ += 4;
          // UTF-8 (surrogate pairs are kept as two code points: the
          // writer only escapes control characters).
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:
          i_ -= 1;
          return Error("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
      }
    }
    if (i_ >= s_.size()) return Error("the closing '\"' of the string");
    ++i_;
    return out;
  }

  StatusOr<MetricValue> Value(const std::string& key) {
    MetricValue v;
    const char c = Peek();
    if (c == '"') {
      v.kind = MetricValue::Kind::kString;
      ASSIGN_OR_RETURN(v.text, String());
      return v;
    }
    for (const char* word : {"true", "false", "null"}) {
      const std::string_view w(word);
      if (s_.substr(i_, w.size()) == w) {
        i_ += w.size();
        v.kind = w == "null" ? MetricValue::Kind::kNull : MetricValue::Kind::kBool;
        v.flag = w == "true";
        return v;
      }
    }
    // A JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    const size_t start = i_;
    auto digits = [&] {
      const size_t from = i_;
      while (std::isdigit(static_cast<unsigned char>(Peek()))) ++i_;
      return i_ > from;
    };
    const std::string what = "a number, string, true, false or null for field \"" + key + "\"";
    if (Peek() == '-') ++i_;
    if (Peek() == '0') ++i_;
    else if (!digits()) return Error(what);
    if (Peek() == '.') {
      ++i_;
      if (!digits()) return Error("digits after the decimal point of field \"" + key + "\"");
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++i_;
      if (Peek() == '+' || Peek() == '-') ++i_;
      if (!digits()) return Error("digits in the exponent of field \"" + key + "\"");
    }
    v.kind = MetricValue::Kind::kNumber;
    v.number = std::strtod(std::string(s_.substr(start, i_ - start)).c_str(), nullptr);
    return v;
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

double MetricLine::Number(const std::string& key, double fallback) const {
  auto it = fields.find(key);
  if (it == fields.end() || it->second.kind != MetricValue::Kind::kNumber) return fallback;
  return it->second.number;
}

std::string MetricLine::Text(const std::string& key) const {
  auto it = fields.find(key);
  if (it == fields.end() || it->second.kind != MetricValue::Kind::kString) return "";
  return it->second.text;
}

bool MetricLine::Flag(const std::string& key) const {
  auto it = fields.find(key);
  return it != fields.end() && it->second.kind == MetricValue::Kind::kBool && it->second.flag;
}

StatusOr<MetricLine> ParseMetricLine(std::string_view text) { return Parser(text).Object(); }

std::vector<const MetricLine*> RunMetrics::Events(const std::string& event) const {
  std::vector<const MetricLine*> out;
  for (const MetricLine& l : lines)
    if (l.event() == event) out.push_back(&l);
  return out;
}

StatusOr<RunMetrics> ReadRunMetrics(const std::string& path) {
  namespace fs = std::filesystem;
  RunMetrics run;
  std::error_code ec;
  fs::path dir(path);
  if (fs::is_directory(dir, ec)) {
    run.path = (dir / "metrics.jsonl").string();
    if (!fs::is_regular_file(run.path, ec))
      return Status::NotFound(path + " holds no metrics.jsonl: is it the output.dir of a "
                              "`ctrps train` or `ctrps compress` run?");
  } else if (fs::is_regular_file(dir, ec)) {
    run.path = path;
    dir = dir.parent_path();
  } else {
    return Status::NotFound(path + ": no such run directory or metrics file");
  }
  // The run's name: its directory's ("out/deepfm/" -> "deepfm").
  fs::path named = fs::absolute(dir, ec).lexically_normal();
  if (!named.has_filename()) named = named.parent_path();
  run.name = named.filename().string();
  std::ifstream in(run.path, std::ios::binary);
  if (!in) return Status::IOError("cannot read " + run.path);
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  size_t pos = 0;
  int number = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    const bool unfinished = end == std::string::npos;
    if (unfinished) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto parsed = ParseMetricLine(line);
    if (!parsed.ok()) {
      if (unfinished) {
        run.dropped_partial_last_line = true;
        break;
      }
      return Status::InvalidArgument(run.path + ":" + std::to_string(number) + ": " +
                                     parsed.status().message());
    }
    parsed->line_number = number;
    run.lines.push_back(std::move(*parsed));
  }
  if (run.lines.empty())
    return Status::InvalidArgument(run.path + " holds no metrics line: the run wrote nothing yet");
  return run;
}

}  // namespace ctrps::launch::report
