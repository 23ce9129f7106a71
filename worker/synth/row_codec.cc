#include "worker/synth/row_codec.h"

#include <algorithm>
#include <vector>

#include "common/check.h"
#include "common/hash.h"

namespace ctrps::worker::synth {
namespace {

constexpr uint32_t kM1 = 0x85ebca6b, kM2 = 0xc2b2ae35;

constexpr uint32_t InverseMod32(uint32_t a) {  // Newton: each step doubles the correct bits
  uint32_t x = a;
  for (int i = 0; i < 5; ++i) x *= 2 - a * x;
  return x;
}
static_assert(InverseMod32(kM1) * kM1 == 1 && InverseMod32(kM2) * kM2 == 1);

// MurmurHash3's finaliser: a bijection of 32-bit words.
constexpr uint32_t Fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= kM1;
  h ^= h >> 13;
  h *= kM2;
  h ^= h >> 16;
  return h;
}

constexpr uint32_t InverseFmix32(uint32_t h) {
  h ^= h >> 16;
  h *= InverseMod32(kM2);
  h ^= (h >> 13) ^ (h >> 26);
  h *= InverseMod32(kM1);
  h ^= h >> 16;
  return h;
}
static_assert(InverseFmix32(Fmix32(0xdeadbeef)) == 0xdeadbeef);

uint32_t FieldSalt(int field) { return static_cast<uint32_t>(Mix64(0x70c3e5a1ULL + field)); }

void AppendDecimal(uint64_t u, bool negative, std::string* out) {
  char buf[24];
  char* end = buf + sizeof(buf);
  char* p = end;
  do {
    *--p = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (negative) *--p = '-';
  out->append(p, end - p);
}

void AppendInt(int64_t v, std::string* out) {
  AppendDecimal(v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v), v < 0, out);
}

void AppendHex8(uint32_t v, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char buf[8];
  for (int i = 7; i >= 0; --i, v >>= 4) buf[i] = kDigits[v & 15];
  out->append(buf, 8);
}

// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

constexpr int64_t kAvazuStartDay = 16364;  // 2014-10-21

StatusOr<int64_t> ParseInt(std::string_view s) {
  bool neg = !s.empty() && s[0] == '-';
  std::string_view digits = neg ? s.substr(1) : s;
  if (digits.empty() || digits.size() > 19) return Status::InvalidArgument("");
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return Status::InvalidArgument("");
    v = v * 10 + (c - '0');
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) return Status::InvalidArgument("");
  return neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
}

StatusOr<uint64_t> ParseU64(std::string_view s) {
  if (s.empty() || s.size() > 20) return Status::InvalidArgument("");
  unsigned __int128 v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return Status::InvalidArgument("");
    v = v * 10 + (c - '0');
  }
  if (v > UINT64_MAX) return Status::InvalidArgument("");
  return static_cast<uint64_t>(v);
}

StatusOr<uint32_t> ParseHex8(std::string_view s) {
  if (s.size() != 8) return Status::InvalidArgument("");
  uint32_t v = 0;
  for (char c : s) {
    int d = c >= '0' && c <= '9' ? c - '0' : (c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1);
    if (d < 0) return Status::InvalidArgument("");
    v = v << 4 | static_cast<uint32_t>(d);
  }
  return v;
}

}  // namespace

uint32_t HexToken(int field, int64_t id) {
  return Fmix32(static_cast<uint32_t>(id) ^ FieldSalt(field));
}

int64_t HexTokenId(int field, uint32_t token) { return InverseFmix32(token) ^ FieldSalt(field); }

int64_t IntCode(const FieldSpec& spec, int64_t id) {
  DCHECK(id >= 1) << "integer-coded fields are never missing";
  const int64_t listed = static_cast<int64_t>(spec.int_values.size());
  if (id >= 1 && id <= listed) return spec.int_values[id - 1];
  return spec.int_base + spec.int_stride * (id - 1 - listed);
}

int64_t AvazuHourCode(int64_t hours_since_start) {
  int64_t y;
  int m, d;
  CivilFromDays(kAvazuStartDay + hours_since_start / 24, &y, &m, &d);
  return ((((y % 100) * 100 + m) * 100 + d) * 100) + hours_since_start % 24;
}

std::string DataHeader(DataFormat format) {
  if (format == DataFormat::kCriteo) return "";
  std::string h = "id,click,hour";
  for (const FieldSpec& f : GetDatasetSpec(format).fields) h += "," + f.name;
  return h + "\n";
}

