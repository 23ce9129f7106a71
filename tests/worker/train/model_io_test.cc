#include "worker/train/model_io.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/worker/train/test_util.h"
#include "worker/nn/dense_optimizer.h"

namespace ctrps::worker {
namespace {

std::string TmpDir(const std::string& name) {
  const char* t = std::getenv("CTRPS_TEST_TMPDIR");
  std::string d = std::string(t ? t : "/tmp") + "/model_io_test_" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(std::filesystem::path(d).parent_path());
  return d;
}

struct Saved {
  std::unique_ptr<Model> model;
  std::unique_ptr<storage::EmbeddingStore> store = storage::NewMemoryStore();
  std::unique_ptr<ps::EmbeddingClient> client = ps::NewLocalClient(store.get());
  std::unique_ptr<Trainer> trainer;
  explicit Saved(uint64_t seed) {
    ModelOptions mo;
    mo.type = ModelType::kDeepFM;
    mo.num_fields = 3;
    mo.emb_dims.assign(3, 4);
    mo.mlp_dims = {8};
    mo.seed = seed;
    model = std::move(NewModel(mo)).value();
    trainer = std::make_unique<Trainer>(TrainerOptions{}, model.get(), nullptr, client.get(),
                                        nullptr);
    EXPECT_TRUE(trainer->DeclareTables().ok());
  }
};

TEST(ModelIoTest, RoundTripGivesIdenticalPredictions) {
  auto data = testing::PlantedBatches(3, 64, 3, 20, 1);
  Saved a(1);
  DenseOptimizerOptions oo;
  auto opt = std::move(NewDenseOptimizer(oo, a.model->dense_size())).value();
  Trainer t(TrainerOptions{}, a.model.get(), opt.get(), a.client.get(), nullptr);
  testing::VectorStream s(data);
  ASSERT_TRUE(t.Train(&s, nullptr).ok());
  std::string dir = TmpDir("roundtrip");
  ASSERT_TRUE(SaveModel(dir, a.model.get(), a.client.get(), {{"config.pbtxt", "x: 1\n"}}).ok());
  EXPECT_TRUE(std::filesystem::exists(dir + "/MANIFEST"));
  EXPECT_FALSE(std::filesystem::exists(dir + ".tmp"));

  Saved b(2);  // different init: everything must come from the files
  ASSERT_TRUE(LoadModel(dir, b.model.get(), b.client.get()).ok());
  std::vector<float> pa, pb;
  ASSERT_TRUE(a.trainer->Evaluate(&s, 0, &pa).ok());
  ASSERT_TRUE(b.trainer->Evaluate(&s, 0, &pb).ok());
  EXPECT_EQ(pa, pb);
}

void Corrupt(const std::string& path, bool truncate) {
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (truncate) bytes.resize(bytes.size() - 5);
  else bytes[bytes.size() / 2] ^= 0x10;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(ModelIoTest, DetectsTruncationBitFlipsAndMissingFiles) {
  Saved a(1);
  auto data = testing::PlantedBatches(1, 64, 3, 20, 1);
  testing::VectorStream s(data);
  ASSERT_TRUE(a.trainer->Evaluate(&s, 0).ok());
  // Create some rows so the tables are not empty.
  for (const Batch& b : data)
    for (int f = 0; f < 3; ++f) {
      float row[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
      Key k = b.keys[f];
      ASSERT_TRUE(a.client->LoadRows(f, &k, 1, row).ok());
    }
  struct Case {
    std::string file;
    bool truncate;
    std::string expect;
  };
  for (const Case& c : {Case{"dense.bin", true, "truncated"}, Case{"dense.bin", false, "checksum"},
                        Case{"table_1.bin", true, "truncated"},
                        Case{"table_2.bin", false, "checksum"}}) {
    std::string dir = TmpDir("corrupt");
    ASSERT_TRUE(SaveModel(dir, a.model.get(), a.client.get(), {}).ok());
    Corrupt(dir + "/" + c.file, c.truncate);
    Saved b(1);
    Status st = LoadModel(dir, b.model.get(), b.client.get());
    EXPECT_EQ(st.code(), Status::Code::kCorruption) << c.file;
    EXPECT_NE(st.message().find(c.file), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << st.message();
  }
  std::string dir = TmpDir("missing");
  ASSERT_TRUE(SaveModel(dir, a.model.get(), a.client.get(), {}).ok());
  std::filesystem::remove(dir + "/table_0.bin");
  Saved b(1);
  EXPECT_EQ(LoadModel(dir, b.model.get(), b.client.get()).code(), Status::Code::kNotFound);
  EXPECT_EQ(LoadModel(dir + "/nope", b.model.get(), b.client.get()).code(),
            Status::Code::kNotFound);
}

TEST(ModelIoTest, RejectsModelOfAnotherShape) {
  Saved a(1);
  std::string dir = TmpDir("shape");
  ASSERT_TRUE(SaveModel(dir, a.model.get(), a.client.get(), {}).ok());
  ModelOptions mo;
  mo.type = ModelType::kDeepFM;
  mo.num_fields = 3;
  mo.emb_dims.assign(3, 4);
  mo.mlp_dims = {16};  // different MLP
  auto other = std::move(NewModel(mo)).value();
  auto store = storage::NewMemoryStore();
  auto client = ps::NewLocalClient(store.get());
  Trainer t(TrainerOptions{}, other.get(), nullptr, client.get(), nullptr);
  ASSERT_TRUE(t.DeclareTables().ok());
  Status st = LoadModel(dir, other.get(), client.get());
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_NE(st.message().find("dense floats"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace ctrps::worker
