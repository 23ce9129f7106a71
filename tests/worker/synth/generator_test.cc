#include "worker/synth/generator.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "tests/worker/synth/synth_test_util.h"
#include "worker/synth/row_codec.h"
#include "worker/synth/truth.h"

namespace ctrps::worker::synth {
namespace {

using testing::FreshTestDir;
using testing::ReadFile;
using testing::ReadLines;
using testing::SmallOptions;

// Rows spanning three generation chunks, so order across threads matters.
constexpr int64_t kRows = 2 * kRowsPerChunk + 1000;

struct Dataset {
  SynthOptions options;
  SynthReport report;
};

Dataset Generate(SynthOptions o) {
  StatusOr<SynthReport> report = GenerateDataset(o);
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  return {o, report.ok() ? *report : SynthReport{}};
}

TEST(GeneratorTest, SameSeedSameBytesWhateverTheThreads) {
  SynthOptions a = SmallOptions(DataFormat::kCriteo, FreshTestDir("det_a"), kRows);
  a.eval_rows = 3000;
  a.threads = 1;
  SynthOptions b = a;
  b.out_dir = FreshTestDir("det_b");
  b.threads = 3;
  SynthOptions c = a;
  c.out_dir = FreshTestDir("det_c");
  c.seed = 2;
  Generate(a);
  Generate(b);
  Generate(c);
  for (const char* name : {"train.txt", "train.txt.truth", "valid.txt", "test.txt.truth"}) {
    const std::string bytes = ReadFile(a.out_dir + "/" + name);
    EXPECT_GT(bytes.size(), 1000u) << name;
    EXPECT_EQ(bytes, ReadFile(b.out_dir + "/" + name)) << name;
    EXPECT_NE(bytes, ReadFile(c.out_dir + "/" + name)) << name;
  }
  // Splits are different draws, not copies.
  EXPECT_NE(ReadLines(a.out_dir + "/valid.txt"), ReadLines(a.out_dir + "/test.txt"));
}

TEST(GeneratorTest, CriteoFilesParseAndAlignWithTheTruth) {
  Dataset d = Generate(SmallOptions(DataFormat::kCriteo, FreshTestDir("criteo"), 50000));
  const SynthOptions& o = d.options;
  PlantedModel model = PlantedModel::Create(o);
  const std::vector<std::string> data = ReadLines(o.out_dir + "/train.txt");
  const std::vector<std::string> truth = ReadLines(o.out_dir + "/train.txt.truth");
  ASSERT_EQ(data.size(), 50000u);
  ASSERT_EQ(truth.size(), data.size());
  const DatasetSpec& spec = GetDatasetSpec(o.format);
  const int c7 = FindField(spec, "C7");
  double clicks = 0, top_c7 = 0, max_error = 0;
  int64_t empty_columns = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    const std::string& line = data[i];
    ASSERT_EQ(std::count(line.begin(), line.end(), '\t'), 39) << "line " << i + 1;
    // Independent of ParseRow: label, then 13 integers, then 26 tokens.
    size_t start = 0;
    for (int col = 0; col < 40; ++col) {
      size_t end = std::min(line.find('\t', start), line.size());
      const std::string v = line.substr(start, end - start);
      start = end + 1;
      empty_columns += v.empty();
      if (col == 0) {
        ASSERT_TRUE(v == "0" || v == "1") << "line " << i + 1;
      } else if (col <= 13) {
        ASSERT_TRUE(v.empty() || v.find_first_not_of("-0123456789") == std::string::npos) << v;
      } else {
        ASSERT_TRUE(v.empty() || (v.size() == 8 && v.find_first_not_of("0123456789abcdef") ==
                                                       std::string::npos)) << v;
      }
    }
    ParsedRow parsed;
    Status st = ParseRow(model, line, &parsed);
    ASSERT_TRUE(st.ok()) << "train.txt:" << i + 1 << ": " << st.ToString();
    clicks += parsed.label;
    top_c7 += parsed.row.values[c7] == 1;
    // The truth line is the probability of exactly this data line.
    max_error = std::max(max_error, std::abs(model.Probability(parsed.row) - std::stod(truth[i])));
  }
  EXPECT_LT(max_error, 6e-10);
  EXPECT_GT(clicks / data.size(), 0.20);
  EXPECT_LT(clicks / data.size(), 0.25);
  EXPECT_NEAR(static_cast<double>(empty_columns) / (data.size() * 39), 0.14, 0.02);
  // Zipf skew: the top C7 value's share is 1 / H(n, s).
  double h = 0;
  for (int64_t k = 1; k <= model.fields()[c7].cardinality; ++k) h += std::pow(k, -o.zipf_exponent);
  EXPECT_NEAR(top_c7 / data.size(), 1 / h, 0.01);
  EXPECT_GT(top_c7 / data.size(), 0.1);  // vs 1/1000 if uniform
}

// Pearson chi-square of label against a field's 30 most frequent values
// (plus one bucket for the rest): about 30 under independence.
double ChiSquare(const std::vector<std::pair<std::string, int>>& value_label) {
  std::map<std::string, std::pair<double, double>> by_value;  // value -> (rows, clicks)
  double total_clicks = 0;
  for (const auto& [v, y] : value_label) {
    by_value[v].first += 1;
    by_value[v].second += y;
    total_clicks += y;
  }
  std::vector<std::pair<double, double>> groups;
  for (const auto& [v, c] : by_value) groups.push_back(c);
  std::sort(groups.rbegin(), groups.rend());
  std::pair<double, double> rest{0, 0};
  for (size_t i = 30; i < groups.size(); ++i) {
    rest.first += groups[i].first;
    rest.second += groups[i].second;
  }
  groups.resize(std::min<size_t>(30, groups.size()));
  groups.push_back(rest);
  const double ctr = total_clicks / value_label.size();
  double chi = 0;
  for (const auto& [rows, clicks] : groups) {
    if (rows == 0) continue;
    const double e1 = rows * ctr, e0 = rows * (1 - ctr);
    chi += (clicks - e1) * (clicks - e1) / e1 + (rows - clicks - e0) * (rows - clicks - e0) / e0;
  }
  return chi;
}

TEST(GeneratorTest, NoiseFieldsAreIndependentOfTheLabel) {
  SynthOptions o = SmallOptions(DataFormat::kCriteo, FreshTestDir("noise"), 60000);
  o.eval_rows = 0;
  Generate(o);
  const std::vector<std::string> data = ReadLines(o.out_dir + "/train.txt");
  const DatasetSpec& spec = GetDatasetSpec(o.format);
  auto column = [&](const std::string& field) {
    const int col = 1 + FindField(spec, field);
    std::vector<std::pair<std::string, int>> out;
    for (const std::string& line : data) {
      size_t start = 0;
      for (int c = 0; c < col; ++c) start = line.find('\t', start) + 1;
      std::string v = line.substr(start, line.find('\t', start) - start);
      if (col <= 13 && !v.empty()) v = std::to_string(std::llround(std::log2(1.0 + std::abs(std::stod(v)))));
      out.emplace_back(v, line[0] - '0');
    }
    return out;
  };
  // chi-square(30): mean 30, sd 7.7; 75 is about six sd out.
  for (const std::string& noise : spec.default_noise_fields) {
    EXPECT_LT(ChiSquare(column(noise)), 75) << noise;
  }
  // Most signal fields are far from independent (a few with tiny weights
  // or few values may not be, at this size).
  int dependent = 0, signal = 0;
  for (const FieldSpec& f : spec.fields) {
    const auto& noise = spec.default_noise_fields;
    if (std::find(noise.begin(), noise.end(), f.name) != noise.end()) continue;
    ++signal;
    dependent += ChiSquare(column(f.name)) > 75;
  }
  EXPECT_EQ(signal, 35);
  EXPECT_GE(dependent, 25);
}

TEST(GeneratorTest, AvazuFilesHaveTheRealLayout) {
  SynthOptions o = SmallOptions(DataFormat::kAvazu, FreshTestDir("avazu"), 24000);
  Dataset d = Generate(o);
  PlantedModel model = PlantedModel::Create(o);
  struct Split {
    const char* name;
    int64_t first_day, last_day;  // YYMMDD
  } splits[] = {{"train", 141021, 141030}, {"valid", 141031, 141031}, {"test", 141101, 141101}};
  for (const Split& s : splits) {
    const std::vector<std::string> data = ReadLines(o.out_dir + "/" + s.name + ".csv");
    const std::vector<std::string> truth = ReadLines(o.out_dir + "/" + s.name + ".csv.truth");
    ASSERT_EQ(data.size(), truth.size()) << s.name;
    ASSERT_EQ(data[0] + "\n", DataHeader(DataFormat::kAvazu));
    EXPECT_EQ(truth[0], "click_prob");
    int64_t last_hour = 0;
    std::set<int64_t> days;
    for (size_t i = 1; i < data.size(); ++i) {
      ASSERT_EQ(std::count(data[i].begin(), data[i].end(), ','), 23) << s.name << ":" << i + 1;
      ParsedRow parsed;
      Status st = ParseRow(model, data[i], &parsed);
      ASSERT_TRUE(st.ok()) << s.name << ".csv:" << i + 1 << ": " << st.ToString();
      EXPECT_NEAR(model.Probability(parsed.row), std::stod(truth[i]), 6e-10);
      EXPECT_GE(parsed.hour_code, last_hour);  // time-ordered, like the real file
      last_hour = parsed.hour_code;
      days.insert(parsed.hour_code / 100);
    }
    EXPECT_EQ(*days.begin(), s.first_day) << s.name;
    EXPECT_EQ(*days.rbegin(), s.last_day) << s.name;
  }
}

TEST(GeneratorTest, BayesMetricsFromTheTruth) {
  SynthOptions o = SmallOptions(DataFormat::kCriteo, FreshTestDir("bayes"), 50000);
  o.eval_rows = 50000;
  Dataset d = Generate(o);
  ASSERT_EQ(d.report.splits.size(), 3u);
  const SplitReport& test = d.report.splits[2];
  EXPECT_EQ(test.name, "test");
  EXPECT_EQ(test.bayes_auc_rows, 50000);
  StatusOr<EvalMetrics> m = EvaluateTruth(o.out_dir + "/test.txt.truth", o.out_dir + "/test.txt");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_DOUBLE_EQ(m->auc, test.bayes_auc);
  EXPECT_NEAR(m->logloss, test.bayes_logloss, 1e-9);
  EXPECT_EQ(m->positives, test.clicks);
  // A label-independent score sits at 1/2; the truth well above, near the
  // model's own estimate of its Bayes AUC.
  std::vector<float> scores, labels;
  const std::vector<std::string> data = ReadLines(o.out_dir + "/test.txt");
  for (size_t i = 0; i < data.size(); ++i) {
    scores.push_back(static_cast<float>(UnitFromHash(Mix64(i))));
    labels.push_back(data[i][0] == '1');
  }
  const double random_auc = *ComputeAuc(scores, labels);
  EXPECT_NEAR(random_auc, 0.5, 0.01);
  EXPECT_GT(test.bayes_auc, random_auc + 0.25);
  EXPECT_NEAR(test.bayes_auc, d.report.oracle.full, 0.015);
  // The truth beats always predicting the base rate.
  EXPECT_LT(m->normalized_entropy, 0.9);
  EXPECT_NEAR(m->calibration_ratio, 1.0, 0.03);
}

TEST(GeneratorTest, UpToDateDetection) {
  SynthOptions o = SmallOptions(DataFormat::kCriteo, FreshTestDir("uptodate"), 2000);
  EXPECT_FALSE(*DatasetIsUpToDate(o));  // nothing there yet
  Generate(o);
  EXPECT_TRUE(*DatasetIsUpToDate(o));
  SynthOptions other_threads = o;
  other_threads.threads = 7;  // does not change the output
  EXPECT_TRUE(*DatasetIsUpToDate(other_threads));
  SynthOptions other_seed = o;
  other_seed.seed = 9;
  EXPECT_FALSE(*DatasetIsUpToDate(other_seed));
  SynthOptions other_noise = o;
  other_noise.noise_fields = std::vector<std::string>{"C1"};
  EXPECT_FALSE(*DatasetIsUpToDate(other_noise));
  std::filesystem::resize_file(o.out_dir + "/valid.txt", 10);  // a damaged file
  EXPECT_FALSE(*DatasetIsUpToDate(o));
  testing::WriteFile(o.out_dir + "/meta.json", "{}");
  EXPECT_EQ(DatasetIsUpToDate(o).status().code(), Status::Code::kCorruption);
}

TEST(GeneratorTest, MetaJsonDescribesThePlantedModel) {
  SynthOptions o = SmallOptions(DataFormat::kAvazu, FreshTestDir("meta"), 3000);
  o.eval_rows = 0;
  o.noise_fields = std::vector<std::string>{"site_id", "C21"};
  Generate(o);
  EXPECT_FALSE(std::filesystem::exists(o.out_dir + "/valid.csv"));
  const std::string meta = ReadFile(o.out_dir + "/meta.json");
  for (const char* needle :
       {"\"format\": \"avazu\"", "\"seed\": 1", "\"noise_fields\": [\n    \"site_id\",\n    \"C21\"\n  ]",
        "\"bayes_auc\": 0.", "\"oracle_auc\"", "\"interaction_pairs\"", "\"mlp_fields\"",
        "\"name\": \"site_id\", \"kind\": \"hex\"", "\"files\": {\"train.csv\": "}) {
    EXPECT_NE(meta.find(needle), std::string::npos) << needle << "\n" << meta;
  }
}

TEST(GeneratorTest, RejectsBadOptionsAndReportsIoErrors) {
  SynthOptions o = SmallOptions(DataFormat::kCriteo, FreshTestDir("bad"), 100);
  SynthOptions bad = o;
  bad.noise_fields = std::vector<std::string>{"C99"};
  Status st = GenerateDataset(bad).status();
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("noise field 'C99' is not a field of criteo data"), std::string::npos) << st.message();
  bad = o;
  bad.train_rows = 0;
  EXPECT_FALSE(GenerateDataset(bad).ok());
  bad = o;
  bad.zipf_exponent = 0;
  EXPECT_FALSE(GenerateDataset(bad).ok());
  bad = o;
  bad.model.num_interaction_pairs = 1000;
  EXPECT_FALSE(GenerateDataset(bad).ok());
  bad = o;
  testing::WriteFile(o.out_dir + "/file", "x");
  bad.out_dir = o.out_dir + "/file/sub";  // a path through a regular file
  EXPECT_EQ(GenerateDataset(bad).status().code(), Status::Code::kIOError);
}

}  // namespace
}  // namespace ctrps::worker::synth
