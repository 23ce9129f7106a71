#include "worker/data/line_parser.h"

#include <algorithm>

#include "worker/data/avazu_parser.h"
#include "worker/data/criteo_parser.h"
#include "worker/data/libffm_parser.h"
#include "worker/data/text_util.h"

namespace ctrps::worker {

Status LineParser::CheckHeader(std::string_view line) const { return Status::OK(); }

const char* DataFormatName(DataFormat format) {
  switch (format) {
    case DataFormat::kCriteo: return "criteo";
    case DataFormat::kAvazu: return "avazu";
    case DataFormat::kLibffm: return "libffm";
  }
  return "unknown";
}

StatusOr<DataFormat> ParseDataFormat(std::string_view name) {
  for (DataFormat f : {DataFormat::kCriteo, DataFormat::kAvazu, DataFormat::kLibffm}) {
    if (name == DataFormatName(f)) return f;
  }
  return Status::InvalidArgument("unknown data format '" + std::string(name) +
                                 "': expected criteo, avazu or libffm");
}

Status ParserOptions::Validate() const {
  if (format == DataFormat::kLibffm && (libffm_num_fields < 1 || libffm_num_fields > kMaxTables)) {
    return Status::InvalidArgument("libffm_num_fields must be in [1, " + std::to_string(kMaxTables) +
                                   "] for the libffm format, got " + std::to_string(libffm_num_fields));
  }
  for (size_t i = 0; i < keep_fields.size(); ++i)
    if (keep_fields[i] < 0 || keep_fields[i] >= kMaxTables || (i > 0 && keep_fields[i] <= keep_fields[i - 1]))
      return Status::InvalidArgument("keep_fields must be ascending field indices, got " +
                                     std::to_string(keep_fields[i]) + " at position " +
                                     std::to_string(i));
  return Status::OK();
}

namespace {

// Parses every field and hands on the kept ones.
class FieldSelectParser final : public LineParser {
 public:
  FieldSelectParser(std::unique_ptr<LineParser> inner, std::vector<int> keep)
      : inner_(std::move(inner)), keep_(std::move(keep)) {
    const DatasetSchema& all = inner_->schema();
    for (int f : keep_) {
      schema_.field_names.push_back(all.field_names[f]);
      schema_.table_ids.push_back(f);
    }
    keys_.resize(all.num_fields());
    values_.resize(all.num_fields());
  }
  const DatasetSchema& schema() const override { return schema_; }
  int header_lines() const override { return inner_->header_lines(); }
  Status CheckHeader(std::string_view line) const override { return inner_->CheckHeader(line); }
  bool Parse(std::string_view line, float* label, Key* keys, float* values,
             ParseError* error) override {
    if (!inner_->Parse(line, label, keys_.data(), values_.data(), error)) return false;
    for (size_t i = 0; i < keep_.size(); ++i) {
      keys[i] = keys_[keep_[i]];
      values[i] = values_[keep_[i]];
    }
    return true;
  }
  std::string ColumnName(int column) const override { return inner_->ColumnName(column); }

 private:
  std::unique_ptr<LineParser> inner_;
  std::vector<int> keep_;
  DatasetSchema schema_;
  std::vector<Key> keys_;
  std::vector<float> values_;
};

StatusOr<std::unique_ptr<LineParser>> NewFormatParser(const ParserOptions& options) {
  switch (options.format) {
    case DataFormat::kCriteo:
      return std::unique_ptr<LineParser>(
          new CriteoParser(options.hash_seed, options.criteo_integer_encoding, options.labeled));
    case DataFormat::kAvazu:
      return std::unique_ptr<LineParser>(new AvazuParser(options.hash_seed, options.labeled));
    case DataFormat::kLibffm:
      return std::unique_ptr<LineParser>(new LibffmParser(options.libffm_num_fields, options.hash_seed, options.labeled));
  }
  return Status::InvalidArgument("unknown data format");
}

}  // namespace

bool LooksLabeled(DataFormat format, std::string_view line) {
  switch (format) {
    case DataFormat::kCriteo:
      return std::count(line.begin(), line.end(), '\t') != CriteoParser::kColumns - 2;
    case DataFormat::kAvazu: {
      const size_t a = line.find(',');
      if (a == std::string_view::npos) return true;
      const size_t b = line.find(',', a + 1);
      std::string second(TrimBlanks(line.substr(a + 1, b == line.npos ? line.npos : b - a - 1)));
      for (char& c : second) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
      return second != "hour";
    }
    case DataFormat::kLibffm: {
      const size_t start = line.find_first_not_of(" \t");
      if (start == std::string_view::npos) return true;
      const size_t stop = line.find_first_of(" \t", start);
      return line.substr(start, stop == line.npos ? line.npos : stop - start).find(':') ==
             std::string_view::npos;
    }
  }
  return true;
}

StatusOr<std::unique_ptr<LineParser>> NewLineParser(const ParserOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(std::unique_ptr<LineParser> parser, NewFormatParser(options));
  if (options.keep_fields.empty()) return parser;
  const int all = parser->num_fields();
  if (options.keep_fields.back() >= all)
    return Status::InvalidArgument("keep_fields names field " +
                                   std::to_string(options.keep_fields.back()) + " but the " +
                                   DataFormatName(options.format) + " data has " +
                                   std::to_string(all) + " fields");
  return std::unique_ptr<LineParser>(new FieldSelectParser(std::move(parser), options.keep_fields));
}

}  // namespace ctrps::worker
