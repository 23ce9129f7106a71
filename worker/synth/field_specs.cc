#include "worker/synth/field_specs.h"

#include <algorithm>
#include <cmath>

namespace ctrps::worker::synth {
namespace {

FieldSpec Numeric(std::string name, double missing, double zero, double negative, double median,
                  double log_sigma) {
  FieldSpec f;
  f.name = std::move(name);
  f.kind = FieldKind::kNumeric;
  f.missing_weight = missing;
  f.zero_prob = zero;
  f.negative_prob = negative;
  f.log_mean = std::log(median);
  f.log_sigma = log_sigma;
  return f;
}

FieldSpec Hex(std::string name, int64_t cardinality, double missing = 0, double head = 0) {
  FieldSpec f;
  f.name = std::move(name);
  f.kind = FieldKind::kHexToken;
  f.cardinality = cardinality;
  f.missing_weight = missing;
  f.head_prob = head;
  return f;
}

FieldSpec Code(std::string name, int64_t cardinality, std::vector<int64_t> values,
               int64_t base = 0, int64_t stride = 1, double head = 0) {
  FieldSpec f;
  f.name = std::move(name);
  f.kind = FieldKind::kIntToken;
  f.cardinality = cardinality;
  f.int_values = std::move(values);
  f.int_base = base;
  f.int_stride = stride;
  f.head_prob = head;
  return f;
}

// Real Criteo: missing rates per column (e.g. I12 77%, C22 76%), integer
// medians and spreads, and the Kaggle training set's distinct counts.
DatasetSpec MakeCriteo() {
  DatasetSpec d{DataFormat::kCriteo, {}, 0.14, {"I6", "C8", "C15", "C21"}};
  d.fields = {
      Numeric("I1", 0.45, 0.35, 0, 2, 1.2),      Numeric("I2", 0, 0.15, 0.08, 5, 2.0),
      Numeric("I3", 0.21, 0.05, 0, 8, 1.5),      Numeric("I4", 0.22, 0.05, 0, 5, 0.9),
      Numeric("I5", 0.026, 0.05, 0, 2500, 1.8),  Numeric("I6", 0.22, 0.15, 0, 30, 1.6),
      Numeric("I7", 0.04, 0.2, 0, 4, 1.5),       Numeric("I8", 0.0005, 0.05, 0, 8, 1.1),
      Numeric("I9", 0.04, 0.02, 0, 40, 1.3),     Numeric("I10", 0.45, 0.4, 0, 1, 0.5),
      Numeric("I11", 0.04, 0.2, 0, 2, 1.0),      Numeric("I12", 0.77, 0.7, 0, 1, 1.2),
      Numeric("I13", 0.22, 0.1, 0, 5, 1.2),
      Hex("C1", 1460),            Hex("C2", 583),            Hex("C3", 10131227, 0.034),
      Hex("C4", 2202608, 0.034),  Hex("C5", 305),            Hex("C6", 24),
      Hex("C7", 12517),           Hex("C8", 633),            Hex("C9", 3),
      Hex("C10", 93145),          Hex("C11", 5683),          Hex("C12", 8351593, 0.034),
      Hex("C13", 3194),           Hex("C14", 27),            Hex("C15", 14992),
      Hex("C16", 5461306, 0.034), Hex("C17", 10),            Hex("C18", 5652),
      Hex("C19", 2173, 0.44),     Hex("C20", 4, 0.44),       Hex("C21", 7046547, 0.034),
      Hex("C22", 18, 0.76),       Hex("C23", 15),            Hex("C24", 286181, 0.034),
      Hex("C25", 105, 0.44),      Hex("C26", 142572, 0.44),
  };
  return d;
}

// Real Avazu: no empty columns (missing_rate defaults to 0; when raised,
// a missing hex value is written as the field's own sentinel token), a
// dominant anonymous device_id, and the real small-integer code sets.
DatasetSpec MakeAvazu() {
  DatasetSpec d{DataFormat::kAvazu, {}, 0.0, {"C18", "app_domain", "device_model", "device_ip"}};
  d.fields = {
      Code("C1", 7, {1005, 1002, 1010, 1012, 1007, 1001, 1008}),
      Code("banner_pos", 7, {0, 1, 7, 2, 4, 5, 3}),
      Hex("site_id", 4737, 1),           Hex("site_domain", 7745, 1),
      Hex("site_category", 26, 1),       Hex("app_id", 8552, 1),
      Hex("app_domain", 559, 1),         Hex("app_category", 36, 1),
      Hex("device_id", 2686408, 1, 0.8), Hex("device_ip", 6729486, 1),
      Hex("device_model", 8251, 1),
      Code("device_type", 5, {1, 0, 4, 5, 2}),
      Code("device_conn_type", 4, {0, 2, 3, 5}),
      Code("C14", 2626, {}, 375, 9),
      Code("C15", 8, {320, 300, 216, 728, 120, 1024, 480, 768}),
      Code("C16", 9, {50, 250, 36, 480, 90, 20, 768, 320, 1024}),
      Code("C17", 435, {}, 112, 6),
      Code("C18", 4, {0, 3, 2, 1}),
      Code("C19", 68, {}, 33, 4),
      Code("C20", 172, {-1}, 100000, 1, 0.47),
      Code("C21", 60, {}, 1, 3),
  };
  return d;
}

}  // namespace

const char* FormatName(DataFormat format) {
  return format == DataFormat::kCriteo ? "criteo" : "avazu";
}

StatusOr<DataFormat> ParseFormat(std::string_view name) {
  if (name == "criteo") return DataFormat::kCriteo;
  if (name == "avazu") return DataFormat::kAvazu;
  return Status::InvalidArgument("unknown data format '" + std::string(name) +
                                 "' (expected criteo or avazu)");
}

const DatasetSpec& GetDatasetSpec(DataFormat format) {
  static const DatasetSpec criteo = MakeCriteo();
  static const DatasetSpec avazu = MakeAvazu();
  return format == DataFormat::kCriteo ? criteo : avazu;
}

int FindField(const DatasetSpec& spec, std::string_view name) {
  for (size_t i = 0; i < spec.fields.size(); ++i) {
    if (spec.fields[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int64_t ScaledCardinality(const FieldSpec& field, double vocab_scale) {
  if (field.kind == FieldKind::kNumeric) return 0;
  if (field.cardinality <= kClosedVocabMax) return field.cardinality;
  double scaled = std::round(static_cast<double>(field.cardinality) * vocab_scale);
  return std::max<int64_t>(kClosedVocabMax, static_cast<int64_t>(scaled));
}

}  // namespace ctrps::worker::synth
