// The serving commands end to end, through the real `ctrps` binary:
// gen-data, train, export (native and ONNX), eval on the model and on its
// bundle (the same scores and AUC), predict, and the errors users hit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

const std::string kBin = CTRPS_BIN;

// Per process: ctest runs each test of the suite as its own process, maybe
// in parallel, and each sets the suite up.
std::string TmpDir() {
  const char* t = std::getenv("CTRPS_TEST_TMPDIR");
  std::string d = std::string(t ? t : "/tmp") + "/serve_cli_test_" + std::to_string(getpid());
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<double> Numbers(const std::string& path) {
  std::ifstream in(path);
  std::vector<double> v;
  for (double x; in >> x;) v.push_back(x);
  return v;
}

// Runs `ctrps args`, stdout to dir/<name>.out and stderr to dir/<name>.err;
// returns the exit code.
int Ctrps(const std::string& dir, const std::string& name, const std::string& args) {
  const std::string cmd = "'" + kBin + "' " + args + " > '" + dir + "/" + name + ".out' 2> '" +
                          dir + "/" + name + ".err'";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// "  model AUC              0.67610" from an eval's stdout.
std::string AucLine(const std::string& out) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.find("model AUC") != std::string::npos) return line;
  return "";
}

class ServeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(TmpDir());
    const std::string& d = *dir_;
    ASSERT_EQ(
        Ctrps(d, "gen", "gen-data --format criteo --rows 12000 --out '" + d + "/data' --seed 5"), 0)
        << Read(d + "/gen.err");
    std::ofstream(d + "/job.pbtxt")
        << "name: \"serve_cli\"\n"
           "data { format: CRITEO train: \""
        << d << "/data/train.txt\" valid: \"" << d << "/data/valid.txt\" test: \"" << d
        << "/data/test.txt\" shuffle_buffer: 1000 }\n"
           "model { type: DEEPFM embedding_dim: 8 mlp_dims: [32, 16] }\n"
           "train { epochs: 1 batch_size: 512 threads: 1 }\n"
           "output { dir: \""
        << d << "/job\" }\n";
    ASSERT_EQ(Ctrps(d, "train", "train --config '" + d + "/job.pbtxt'"), 0)
        << Read(d + "/train.err");
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(*dir_, ec);
    delete dir_;
  }
  static std::string* dir_;
};
std::string* ServeCli::dir_ = nullptr;

TEST_F(ServeCli, EvalOnTheBundleGivesTheModelsScoresAndAuc) {
  const std::string& d = *dir_;
  ASSERT_EQ(
      Ctrps(d, "export", "export --checkpoint '" + d + "/job/model' --out '" + d + "/bundle'"), 0)
      << Read(d + "/export.err");
  EXPECT_NE(Read(d + "/export.out").find("DeepFM"), std::string::npos);
  ASSERT_EQ(Ctrps(d, "eval_model", "eval --model '" + d + "/job/model' --out '" + d + "/s_model'"),
            0)
      << Read(d + "/eval_model.err");
  ASSERT_EQ(Ctrps(d, "eval_bundle", "eval --model '" + d + "/bundle' --out '" + d + "/s_bundle'"),
            0)
      << Read(d + "/eval_bundle.err");
  const std::string auc = AucLine(Read(d + "/eval_model.out"));
  EXPECT_FALSE(auc.empty());
  EXPECT_EQ(auc, AucLine(Read(d + "/eval_bundle.out")));
  EXPECT_EQ(Read(d + "/s_model"), Read(d + "/s_bundle"));

  // predict scores the same rows with the same probabilities (single-row too).
  ASSERT_EQ(Ctrps(d, "predict",
                  "predict --model '" + d + "/bundle' --data '" + d + "/data/test.txt' --out '" +
                      d + "/p'"),
            0)
      << Read(d + "/predict.err");
  ASSERT_EQ(Ctrps(d, "predict1",
                  "predict --model '" + d + "/bundle' --data '" + d +
                      "/data/test.txt' --single-row --out '" + d + "/p1'"),
            0);
  const std::vector<double> s = Numbers(d + "/s_bundle"), p = Numbers(d + "/p"),
                            p1 = Numbers(d + "/p1");
  ASSERT_EQ(p.size(), s.size());
  ASSERT_EQ(p1.size(), s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    ASSERT_NEAR(p[i], s[i], 2e-6) << i;
    ASSERT_NEAR(p1[i], p[i], 1e-6) << i;
  }
  EXPECT_NE(Read(d + "/predict.err").find("AUC"), std::string::npos);

  // The same rows without their label column (Criteo's test.txt shape):
  // recognised from the first line, scored the same, no AUC claimed.
  {
    std::ifstream in(d + "/data/test.txt");
    std::ofstream out(d + "/unlabeled.txt");
    for (std::string line; std::getline(in, line);) out << line.substr(line.find('\t') + 1) << "\n";
  }
  ASSERT_EQ(Ctrps(d, "predict_nolabel",
                  "predict --model '" + d + "/bundle' --data '" + d + "/unlabeled.txt' --out '" +
                      d + "/pn'"),
            0)
      << Read(d + "/predict_nolabel.err");
  EXPECT_EQ(Read(d + "/pn"), Read(d + "/p"));
  EXPECT_NE(Read(d + "/predict_nolabel.err").find("no labels"), std::string::npos);
  EXPECT_EQ(Read(d + "/predict_nolabel.err").find("AUC"), std::string::npos);
  // Told the lines carry labels, every line is refused, with the hint.
  EXPECT_EQ(Ctrps(d, "predict_forced",
                  "predict --model '" + d + "/bundle' --data '" + d +
                      "/unlabeled.txt' --labels yes --out '" + d + "/pf'"),
            1);
  EXPECT_NE(Read(d + "/predict_forced.err").find("no label, as in Criteo's test.txt"),
            std::string::npos) << Read(d + "/predict_forced.err");
  EXPECT_EQ(Ctrps(d, "predict_badflag",
                  "predict --model '" + d + "/bundle' --data '" + d + "/unlabeled.txt' --labels maybe"),
            1);
  EXPECT_NE(Read(d + "/predict_badflag.err").find("expected auto, yes or no"), std::string::npos);
}

