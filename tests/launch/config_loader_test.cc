#include "launch/config_loader.h"

#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace ctrps::launch {
namespace {

StatusOr<LoadedConfig> Parse(const std::string& text, std::vector<std::string> sets = {}) {
  return ParseConfigText(text, "job.pbtxt", sets);
}

TEST(ConfigLoaderTest, ParsesAndAppliesOverrides) {
  auto c = Parse("data { train: \"a.txt\" }\nmodel { type: FWFM embedding_dim: 8 }\n",
                 {"train.batch_size=512", "model.mlp_dims=64,32", "data.format=AVAZU",
                  "data.valid=v.csv"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->job.train().batch_size(), 512);
  EXPECT_EQ(c->job.model().mlp_dims_size(), 2);
  EXPECT_EQ(c->job.model().mlp_dims(1), 32);
  EXPECT_EQ(c->job.data().format(), config::DataConfig::AVAZU);
  EXPECT_EQ(c->job.data().valid(), "v.csv");
  EXPECT_EQ(c->job.model().type(), config::ModelConfig::FWFM);
  EXPECT_EQ(c->job.train().epochs(), 1);  // schema default
  EXPECT_TRUE(ValidateConfig(*c, "train").ok());
}

TEST(ConfigLoaderTest, OverridesIndexRepeatedMessages) {
  const std::string text =
      "data { train: \"a.txt\" }\ncompression { stages { afm { layers { layer: \"mlp.1\" } } }\n"
      "stages { method: WEIGHT_SVD afm { embeddings { rank: 2 } } } }\n";
  auto c = Parse(text, {"compression.stages[1].afm.embeddings.rank=4",
                        "compression.stages[0].afm.layers[0].rank.rank=32"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->job.compression().stages(1).afm().embeddings().rank(), 4);
  EXPECT_EQ(c->job.compression().stages(0).afm().layers(0).rank().rank(), 32);
  EXPECT_TRUE(ValidateConfig(*c, "compress").ok());
  auto bad = Parse(text, {"compression.stages[2].name=x"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'stages' has 2 entries, no [2]"), std::string::npos)
      << bad.status().message();
  bad = Parse(text, {"compression.stages.name=x"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("index it: stages[0]"), std::string::npos);
  bad = Parse(text, {"compression.stages[x].name=x"});
  ASSERT_FALSE(bad.ok());
  bad = Parse(text, {"model.mlp_dims[0]=3"});
  ASSERT_FALSE(bad.ok());
  auto empty = Parse("data { train: \"a.txt\" }\n");
  ASSERT_TRUE(empty.ok());
  Status s = ValidateConfig(*empty, "compress");
  EXPECT_NE(s.message().find("the plan has no stage"), std::string::npos)
      << s.message();
}

TEST(ConfigLoaderTest, UnknownFieldNamesLine) {
  auto c = Parse("data {\n  train: \"a\"\n  trian: \"b\"\n}\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("job.pbtxt:3:"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("trian"), std::string::npos);
}

TEST(ConfigLoaderTest, WrongTypeNamesLine) {
  auto c = Parse("train {\n  batch_size: \"big\"\n}\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("job.pbtxt:2:"), std::string::npos) << c.status().message();
}

TEST(ConfigLoaderTest, OutOfRangeNamesFieldAndLine) {
  auto c = Parse("data { train: \"a\" }\nmodel {\n  embedding_dim: 0\n}\n");
  ASSERT_TRUE(c.ok());
  Status s = ValidateConfig(*c, "train");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("job.pbtxt:3:3 (model.embedding_dim)"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("out of range"), std::string::npos);
}

TEST(ConfigLoaderTest, OutOfRangeFromOverrideNamesTheSet) {
  auto c = Parse("data { train: \"a\" }", {"train.batch_size=0"});
  ASSERT_TRUE(c.ok());
  Status s = ValidateConfig(*c, "train");
  EXPECT_NE(s.message().find("--set train.batch_size"), std::string::npos) << s.message();
}

TEST(ConfigLoaderTest, CheckpointSettings) {
  auto c = Parse("data { train: \"a\" }\ncheckpoint { dir: \"ck\" every_steps: 100 full_every: 4 }\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(ValidateConfig(*c, "train").ok());
  EXPECT_EQ(c->job.checkpoint().keep_last(), 3);  // schema default
  auto k = Parse("data { train: \"a\" }\ncheckpoint { dir: \"ck\" keep_last: 0 }\n");
  ASSERT_TRUE(k.ok());
  EXPECT_NE(ValidateConfig(*k, "train").message().find("checkpoint.keep_last"), std::string::npos);
  // Incremental checkpoints cannot record evicted rows.
  auto e = Parse("data { train: \"a\" }\ncheckpoint { dir: \"ck\" full_every: 3 }\n",
                 {"storage.evict_unseen_steps=1000", "storage.evict_every_steps=100"});
  ASSERT_TRUE(e.ok());
  Status s = ValidateConfig(*e, "train");
  EXPECT_NE(s.message().find("checkpoint.full_every"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("eviction"), std::string::npos) << s.message();
  // Eviction criteria without a schedule would never run in training.
  auto n = Parse("data { train: \"a\" }\n", {"storage.evict_min_count=2"});
  ASSERT_TRUE(n.ok());
  s = ValidateConfig(*n, "train");
  EXPECT_NE(s.message().find("storage.evict_every_steps"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("never run"), std::string::npos) << s.message();
  auto y = Parse("data { train: \"a\" }\n", {"storage.evict_min_count=2", "storage.evict_every_steps=100"});
  ASSERT_TRUE(y.ok());
  EXPECT_TRUE(ValidateConfig(*y, "train").ok());
}

TEST(ConfigLoaderTest, ConfigPathThatIsADirectory) {
  auto c = LoadConfig("/tmp", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/tmp is a directory"), std::string::npos)
      << c.status().message();
}

TEST(ConfigLoaderTest, MissingRequiredValue) {
  auto c = Parse("model { type: LR }");
  ASSERT_TRUE(c.ok());
  Status s = ValidateConfig(*c, "train");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("data.train"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("missing required value"), std::string::npos);
  auto l = Parse("data { train: \"a\" format: LIBFFM }");
  ASSERT_TRUE(l.ok());
  EXPECT_NE(ValidateConfig(*l, "train").message().find("libffm_num_fields"), std::string::npos);
}

TEST(ConfigLoaderTest, BadOverrides) {
  EXPECT_NE(Parse("", {"train.nope=1"}).status().message().find("has no field 'nope'"),
            std::string::npos);
  EXPECT_NE(Parse("", {"train.batch_size=abc"}).status().message().find("not valid"),
            std::string::npos);
  EXPECT_NE(Parse("", {"model.type=XGBOOST"}).status().message().find("DEEPFM"),
            std::string::npos);
  EXPECT_NE(Parse("", {"train"}).status().message().find("expected field.path=value"),
            std::string::npos);
  EXPECT_NE(Parse("", {"train=1"}).status().message().find("message field"), std::string::npos);
  EXPECT_FALSE(Parse("", {"model.mlp_dims=1,x"}).ok());
}

// An int32 out of range from --set is our message alone: the protobuf
// parser used to print a raw "[libprotobuf ERROR ...]" line first.
TEST(ConfigLoaderTest, OverrideOutOfInt32RangeSaysSoQuietly) {
  ::testing::internal::CaptureStderr();
  auto c = Parse("", {"train.batch_size=2147483648"});
  auto list = Parse("", {"model.mlp_dims=64,2147483648"});
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "");
  EXPECT_NE(c.status().message().find("'2147483648' is not valid; expected int32 (at most 2147483647)"),
            std::string::npos) << c.status().ToString();
  EXPECT_NE(list.status().message().find("at most 2147483647"), std::string::npos)
      << list.status().ToString();
}

TEST(ConfigLoaderTest, DenseFtrlRejectedAndLogLevelChecked) {
  auto c = Parse("data { train: \"a\" } train { dense_optimizer { type: FTRL } }");
  ASSERT_TRUE(c.ok());
  EXPECT_NE(ValidateConfig(*c, "train").message().find("dense_optimizer.type"),
            std::string::npos);
  auto d = Parse("data { train: \"a\" } output { log_level: \"loud\" }");
  ASSERT_TRUE(d.ok());
  EXPECT_NE(ValidateConfig(*d, "train").message().find("log_level"), std::string::npos);
}

TEST(ConfigLoaderTest, ShippedConfigsAreValid) {
  for (const char* name : {"quickstart", "criteo_deepfm", "criteo_deepfwfm", "criteo_dcnv2",
                           "criteo_dlrm", "avazu_deepfm"}) {
    std::string path = std::string(CTRPS_SOURCE_DIR) + "/configs/" + name + ".pbtxt";
    auto c = LoadConfig(path, {});
    ASSERT_TRUE(c.ok()) << path << ": " << c.status().ToString();
    EXPECT_TRUE(ValidateConfig(*c, "train").ok()) << path;
  }
  for (const char* name : {"criteo_deepfm_afm", "criteo_deepfm_umec"}) {
    std::string path = std::string(CTRPS_SOURCE_DIR) + "/configs/" + name + ".pbtxt";
    auto c = LoadConfig(path, {});
    ASSERT_TRUE(c.ok()) << path << ": " << c.status().ToString();
    EXPECT_TRUE(ValidateConfig(*c, "compress").ok()) << path;
  }
  EXPECT_EQ(LoadConfig("/no/such/file.pbtxt", {}).status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace ctrps::launch
