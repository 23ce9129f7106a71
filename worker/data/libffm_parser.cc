#include "worker/data/libffm_parser.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "worker/data/text_util.h"

namespace ctrps::worker {
namespace {

bool IsSeparator(char c) { return c == ' ' || c == '\t'; }

}  // namespace

LibffmParser::LibffmParser(int num_fields, uint64_t hash_seed, bool labeled)
    : hasher_(num_fields, hash_seed), labeled_(labeled), seen_(num_fields) {
  for (int f = 0; f < num_fields; ++f) schema_.field_names.push_back("field" + std::to_string(f));
}

std::string LibffmParser::ColumnName(int column) const {
  return column == 0 ? "label" : column > 0 ? "token " + std::to_string(column) : "line";
}

bool LibffmParser::ParseToken(int index, std::string_view token, Key* keys, float* values,
                              ParseError* error) {
  error->column = index;
  size_t c1 = token.find(':');
  size_t c2 = c1 == token.npos ? token.npos : token.find(':', c1 + 1);
  if (c2 == token.npos || token.find(':', c2 + 1) != token.npos) {
    error->reason = MalformedReason::kBadToken;
    error->detail = "expected field:feature:value, got " + QuoteForMessage(token);
    return false;
  }
  std::string_view field_text = token.substr(0, c1);
  std::string_view feature = token.substr(c1 + 1, c2 - c1 - 1);
  std::string_view value_text = token.substr(c2 + 1);
  int64_t field;
  if (!IsAllDigits(field_text) || !ParseInt64(field_text, &field)) {
    error->reason = MalformedReason::kBadToken;
    error->detail = "expected a field index before the first ':', got " + QuoteForMessage(token);
    return false;
  }
  if (field >= hasher_.num_fields()) {
    error->reason = MalformedReason::kFieldOutOfRange;
    error->detail = "field " + std::to_string(field) + " in " + QuoteForMessage(token) +
                    " is not in [0, " + std::to_string(hasher_.num_fields()) + ")";
    return false;
  }
  if (feature.empty()) {
    error->reason = MalformedReason::kBadToken;
    error->detail = "empty feature in " + QuoteForMessage(token);
    return false;
  }
  if (std::any_of(feature.begin(), feature.end(), [](char c) { return IsControlByte(static_cast<unsigned char>(c)); })) {
    error->reason = MalformedReason::kControlCharacter;
    error->detail = "control byte in feature " + QuoteForMessage(feature);
    return false;
  }
  double value;
  if (!ParseFiniteDouble(value_text, &value) || std::fabs(value) > std::numeric_limits<float>::max()) {
    error->reason = MalformedReason::kBadNumber;
    error->detail = "expected a finite number within the float range after the second ':', got " +
                    QuoteForMessage(token);
    return false;
  }
  const int f = static_cast<int>(field);
  if (seen_[f]) {
    error->reason = MalformedReason::kDuplicateField;
    error->detail = "field " + std::to_string(f) + " appears more than once (" + QuoteForMessage(token) +
                    "); each field may hold one feature per line";
    return false;
  }
  seen_[f] = 1;
  keys[f] = hasher_.TokenKey(f, feature);
  values[f] = static_cast<float>(value);
  return true;
}

bool LibffmParser::Parse(std::string_view line, float* label, Key* keys, float* values,
                         ParseError* error) {
  std::fill(seen_.begin(), seen_.end(), 0);
  const int num_fields = hasher_.num_fields();
  for (int f = 0; f < num_fields; ++f) {
    keys[f] = FeatureHasher::MissingKey(f);
    values[f] = 1.0f;
  }
  *label = 0.0f;
  size_t pos = 0;
  const int first = labeled_ ? 0 : 1;  // token 0 is the label
  int index = first;
  while (true) {
    while (pos < line.size() && IsSeparator(line[pos])) ++pos;
    if (pos == line.size()) break;
    size_t stop = pos;
    while (stop < line.size() && !IsSeparator(line[stop])) ++stop;
    std::string_view token = line.substr(pos, stop - pos);
    pos = stop;
    if (index == 0) {
      if (token == "1" || token == "+1") {
        *label = 1.0f;
      } else if (token == "0" || token == "-1") {
        *label = 0.0f;
      } else {
        error->reason = MalformedReason::kBadLabel;
        error->column = 0;
        error->detail = "expected a label 0, 1, -1 or +1, got " + QuoteForMessage(token);
        return false;
      }
    } else if (!ParseToken(index, token, keys, values, error)) {
      return false;
    }
    ++index;
  }
  if (index == first) {
    error->reason = labeled_ ? MalformedReason::kBadLabel : MalformedReason::kBadToken;
    error->column = labeled_ ? 0 : -1;
    error->detail = labeled_ ? "expected a label, got only whitespace"
                             : "expected field:feature:value tokens, got only whitespace";
    return false;
  }
  return true;
}

}  // namespace ctrps::worker