TEST_F(ServeCli, ExportsQuantisedAndOnnx) {
  const std::string& d = *dir_;
  for (const char* dt : {"fp16", "int8"}) {
    ASSERT_EQ(Ctrps(d, std::string("export_") + dt,
                    "export --checkpoint '" + d + "/job/model' --out '" + d + "/b_" + dt +
                        "' --dtype " + dt),
              0);
    ASSERT_EQ(Ctrps(d, std::string("eval_") + dt, "eval --model '" + d + "/b_" + dt + "'"), 0);
    EXPECT_FALSE(AucLine(Read(d + "/eval_" + dt + ".out")).empty());
  }
  // 8-byte keys on request: the same AUC as the default (packed keys) bundle.
  ASSERT_EQ(Ctrps(d, "export_u64",
                  "export --checkpoint '" + d + "/job/model' --out '" + d + "/b_u64' --keys u64"),
            0);
  ASSERT_EQ(Ctrps(d, "export_packed",
                  "export --checkpoint '" + d + "/job/model' --out '" + d + "/b_packed'"),
            0);
  ASSERT_EQ(Ctrps(d, "eval_u64", "eval --model '" + d + "/b_u64'"), 0);
  ASSERT_EQ(Ctrps(d, "eval_packed", "eval --model '" + d + "/b_packed'"), 0);
  EXPECT_FALSE(AucLine(Read(d + "/eval_u64.out")).empty());
  EXPECT_EQ(AucLine(Read(d + "/eval_u64.out")), AucLine(Read(d + "/eval_packed.out")));
  EXPECT_LT(std::filesystem::file_size(d + "/b_packed/table_0.emb"),
            std::filesystem::file_size(d + "/b_u64/table_0.emb"));
  ASSERT_EQ(Ctrps(d, "export_onnx",
                  "export --checkpoint '" + d + "/job/model' --out '" + d + "/onnx' --format onnx"),
            0)
      << Read(d + "/export_onnx.err");
  EXPECT_TRUE(std::filesystem::exists(d + "/onnx/model.onnx"));
  EXPECT_TRUE(std::filesystem::exists(d + "/onnx/vocab.bin"));
}

