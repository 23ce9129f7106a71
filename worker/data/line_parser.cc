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
  return Status::OK();
}

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

}  // namespace ctrps::worker
