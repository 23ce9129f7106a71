#include "worker/synth/truth.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace ctrps::worker::synth {
namespace {

// Reads a text file line by line through stdio's getline (no copies).
class LineReader {
 public:
  ~LineReader() {
    std::free(buf_);
    if (file_ != nullptr) std::fclose(file_);
  }
  Status Open(const std::string& path) {
    path_ = path;
    file_ = std::fopen(path.c_str(), "rb");
    if (file_ == nullptr) return Status::IOError("open " + path + ": " + std::strerror(errno));
    return Status::OK();
  }
  // The next line without its line end; false at end of file or on a read
  // error (then status() says which).
  bool Next(std::string_view* line) {
    ssize_t n = getline(&buf_, &cap_, file_);
    if (n < 0) return false;
    ++line_number_;
    while (n > 0 && (buf_[n - 1] == '\n' || buf_[n - 1] == '\r')) buf_[--n] = '\0';
    *line = std::string_view(buf_, n);
    return true;
  }
  Status status() const {
    if (std::ferror(file_)) return Status::IOError("read " + path_ + ": " + std::strerror(errno));
    return Status::OK();
  }
  // "path:line: what" for the current line.
  Status Error(const std::string& what) const {
    return Status::InvalidArgument(path_ + ":" + std::to_string(line_number_) + ": " + what);
  }
  int64_t line_number() const { return line_number_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  char* buf_ = nullptr;
  size_t cap_ = 0;
  int64_t line_number_ = 0;
};

// `line` is NUL-terminated (it comes from LineReader).
bool ParseProbability(std::string_view line, float* out) {
  if (line.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(line.data(), &end);
  if (end != line.data() + line.size() || errno != 0 || !(v >= 0 && v <= 1)) return false;
  *out = static_cast<float>(v);
  return true;
}

std::string Shown(std::string_view line) {
  return "'" + std::string(line.substr(0, 40)) + (line.size() > 40 ? "...'" : "'");
}

}  // namespace

StatusOr<std::vector<float>> ReadTruthFile(const std::string& path) {
  LineReader in;
  RETURN_IF_ERROR(in.Open(path));
  std::vector<float> probs;
  std::string_view line;
  while (in.Next(&line)) {
    if (in.line_number() == 1 && line == kTruthHeader) continue;
    float p;
    if (!ParseProbability(line, &p)) return in.Error("expected a probability in [0, 1], got " + Shown(line));
    probs.push_back(p);
  }
  RETURN_IF_ERROR(in.status());
  return probs;
}

StatusOr<EvalMetrics> EvaluateTruth(const std::string& truth_path, const std::string& data_path) {
  LineReader truth, data;
  RETURN_IF_ERROR(truth.Open(truth_path));
  RETURN_IF_ERROR(data.Open(data_path));
  EvalAccumulator acc;
  bool avazu = false;
  std::string_view t, d;
  std::vector<float> probs, labels;
  auto flush = [&]() -> Status {
    Status st = acc.Add(probs, labels);
    probs.clear();
    labels.clear();
    return st;
  };
  while (true) {
    const bool has_t = truth.Next(&t);
    const bool has_d = data.Next(&d);
    if (!has_t || !has_d) {
      RETURN_IF_ERROR(truth.status());
      RETURN_IF_ERROR(data.status());
      if (has_t || has_d) {
        const LineReader& longer = has_t ? truth : data;
        const LineReader& shorter = has_t ? data : truth;
        return Status::InvalidArgument(
            shorter.path() + " has " + std::to_string(shorter.line_number()) + " lines but " +
            longer.path() + " has more (first unmatched line: " + longer.path() + ":" +
            std::to_string(longer.line_number()) + ")");
      }
      break;
    }
    if (data.line_number() == 1) {
      avazu = d.substr(0, 9) == "id,click,";
      const bool truth_header = t == kTruthHeader;
      if (avazu != truth_header) {
        return avazu ? truth.Error(std::string("expected the header '") + kTruthHeader +
                                   "' to match the Avazu header of " + data_path)
                     : truth.Error(std::string("header '") + kTruthHeader + "' but " + data_path +
                                   " has no header (Criteo)");
      }
      if (avazu) continue;
    }
    float p;
    if (!ParseProbability(t, &p)) return truth.Error("expected a probability in [0, 1], got " + Shown(t));
    std::string_view label = d;
    if (avazu) {
      const size_t c1 = d.find(',');
      const size_t c2 = c1 == std::string_view::npos ? c1 : d.find(',', c1 + 1);
      label = c2 == std::string_view::npos ? std::string_view() : d.substr(c1 + 1, c2 - c1 - 1);
    } else {
      label = d.substr(0, d.find('\t'));
    }
    if (label != "0" && label != "1") {
      return data.Error("expected a 0/1 label in the " + std::string(avazu ? "click" : "first") +
                        " column, got " + Shown(label));
    }
    probs.push_back(p);
    labels.push_back(label[0] == '1' ? 1.0f : 0.0f);
    if (probs.size() == 65536) RETURN_IF_ERROR(flush());
  }
  RETURN_IF_ERROR(flush());
  return acc.Compute();
}

StatusOr<std::string> DataPathForTruth(const std::string& truth_path) {
  const std::string suffix = ".truth";
  if (truth_path.size() <= suffix.size() ||
      truth_path.compare(truth_path.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return Status::InvalidArgument("truth file '" + truth_path +
                                   "' does not end in .truth; name its data file explicitly");
  }
  return truth_path.substr(0, truth_path.size() - suffix.size());
}

}  // namespace ctrps::worker::synth