// predict's output lines belong to its input lines: a malformed line stops
// it (file:line, no output file left behind) unless --skip-bad, which says
// the lines no longer line up. --labels auto judges by the first lines'
// majority, so one odd first line does not decide.
TEST_F(ServeCli, PredictKeepsOutputLinesOnTheirInputLines) {
  const std::string& d = *dir_;
  ASSERT_EQ(Ctrps(d, "pexport", "export --checkpoint '" + d + "/job/model' --out '" + d + "/pb'"), 0);
  std::vector<std::string> lines;
  {
    std::ifstream in(d + "/data/test.txt");
    for (std::string line; std::getline(in, line) && lines.size() < 200;) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 200u);
  {
    std::ofstream out(d + "/bad51.txt");
    for (size_t i = 0; i < lines.size(); ++i) out << (i == 50 ? "garbage" : lines[i]) << "\n";
  }
  const std::string model = "predict --model '" + d + "/pb' --data '" + d;
  EXPECT_EQ(Ctrps(d, "pbad", model + "/bad51.txt' --out '" + d + "/pbad'"), 1);
  EXPECT_NE(Read(d + "/pbad.err").find("bad51.txt:51"), std::string::npos) << Read(d + "/pbad.err");
  EXPECT_NE(Read(d + "/pbad.err").find("--skip-bad"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(d + "/pbad"));
  EXPECT_FALSE(std::filesystem::exists(d + "/pbad.tmp"));
  ASSERT_EQ(Ctrps(d, "pskip", model + "/bad51.txt' --skip-bad --out '" + d + "/pskip'"), 0);
  EXPECT_EQ(Numbers(d + "/pskip").size(), 199u);
  EXPECT_NE(Read(d + "/pskip.err").find("do not line up"), std::string::npos);
  // An empty line has no score either: it stops predict too.
  {
    std::ofstream out(d + "/blank.txt");
    for (size_t i = 0; i < 10; ++i) out << (i == 4 ? "" : lines[i]) << "\n";
  }
  EXPECT_EQ(Ctrps(d, "pblank", model + "/blank.txt' --out '" + d + "/pblank'"), 1);
  EXPECT_NE(Read(d + "/pblank.err").find("blank.txt:5: empty line"), std::string::npos)
      << Read(d + "/pblank.err");
  // An unlabeled file whose first line carries a label: judged unlabeled.
  {
    std::ofstream out(d + "/odd_first.txt");
    out << lines[0] << "\n";
    for (size_t i = 1; i < lines.size(); ++i) out << lines[i].substr(lines[i].find('\t') + 1) << "\n";
  }
  ASSERT_EQ(Ctrps(d, "podd", model + "/odd_first.txt' --skip-bad --out '" + d + "/podd'"), 0)
      << Read(d + "/podd.err");
  EXPECT_NE(Read(d + "/podd.err").find("judged from its first 100 lines"), std::string::npos)
      << Read(d + "/podd.err");
  EXPECT_EQ(Numbers(d + "/podd").size(), 199u);
}

TEST_F(ServeCli, ClearErrors) {
  const std::string& d = *dir_;
  // Usage errors exit 2.
  EXPECT_EQ(Ctrps(d, "e1", "export --checkpoint '" + d + "/job/model'"), 2);
  EXPECT_NE(Read(d + "/e1.err").find("--out"), std::string::npos);
  EXPECT_EQ(Ctrps(d, "e2", "predict --model x"), 2);
  EXPECT_EQ(Ctrps(d, "e3",
                  "export --checkpoint '" + d + "/job/model' --out '" + d + "/x' --format tflite"),
            1);
  EXPECT_NE(Read(d + "/e3.err").find("expected native or onnx"), std::string::npos);
  EXPECT_EQ(
      Ctrps(d, "e4", "export --checkpoint '" + d + "/job/model' --out '" + d + "/x' --dtype int4"),
      1);
  EXPECT_NE(Read(d + "/e4.err").find("int4"), std::string::npos);
  EXPECT_EQ(
      Ctrps(d, "e4k", "export --checkpoint '" + d + "/job/model' --out '" + d + "/x' --keys u32"),
      1);
  EXPECT_NE(Read(d + "/e4k.err").find("--keys u32: expected packed or u64"), std::string::npos)
      << Read(d + "/e4k.err");
  // Not a saved model (a directory with a config but no MANIFEST).
  std::filesystem::create_directories(d + "/notmodel");
  std::filesystem::copy_file(d + "/job/model/config.pbtxt", d + "/notmodel/config.pbtxt",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(Ctrps(d, "e5", "export --checkpoint '" + d + "/notmodel' --out '" + d + "/x'"), 1);
  EXPECT_NE(Read(d + "/e5.err").find("is neither a model saved by `ctrps train` (MANIFEST) nor a "
                                     "checkpoint (MANIFEST.pb)"),
            std::string::npos)
      << Read(d + "/e5.err");
  // predict on a saved model instead of a bundle: exported for the run.
  EXPECT_EQ(
      Ctrps(d, "e6", "predict --model '" + d + "/job/model' --data '" + d + "/data/test.txt'"), 0)
      << Read(d + "/e6.err");
  EXPECT_NE(Read(d + "/e6.err").find("is a saved model, not a serving bundle"), std::string::npos)
      << Read(d + "/e6.err");
  // On a directory that is neither: what a bundle is and how to make one.
  EXPECT_EQ(
      Ctrps(d, "e6b", "predict --model '" + d + "/notmodel' --data '" + d + "/data/test.txt'"), 1);
  EXPECT_NE(Read(d + "/e6b.err").find("ctrps export --checkpoint MODEL --out BUNDLE"),
            std::string::npos) << Read(d + "/e6b.err");
  // A damaged bundle is refused by name.
  ASSERT_EQ(Ctrps(d, "e7a", "export --checkpoint '" + d + "/job/model' --out '" + d + "/dmg'"), 0);
  std::string t = Read(d + "/dmg/table_20.emb");
  t[t.size() / 2] ^= 0x20;
  std::ofstream(d + "/dmg/table_20.emb", std::ios::binary | std::ios::trunc) << t;
  EXPECT_EQ(Ctrps(d, "e7", "predict --model '" + d + "/dmg' --data '" + d + "/data/test.txt'"), 1);
  EXPECT_NE(Read(d + "/e7.err").find("table_20.emb"), std::string::npos) << Read(d + "/e7.err");
  EXPECT_NE(Read(d + "/e7.err").find("checksum mismatch"), std::string::npos);
}

}  // namespace
