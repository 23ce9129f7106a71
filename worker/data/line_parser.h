// Parsers turn one text line into one example: a label and, for every field
// of the dataset's schema, one key and one value. The formats are Criteo
// TSV, Avazu CSV and libffm (see each parser's header).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/keys.h"
#include "common/status.h"
#include "worker/data/batch.h"
#include "worker/data/read_stats.h"

namespace ctrps::worker {

// Why Parse rejected a line.
struct ParseError {
  MalformedReason reason = MalformedReason::kBadToken;
  // The input column (0-based; for libffm the 0-based token index) at
  // fault, or -1 for the whole line.
  int column = -1;
  // What was expected and what was found: "expected 0 or 1, got '2'".
  std::string detail;
};

// Not thread-safe (parsers keep scratch buffers): one per reading thread.
class LineParser {
 public:
  virtual ~LineParser() = default;

  virtual const DatasetSchema& schema() const = 0;
  int num_fields() const { return schema().num_fields(); }

  // Lines at the start of each file that are a header: 0 or 1.
  virtual int header_lines() const { return 0; }
  // Checks a header line (terminator removed). InvalidArgument saying what
  // was expected otherwise; the caller adds file:line.
  [[nodiscard]] virtual Status CheckHeader(std::string_view line) const;

  // Parses `line` (terminator removed; any bytes at all) into *label and
  // keys[0..F), values[0..F). Returns false with *error filled if the line
  // is malformed; the outputs are then unspecified. Never crashes or loops
  // on any input.
  virtual bool Parse(std::string_view line, float* label, Key* keys, float* values,
                     ParseError* error) = 0;

  // Human name of an input column for messages: "I3 (column 3)".
  virtual std::string ColumnName(int column) const = 0;
};

enum class DataFormat { kCriteo, kAvazu, kLibffm };

// "criteo", "avazu", "libffm".
const char* DataFormatName(DataFormat format);
// Inverse of DataFormatName; InvalidArgument listing the known names.
StatusOr<DataFormat> ParseDataFormat(std::string_view name);

// Criteo integer columns I1-I13.
enum class IntegerEncoding {
  // Categorical: x > 2 becomes bucket floor(ln(x)^2), x <= 2 (zero and
  // negatives included) stays x; each bucket and each small value is its own
  // key (value 1). Buckets and raw values never share a key.
  kLogBucket,
  // Numeric: one key per field, value sign(x) * ln(1 + |x|), which is
  // monotone in x and keeps large counts in a small range.
  kScale,
};

struct ParserOptions {
  DataFormat format = DataFormat::kCriteo;
  // Mixed into every field's hash seed; changing it remaps every key, so it
  // must stay fixed for the life of a model (checkpoints included).
  uint64_t hash_seed = 0;
  IntegerEncoding criteo_integer_encoding = IntegerEncoding::kLogBucket;
  // libffm only: fields per example; field indices must be in [0, n).
  // 1 <= n <= 256 (kMaxTables).
  int libffm_num_fields = 0;
  // false: lines without the label column, as in Criteo's test.txt (39
  // columns), Avazu's test.csv (no `click` column, header included) and
  // libffm lines of features only; Parse then sets every label to 0. For
  // scoring (`ctrps predict`), never for training or evaluation.
  bool labeled = true;
  // The data's fields a model reads (ascending field indices; empty: all).
  // The parser then yields only these, in this order, with their own keys
  // (table id = the data's field index): a model whose fields were
  // removed (UMEC) never sees, pulls or stores the others.
  std::vector<int> keep_fields;

  Status Validate() const;
};

// Whether the first line of `first_line`'s file carries labels, judged by
// its shape: Criteo 40 columns (39: no label), Avazu a header with `click`
// as its second column (a header without it: no labels), libffm a first
// token without ':' (with one: features only). Anything else: true, so the
// labeled parser reports what is wrong with the line.
bool LooksLabeled(DataFormat format, std::string_view first_line);

// A parser for options.format. InvalidArgument if the options are invalid.
StatusOr<std::unique_ptr<LineParser>> NewLineParser(const ParserOptions& options);

}  // namespace ctrps::worker