void AppendRow(const PlantedModel& model, const SynthRow& row, int label, uint64_t avazu_id,
               int64_t hour_code, std::string* out) {
  const bool criteo = model.format() == DataFormat::kCriteo;
  const char sep = criteo ? '\t' : ',';
  if (!criteo) {
    AppendDecimal(avazu_id, false, out);
    out->push_back(sep);
  }
  out->push_back(label ? '1' : '0');
  if (!criteo) {
    out->push_back(sep);
    AppendInt(hour_code, out);
  }
  const std::vector<SynthField>& fields = model.fields();
  for (size_t i = 0; i < fields.size(); ++i) {
    out->push_back(sep);
    const int64_t v = row.values[i];
    switch (fields[i].spec.kind) {
      case FieldKind::kNumeric:
        if (v != kMissingNumeric) AppendInt(v, out);
        break;
      case FieldKind::kHexToken:
        // Criteo leaves a missing value empty; Avazu has no empty columns and
        // writes the field's sentinel token (id 0) instead.
        if (v != 0 || !criteo) AppendHex8(HexToken(i, v), out);
        break;
      case FieldKind::kIntToken:
        AppendInt(IntCode(fields[i].spec, v), out);
        break;
    }
  }
  out->push_back('\n');
}

Status ParseRow(const PlantedModel& model, std::string_view line, ParsedRow* out) {
  const bool criteo = model.format() == DataFormat::kCriteo;
  const char sep = criteo ? '\t' : ',';
  std::vector<std::string_view> cols;
  size_t start = 0;
  while (true) {
    size_t end = line.find(sep, start);
    cols.push_back(line.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  const std::vector<SynthField>& fields = model.fields();
  const size_t lead = criteo ? 1 : 3;
  if (cols.size() != lead + fields.size()) {
    return Status::InvalidArgument("expected " + std::to_string(lead + fields.size()) +
                                   " columns, found " + std::to_string(cols.size()));
  }
  auto bad = [&](size_t col, const std::string& name, const std::string& what) {
    return Status::InvalidArgument("column " + std::to_string(col + 1) + " (" + name + "): '" +
                                   std::string(cols[col]) + "' is not " + what);
  };
  const size_t label_col = criteo ? 0 : 1;
  if (cols[label_col] != "0" && cols[label_col] != "1") return bad(label_col, "label", "0 or 1");
  out->label = cols[label_col][0] - '0';
  out->row.values.assign(fields.size(), 0);
  out->row.hour_of_day = 0;
  if (!criteo) {
    auto id = ParseU64(cols[0]);
    if (!id.ok()) return bad(0, "id", "a decimal of at most 20 digits");
    out->avazu_id = *id;
    auto hour = ParseInt(cols[2]);
    const int64_t h = hour.ok() ? *hour : -1;
    const int64_t mm = h / 10000 % 100, dd = h / 100 % 100, hh = h % 100;
    if (cols[2].size() != 8 || h < 0 || mm < 1 || mm > 12 || dd < 1 || dd > 31 || hh > 23) {
      return bad(2, "hour", "YYMMDDHH");
    }
    out->hour_code = h;
    out->row.hour_of_day = static_cast<int>(hh);
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    const size_t col = lead + i;
    const std::string_view s = cols[col];
    const SynthField& f = fields[i];
    if (f.spec.kind == FieldKind::kNumeric) {
      if (s.empty()) {
        out->row.values[i] = kMissingNumeric;
        continue;
      }
      auto v = ParseInt(s);
      if (!v.ok()) return bad(col, f.spec.name, "an integer");
      out->row.values[i] = *v;
    } else if (f.spec.kind == FieldKind::kHexToken) {
      if (s.empty() && criteo) continue;  // missing: id 0
      auto token = ParseHex8(s);
      if (!token.ok()) return bad(col, f.spec.name, "8 lowercase hex digits");
      const int64_t id = HexTokenId(i, *token);
      if (id > f.cardinality || (id == 0 && criteo)) {
        return bad(col, f.spec.name, "a value of this field's vocabulary");
      }
      out->row.values[i] = id;
    } else {
      auto code = ParseInt(s);
      int64_t id = 0;
      if (code.ok()) {
        auto it = std::find(f.spec.int_values.begin(), f.spec.int_values.end(), *code);
        const int64_t listed = static_cast<int64_t>(f.spec.int_values.size());
        const int64_t offset = *code - f.spec.int_base;
        if (it != f.spec.int_values.end()) {
          id = 1 + (it - f.spec.int_values.begin());
        } else if (offset >= 0 && offset % f.spec.int_stride == 0) {
          id = listed + 1 + offset / f.spec.int_stride;
        }
      }
      if (id < 1 || id > f.cardinality) return bad(col, f.spec.name, "a code of this field");
      out->row.values[i] = id;
    }
  }
  return Status::OK();
}

}  // namespace ctrps::worker::synth
