// Avazu CTR CSV (train.csv of the Kaggle challenge): a header line in every
// file, then 24 comma-separated columns
//   id, click, hour, C1, banner_pos, site_id, site_domain, site_category,
//   app_id, app_domain, app_category, device_id, device_ip, device_model,
//   device_type, device_conn_type, C14, ..., C21
// id (1-20 decimal digits) is checked and dropped; click is the label (0 or
// 1); hour (YYMMDDHH, year 20YY) becomes two fields, hour_of_day (0-23) and
// weekday (0 = Monday .. 6 = Sunday, computed from the date, which must
// exist); the 21 categorical columns follow as they are: 23 fields. Values
// are hashed case-insensitively; an empty value is the missing key. There
// is no CSV quoting: a '"' is an ordinary byte.
#pragma once

#include "worker/data/feature_hasher.h"
#include "worker/data/line_parser.h"

namespace ctrps::worker {

class AvazuParser : public LineParser {
 public:
  static constexpr int kColumns = 24;
  static constexpr int kFields = 23;

  // labeled false: files without the click column (23 columns, header
  // included), like Avazu's test.csv.
  explicit AvazuParser(uint64_t hash_seed, bool labeled = true);

  const DatasetSchema& schema() const override { return schema_; }
  int header_lines() const override { return 1; }
  // The 24 column names in order; names are compared case-insensitively,
  // ignoring blanks around them and a UTF-8 byte-order mark.
  Status CheckHeader(std::string_view line) const override;
  bool Parse(std::string_view line, float* label, Key* keys, float* values,
             ParseError* error) override;
  std::string ColumnName(int column) const override;  // the header name

  // Day of week of a proleptic Gregorian date, 0 = Monday .. 6 = Sunday.
  static int Weekday(int year, int month, int day);
  // Whether year-month-day exists (month 1-12, day within the month).
  static bool IsValidDate(int year, int month, int day);

 private:
  bool ParseHour(std::string_view token, Key* keys, float* values, ParseError* error) const;

  FeatureHasher hasher_;
  bool labeled_;
  DatasetSchema schema_;
};

}  // namespace ctrps::worker
