#include "worker/synth/synth_options.h"

#include <algorithm>
#include <cstdio>

namespace ctrps::worker::synth {
namespace {

// Bump whenever the generator's output for the same options changes.
constexpr int kGeneratorVersion = 1;

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

}  // namespace

Status PlantedModelOptions::Validate(int num_signal_fields) const {
  auto bad = [](const std::string& m) { return Status::InvalidArgument("planted model: " + m); };
  if (!(target_ctr > 0.001 && target_ctr < 0.999)) {
    return bad("target_ctr " + Num(target_ctr) + " is not in (0.001, 0.999)");
  }
  if (latent_dim < 1 || latent_dim > 32) return bad("latent_dim must be in [1, 32]");
  const int max_pairs = num_signal_fields * (num_signal_fields - 1) / 2;
  if (num_interaction_pairs < 0 || num_interaction_pairs > max_pairs) {
    return bad("num_interaction_pairs " + std::to_string(num_interaction_pairs) +
               " is not in [0, " + std::to_string(max_pairs) + "] for " +
               std::to_string(num_signal_fields) + " signal fields");
  }
  if (num_mlp_fields < 0 || num_mlp_fields > std::min(16, num_signal_fields)) {
    return bad("num_mlp_fields must be in [0, min(16, signal fields = " +
               std::to_string(num_signal_fields) + ")]");
  }
  if (mlp_hidden < 2 || mlp_hidden > 64) return bad("mlp_hidden must be in [2, 64]");
  for (double s : {first_order_std, interaction_std, mlp_std, numeric_std}) {
    if (!(s >= 0 && s <= 10)) return bad("term stds must be in [0, 10], got " + Num(s));
  }
  return Status::OK();
}

Status SynthOptions::Validate() const {
  auto bad = [](const std::string& m) { return Status::InvalidArgument("gen-data: " + m); };
  if (out_dir.empty()) return bad("out_dir is empty");
  if (train_rows <= 0) return bad("train_rows must be > 0, got " + std::to_string(train_rows));
  if (eval_rows && *eval_rows < 0) return bad("eval_rows must be >= 0");
  if (!(vocab_scale > 0 && vocab_scale <= 100)) return bad("vocab_scale " + Num(vocab_scale) + " is not in (0, 100]");
  if (!(zipf_exponent > 0 && zipf_exponent <= 10)) {
    return bad("zipf exponent " + Num(zipf_exponent) + " is not in (0, 10]");
  }
  if (missing_rate && !(*missing_rate >= 0 && *missing_rate <= 0.95)) {
    return bad("missing_rate " + Num(*missing_rate) + " is not in [0, 0.95]");
  }
  if (threads < 1 || threads > 256) return bad("threads must be in [1, 256]");
  const DatasetSpec& spec = GetDatasetSpec(format);
  std::vector<std::string> noise = ResolvedNoiseFields();
  for (const std::string& name : noise) {
    if (FindField(spec, name) < 0) {
      std::string known;
      for (const FieldSpec& f : spec.fields) known += (known.empty() ? "" : ",") + f.name;
      return bad("noise field '" + name + "' is not a field of " + FormatName(format) + " data (" +
                 known + ")");
    }
    if (std::count(noise.begin(), noise.end(), name) > 1) return bad("noise field '" + name + "' listed twice");
  }
  int signal = 0;
  for (const FieldSpec& f : spec.fields) {
    if (f.kind != FieldKind::kNumeric && std::find(noise.begin(), noise.end(), f.name) == noise.end()) ++signal;
  }
  return model.Validate(signal).WithContext("gen-data");
}

int64_t SynthOptions::ResolvedEvalRows() const {
  return eval_rows ? *eval_rows : std::max<int64_t>(1, train_rows / 10);
}

std::vector<std::string> SynthOptions::ResolvedNoiseFields() const {
  return noise_fields ? *noise_fields : GetDatasetSpec(format).default_noise_fields;
}

double SynthOptions::ResolvedMissingRate() const {
  return missing_rate ? *missing_rate : GetDatasetSpec(format).default_missing_rate;
}

std::string SynthFingerprint(const SynthOptions& o) {
  std::string noise;
  for (const std::string& n : o.ResolvedNoiseFields()) noise += (noise.empty() ? "" : ",") + n;
  const PlantedModelOptions& m = o.model;
  return "v" + std::to_string(kGeneratorVersion) + ";format=" + FormatName(o.format) +
         ";train_rows=" + std::to_string(o.train_rows) +
         ";eval_rows=" + std::to_string(o.ResolvedEvalRows()) + ";seed=" + std::to_string(o.seed) +
         ";noise=" + noise + ";vocab_scale=" + Num(o.vocab_scale) + ";zipf=" + Num(o.zipf_exponent) +
         ";missing=" + Num(o.ResolvedMissingRate()) + ";ctr=" + Num(m.target_ctr) +
         ";k=" + std::to_string(m.latent_dim) + ";pairs=" + std::to_string(m.num_interaction_pairs) +
         ";mlp_fields=" + std::to_string(m.num_mlp_fields) + ";mlp_hidden=" + std::to_string(m.mlp_hidden) +
         ";std=" + Num(m.first_order_std) + "/" + Num(m.interaction_std) + "/" + Num(m.mlp_std) + "/" +
         Num(m.numeric_std);
}

}  // namespace ctrps::worker::synth
