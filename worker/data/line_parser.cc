#include "worker/data/line_parser.h"

#include "worker/data/avazu_parser.h"
#include "worker/data/criteo_parser.h"
#include "worker/data/libffm_parser.h"

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

StatusOr<std::unique_ptr<LineParser>> NewLineParser(const ParserOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  switch (options.format) {
    case DataFormat::kCriteo:
      return std::unique_ptr<LineParser>(
          new CriteoParser(options.hash_seed, options.criteo_integer_encoding));
    case DataFormat::kAvazu:
      return std::unique_ptr<LineParser>(new AvazuParser(options.hash_seed));
    case DataFormat::kLibffm:
      return std::unique_ptr<LineParser>(new LibffmParser(options.libffm_num_fields, options.hash_seed));
  }
  return Status::InvalidArgument("unknown data format");
}

}  // namespace ctrps::worker
