// Text form of synthetic rows, in the exact Criteo and Avazu layouts
// (shared/README.md), and its inverse for checking generated files.
//
// A hex field's value id is written as the 8 lowercase hex digits of
// HexToken(field, id): a bijection on 32-bit ids keyed by the field index,
// so values never collide within a field and the id is recoverable. It
// depends on (field, id) only, not on the seed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "worker/synth/planted_model.h"

namespace ctrps::worker::synth {

uint32_t HexToken(int field, int64_t id);
int64_t HexTokenId(int field, uint32_t token);

// The integer code written for value id of a kIntToken field (see FieldSpec).
int64_t IntCode(const FieldSpec& spec, int64_t id);

// Avazu's hour column (YYMMDDHH) for a count of hours since 2014-10-21 00:00,
// the first hour of the real Avazu training data.
int64_t AvazuHourCode(int64_t hours_since_start);

// The file header: Avazu's column names line (with '\n'); empty for Criteo.
std::string DataHeader(DataFormat format);

// Appends one data line (with '\n') to *out. avazu_id and hour_code are
// used by the Avazu layout only.
void AppendRow(const PlantedModel& model, const SynthRow& row, int label, uint64_t avazu_id,
               int64_t hour_code, std::string* out);

// A data line parsed back against the model that wrote it.
struct ParsedRow {
  int label = 0;
  SynthRow row;  // hour_of_day set for Avazu
  uint64_t avazu_id = 0;
  int64_t hour_code = 0;
};

// Parses one line (without '\n'). InvalidArgument naming the column and
// what was expected: a wrong column count, a label not 0/1, a bad integer,
// a token that is not 8 lowercase hex digits or not in the field's
// vocabulary, a bad YYMMDDHH hour.
[[nodiscard]] Status ParseRow(const PlantedModel& model, std::string_view line, ParsedRow* out);

}  // namespace ctrps::worker::synth
