#include "worker/data/criteo_parser.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "worker/data/text_util.h"

namespace ctrps::worker {
namespace {

// floor(ln(x)^2) for small x, precomputed: most Criteo integers are small.
constexpr int kBucketTableSize = 4096;

const std::array<int16_t, kBucketTableSize>& BucketTable() {
  static const std::array<int16_t, kBucketTableSize> table = [] {
    std::array<int16_t, kBucketTableSize> t{};
    for (int x = 3; x < kBucketTableSize; ++x) {
      double l = std::log(static_cast<double>(x));
      t[x] = static_cast<int16_t>(std::floor(l * l));
    }
    return t;
  }();
  return table;
}

}  // namespace

CriteoParser::CriteoParser(uint64_t hash_seed, IntegerEncoding encoding, bool labeled)
    : hasher_(kFields, hash_seed), encoding_(encoding), first_column_(labeled ? 0 : 1) {
  for (int i = 1; i <= kIntegerFields; ++i) schema_.field_names.push_back("I" + std::to_string(i));
  for (int i = 1; i <= kCategoricalFields; ++i) schema_.field_names.push_back("C" + std::to_string(i));
  for (int f = 0; f < kIntegerFields; ++f) scaled_keys_[f] = hasher_.IntKey(f, IntKeyKind::kScaled, 0);
  BucketTable();  // build it before any parsing thread needs it
}

int64_t CriteoParser::LogBucket(int64_t x) {
  CHECK_GT(x, 2);
  if (x < kBucketTableSize) return BucketTable()[x];
  double l = std::log(static_cast<double>(x));
  return static_cast<int64_t>(std::floor(l * l));
}

float CriteoParser::ScaledValue(int64_t x) {
  double magnitude = std::log1p(std::fabs(static_cast<double>(x)));
  return static_cast<float>(x < 0 ? -magnitude : magnitude);
}

std::string CriteoParser::ColumnName(int column) const {
  if (column == 0) return "label";
  if (column >= 1 && column <= kIntegerFields) return "I" + std::to_string(column);
  if (column > kIntegerFields && column < kColumns) return "C" + std::to_string(column - kIntegerFields);
  return "line";
}

bool CriteoParser::WrongColumnCount(std::string_view line, ParseError* error) const {
  error->reason = MalformedReason::kWrongColumnCount;
  error->column = -1;
  size_t columns = 1 + static_cast<size_t>(std::count(line.begin(), line.end(), '\t'));
  error->detail = first_column_ == 0
                      ? "expected 40 tab-separated columns (label, I1-I13, C1-C26), got "
                      : "expected 39 tab-separated columns (I1-I13, C1-C26; no label), got ";
  error->detail += std::to_string(columns);
  return false;
}

bool CriteoParser::ParseInteger(int field, std::string_view token, Key* key, float* value,
                                ParseError* error) const {
  int64_t x;
  if (!ParseInt64(token, &x)) {
    error->reason = MalformedReason::kBadInteger;
    error->column = 1 + field;
    const size_t digits_from = !token.empty() && (token[0] == '-' || token[0] == '+') ? 1 : 0;
    const bool all_digits = token.size() > digits_from &&
                            token.find_first_not_of("0123456789", digits_from) == token.npos;
    error->detail = all_digits ? "integer out of the 64-bit range, got " + QuoteForMessage(token)
                               : "expected an integer (or nothing), got " + QuoteForMessage(token);
    return false;
  }
  if (encoding_ == IntegerEncoding::kScale) {
    *key = scaled_keys_[field];
    *value = ScaledValue(x);
  } else {
    *key = x > 2 ? hasher_.IntKey(field, IntKeyKind::kLogBucket, LogBucket(x))
                 : hasher_.IntKey(field, IntKeyKind::kRawValue, x);
    *value = 1.0f;
  }
  return true;
}

bool CriteoParser::Parse(std::string_view line, float* label, Key* keys, float* values,
                         ParseError* error) {
  const char* p = line.data();
  const char* const end = p + line.size();
  *label = 0.0f;
  for (int column = first_column_; column < kColumns; ++column) {
    const char* stop;
    if (column + 1 < kColumns) {
      stop = static_cast<const char*>(std::memchr(p, '\t', end - p));
      if (stop == nullptr) return WrongColumnCount(line, error);
    } else {
      stop = end;
      if (std::memchr(p, '\t', end - p) != nullptr) return WrongColumnCount(line, error);
    }
    std::string_view token(p, static_cast<size_t>(stop - p));
    p = stop + (stop < end ? 1 : 0);
    if (column == 0) {
      if (token.size() != 1 || (token[0] != '0' && token[0] != '1')) {
        error->reason = MalformedReason::kBadLabel;
        error->column = 0;
        error->detail = "expected 0 or 1, got " + QuoteForMessage(token);
        if (std::count(line.begin(), line.end(), '\t') == kColumns - 2)
          error->detail += " (the line has 39 columns: no label, as in Criteo's test.txt)";
        return false;
      }
      *label = token[0] == '1' ? 1.0f : 0.0f;
      continue;
    }
    const int field = column - 1;
    if (token.empty()) {
      keys[field] = FeatureHasher::MissingKey(field);
      values[field] = 1.0f;
      continue;
    }
    if (field < kIntegerFields) {
      if (!ParseInteger(field, token, &keys[field], &values[field], error)) return false;
      continue;
    }
    size_t bad;
    if (!CategoricalKey(hasher_, field, token, &keys[field], &bad)) {
      error->reason = MalformedReason::kControlCharacter;
      error->column = column;
      error->detail = "control byte at offset " + std::to_string(bad) + " of " + QuoteForMessage(token);
      return false;
    }
    values[field] = 1.0f;
  }
  return true;
}

}  // namespace ctrps::worker
