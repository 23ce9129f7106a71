#include "worker/synth/meta_json.h"

#include <cmath>
#include <cstdio>

#include "common/metrics_writer.h"

namespace ctrps::worker::synth {
namespace {

std::string Q(const std::string& s) { return "\"" + JsonEscape(s) + "\""; }

std::string N(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

std::string I(int64_t v) { return std::to_string(v); }

const char* KindName(FieldKind kind) {
  switch (kind) {
    case FieldKind::kNumeric: return "numeric";
    case FieldKind::kHexToken: return "hex";
    case FieldKind::kIntToken: return "int_code";
  }
  return "?";
}

template <typename T, typename F>
std::string List(const std::vector<T>& items, F item, const std::string& indent) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ",\n" : "\n") + indent + "  " + item(items[i]);
  return out + (items.empty() ? "]" : "\n" + indent + "]");
}

}  // namespace

std::string BuildMetaJson(const SynthOptions& options, const PlantedModel& model,
                          const SynthReport& report) {
  const auto& fields = model.fields();
  const PlantedModelOptions& m = options.model;
  std::string j = "{\n";
  j += "  \"generator\": \"ctrps gen-data\",\n";
  j += "  \"options_key\": " + Q(SynthFingerprint(options)) + ",\n";
  j += "  \"format\": " + Q(FormatName(options.format)) + ",\n";
  j += "  \"seed\": " + std::to_string(options.seed) + ",\n";
  j += "  \"vocab_scale\": " + N(options.vocab_scale) + ",\n";
  j += "  \"zipf_exponent\": " + N(options.zipf_exponent) + ",\n";
  j += "  \"missing_rate\": " + N(options.ResolvedMissingRate()) + ",\n";
  j += "  \"noise_fields\": " +
       List(options.ResolvedNoiseFields(), [](const std::string& s) { return Q(s); }, "  ") + ",\n";
  j += "  \"truth_format\": " +
       Q("<data file>.truth: line n holds the true click probability of data line n, 9 decimals; "
         "Avazu's line 1 is the header click_prob") + ",\n";
  j += "  \"model\": {\n";
  j += "    \"target_ctr\": " + N(m.target_ctr) + ",\n";
  j += "    \"bias\": " + N(model.bias()) + ",\n";
  j += "    \"logit_std\": " + N(model.logit_std()) + ",\n";
  const OracleAucs& oracle = model.oracle_aucs();
  j += "    \"oracle_auc\": {\"additive\": " + N(oracle.additive) + ", \"with_interactions\": " +
       N(oracle.with_interactions) + ", \"full\": " + N(oracle.full) + "},\n";
  j += "    \"latent_dim\": " + I(m.latent_dim) + ",\n";
  j += "    \"term_std\": {\"first_order\": " + N(m.first_order_std) + ", \"interaction\": " +
       N(m.interaction_std) + ", \"mlp\": " + N(m.mlp_std) + ", \"numeric\": " + N(m.numeric_std) + "},\n";
  j += "    \"interaction_pairs\": " + List(model.pairs(), [&](const InteractionPair& p) {
         return "[" + Q(fields[p.a].spec.name) + ", " + Q(fields[p.b].spec.name) + ", " + N(p.weight) + "]";
       }, "    ") + ",\n";
  j += "    \"mlp_fields\": " +
       List(model.mlp_fields(), [&](int f) { return Q(fields[f].spec.name); }, "    ") + ",\n";
  j += "    \"mlp_hidden\": [" + I(m.mlp_hidden) + ", " + I(m.mlp_hidden / 2) + "]\n  },\n";
  j += "  \"fields\": " + List(fields, [](const SynthField& f) {
         return "{\"name\": " + Q(f.spec.name) + ", \"kind\": " + Q(KindName(f.spec.kind)) +
                ", \"cardinality\": " + I(f.cardinality) + ", \"missing_prob\": " + N(f.missing_prob) +
                ", \"head_prob\": " + N(f.spec.head_prob) + ", \"noise\": " + (f.noise ? "true" : "false") +
                ", \"importance\": " + N(f.importance) + "}";
       }, "  ") + ",\n";
  j += "  \"splits\": " + List(report.splits, [](const SplitReport& s) {
         return "{\"name\": " + Q(s.name) + ", \"file\": " + Q(s.data_file) + ", \"truth_file\": " +
                Q(s.truth_file) + ", \"rows\": " + I(s.rows) + ", \"clicks\": " + I(s.clicks) +
                ", \"click_rate\": " + N(s.rows ? static_cast<double>(s.clicks) / s.rows : NAN) +
                ", \"mean_truth\": " + N(s.mean_truth) + ", \"bayes_auc\": " + N(s.bayes_auc) +
                ", \"bayes_auc_rows\": " + I(s.bayes_auc_rows) + ", \"bayes_logloss\": " +
                N(s.bayes_logloss) + ", \"bayes_normalized_entropy\": " + N(s.bayes_normalized_entropy) +
                ", \"seconds\": " + N(s.seconds) + "}";
       }, "  ") + ",\n";
  j += "  \"files\": {";
  for (size_t i = 0; i < report.splits.size(); ++i) {
    const SplitReport& s = report.splits[i];
    j += (i ? ", " : "") + Q(s.data_file) + ": " + I(s.data_bytes) + ", " + Q(s.truth_file) + ": " +
         I(s.truth_bytes);
  }
  j += "}\n}\n";
  return j;
}

StatusOr<MetaSummary> ParseMetaSummary(std::string_view json) {
  MetaSummary out;
  auto corrupt = [](const std::string& m) { return Status::Corruption("meta.json: " + m); };
  const std::string_view key_tag = "\"options_key\": \"";
  size_t k = json.find(key_tag);
  if (k == std::string_view::npos) return corrupt("no options_key");
  size_t k_end = json.find('"', k + key_tag.size());
  if (k_end == std::string_view::npos) return corrupt("unterminated options_key");
  out.options_key = std::string(json.substr(k + key_tag.size(), k_end - k - key_tag.size()));
  const std::string_view files_tag = "\"files\": {";
  size_t f = json.find(files_tag);
  if (f == std::string_view::npos) return corrupt("no files object");
  size_t pos = f + files_tag.size();
  const size_t close = json.find('}', pos);
  if (close == std::string_view::npos) return corrupt("unterminated files object");
  while (true) {
    size_t q1 = json.find('"', pos);
    if (q1 == std::string_view::npos || q1 > close) break;
    size_t q2 = json.find('"', q1 + 1);
    size_t colon = json.find(':', q2);
    if (q2 == std::string_view::npos || colon == std::string_view::npos || colon > close) {
      return corrupt("malformed files object");
    }
    size_t num = colon + 1;
    while (num < close && json[num] == ' ') ++num;
    int64_t bytes = 0;
    size_t end = num;
    while (end < close && json[end] >= '0' && json[end] <= '9') bytes = bytes * 10 + (json[end++] - '0');
    if (end == num) return corrupt("files: no byte count for " + std::string(json.substr(q1, q2 - q1 + 1)));
    out.file_bytes.emplace_back(std::string(json.substr(q1 + 1, q2 - q1 - 1)), bytes);
    pos = end;
  }
  if (out.file_bytes.empty()) return corrupt("files object is empty");
  return out;
}

}  // namespace ctrps::worker::synth
