#include "worker/data/avazu_parser.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "worker/data/text_util.h"

namespace ctrps::worker {
namespace {

constexpr const char* kColumnNames[AvazuParser::kColumns] = {
    "id",         "click",       "hour",          "C1",        "banner_pos", "site_id",
    "site_domain", "site_category", "app_id",      "app_domain", "app_category", "device_id",
    "device_ip",  "device_model", "device_type",  "device_conn_type", "C14",  "C15",
    "C16",        "C17",         "C18",           "C19",       "C20",        "C21"};
constexpr int kFirstCategoricalColumn = 3;
constexpr int kFirstCategoricalField = 2;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x += 'a' - 'A';
    if (y >= 'A' && y <= 'Z') y += 'a' - 'A';
    if (x != y) return false;
  }
  return true;
}

int TwoDigits(const char* p) { return (p[0] - '0') * 10 + (p[1] - '0'); }

}  // namespace

AvazuParser::AvazuParser(uint64_t hash_seed, bool labeled)
    : hasher_(kFields, hash_seed), labeled_(labeled) {
  schema_.field_names = {"hour_of_day", "weekday"};
  for (int c = kFirstCategoricalColumn; c < kColumns; ++c) schema_.field_names.push_back(kColumnNames[c]);
  CHECK_EQ(schema_.num_fields(), kFields);
}

std::string AvazuParser::ColumnName(int column) const {
  return column >= 0 && column < kColumns ? kColumnNames[column] : "line";
}

bool AvazuParser::IsValidDate(int year, int month, int day) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1) return false;
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= kDays[month - 1] + (month == 2 && leap ? 1 : 0);
}

int AvazuParser::Weekday(int year, int month, int day) {
  // Days since 1970-01-01 (a Thursday), after H. Hinnant's days_from_civil.
  int64_t y = year - (month <= 2 ? 1 : 0);
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  int64_t wd = (days + 3) % 7;  // Thursday is 3 with Monday = 0
  return static_cast<int>(wd < 0 ? wd + 7 : wd);
}

Status AvazuParser::CheckHeader(std::string_view line) const {
  if (line.substr(0, 3) == "\xef\xbb\xbf") line.remove_prefix(3);
  std::vector<const char*> names;  // the columns this file must have, in order
  for (int c = 0; c < kColumns; ++c)
    if (labeled_ || c != 1) names.push_back(kColumnNames[c]);
  std::string expected;
  for (size_t c = 0; c < names.size(); ++c) expected += std::string(c ? "," : "") + names[c];
  size_t column = 0;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    std::string_view name = TrimBlanks(line.substr(start, comma == std::string_view::npos ? line.npos : comma - start));
    if (column < names.size() && !EqualsIgnoreCase(name, names[column])) {
      return Status::InvalidArgument("bad Avazu header: column " + std::to_string(column + 1) + " is " +
                                     QuoteForMessage(name) + ", expected '" + names[column] +
                                     "' (the header must be " + expected + ")");
    }
    ++column;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (column != names.size()) {
    return Status::InvalidArgument("bad Avazu header: " + std::to_string(column) + " columns, expected " +
                                   std::to_string(names.size()) + " (" + expected + ")");
  }
  return Status::OK();
}

bool AvazuParser::ParseHour(std::string_view token, Key* keys, float* values, ParseError* error) const {
  error->reason = MalformedReason::kBadDate;
  error->column = 2;
  if (token.size() != 8 || !IsAllDigits(token)) {
    error->detail = "expected YYMMDDHH (8 digits, e.g. 14102100), got " + QuoteForMessage(token);
    return false;
  }
  const int year = 2000 + TwoDigits(token.data());
  const int month = TwoDigits(token.data() + 2);
  const int day = TwoDigits(token.data() + 4);
  const int hour = TwoDigits(token.data() + 6);
  if (!IsValidDate(year, month, day) || hour > 23) {
    error->detail = "expected YYMMDDHH with a real date and hour 00-23, got " + QuoteForMessage(token);
    return false;
  }
  keys[0] = hasher_.IntKey(0, IntKeyKind::kRawValue, hour);
  keys[1] = hasher_.IntKey(1, IntKeyKind::kRawValue, Weekday(year, month, day));
  values[0] = values[1] = 1.0f;
  return true;
}

bool AvazuParser::Parse(std::string_view line, float* label, Key* keys, float* values,
                        ParseError* error) {
  const char* p = line.data();
  const char* const end = p + line.size();
  *label = 0.0f;
  for (int column = 0; column < kColumns; ++column) {
    if (column == 1 && !labeled_) continue;
    const char* stop = end;
    if (column + 1 < kColumns) stop = static_cast<const char*>(std::memchr(p, ',', end - p));
    if (stop == nullptr || (column + 1 == kColumns && std::memchr(p, ',', end - p) != nullptr)) {
      error->reason = MalformedReason::kWrongColumnCount;
      error->column = -1;
      error->detail = std::string(labeled_ ? "expected 24" : "expected 23 (no click)") +
                      " comma-separated columns, got " +
                      std::to_string(1 + std::count(line.begin(), line.end(), ','));
      return false;
    }
    std::string_view token(p, static_cast<size_t>(stop - p));
    p = stop + (stop < end ? 1 : 0);
    if (column == 0) {
      if (token.size() > 20 || !IsAllDigits(token)) {
        error->reason = MalformedReason::kBadInteger;
        error->column = 0;
        error->detail = "expected a decimal id of 1-20 digits, got " + QuoteForMessage(token);
        return false;
      }
    } else if (column == 1) {
      if (token.size() != 1 || (token[0] != '0' && token[0] != '1')) {
        error->reason = MalformedReason::kBadLabel;
        error->column = 1;
        error->detail = "expected click 0 or 1, got " + QuoteForMessage(token);
        return false;
      }
      *label = token[0] == '1' ? 1.0f : 0.0f;
    } else if (column == 2) {
      if (!ParseHour(token, keys, values, error)) return false;
    } else {
      const int field = column - kFirstCategoricalColumn + kFirstCategoricalField;
      values[field] = 1.0f;
      size_t bad;
      if (token.empty()) {
        keys[field] = FeatureHasher::MissingKey(field);
      } else if (!CategoricalKey(hasher_, field, token, &keys[field], &bad)) {
        error->reason = MalformedReason::kControlCharacter;
        error->column = column;
        error->detail = "control byte at offset " + std::to_string(bad) + " of " + QuoteForMessage(token);
        return false;
      }
    }
  }
  return true;
}

}  // namespace ctrps::worker
