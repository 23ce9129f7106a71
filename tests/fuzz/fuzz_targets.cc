#include "tests/fuzz/fuzz_targets.h"

#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ps/client.h"
#include "ps/wire.h"
#include "storage/admission.h"
#include "storage/admission_state.h"
#include "storage/shard_file.h"
#include "worker/data/byte_source.h"
#include "worker/data/gzip_restart.h"
#include "worker/nn/model.h"
#include "worker/serve/bundle.h"
#include "worker/serve/table_file.h"
#include "worker/train/checkpoint.h"
#include "worker/train/model_io.h"

namespace ctrps::testing {
namespace fs = std::filesystem;
namespace {

void WriteBytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Keeps the compiler from dropping reads of what a reader accepted.
volatile float g_sink;
void Touch(const float* p, size_t n) {
  float s = 0;
  for (size_t i = 0; i < n; ++i) s += p[i];
  g_sink = s;
}

std::string Dir(const std::string& name) {
  const std::string d = FuzzScratchDir() + "/" + name;
  fs::create_directories(d);
  return d;
}

// --- shard files (checkpoint rows, policy section) -------------------------

constexpr uint32_t kShards = 4, kShard = 1;

std::vector<storage::TableSpec> ShardTables() {
  storage::TableSpec a, b;
  a.table_id = 0, a.dim = 4, a.slot_floats = 4;
  b.table_id = 3, b.dim = 2, b.slot_floats = 0;
  return {a, b};
}

// A store with the seed's tables and admission on (so files carry a
// policy section).
std::unique_ptr<storage::EmbeddingStore> ShardStore() {
  storage::PolicyOptions po;
  po.defaults.admission.min_seen = 2;
  po.defaults.admission.counter_bytes = 4096;
  po.num_virtual_shards = kShards;
  auto store = std::move(storage::NewPolicyStore(storage::NewMemoryStore(), po)).value();
  for (const storage::TableSpec& t : ShardTables()) (void)store->CreateTable(t);
  return store;
}

std::vector<std::string> ShardSeeds() {
  std::vector<std::string> out;
  for (int rows : {0, 3, 40}) {
    const std::string dir = Dir("shard-seed");
    auto store = ShardStore();
    std::vector<float> row(8, 0.5f);
    int added = 0;
    for (uint64_t h = 1; added < rows; ++h) {
      const Key k = MakeKey(h % 2 ? 0 : 3, h * 0x9e3779b97f4a7c15ULL);
      if (VirtualShardOf(k, kShards) != kShard) continue;
      storage::RowStats st{2, 7};
      (void)store->Put(KeyTable(k), &k, 1, row.data(), &st);
      ++added;
    }
    auto files = storage::WriteStoreShards(*store, dir, kShards, {kShard}, 9, 0);
    if (files.ok()) out.push_back(ReadBytes(dir + "/" + storage::ShardFileName(kShard)));
  }
  return out;
}

void RunShard(std::string_view bytes) {
  const std::string path = Dir("shard") + "/" + storage::ShardFileName(kShard);
  WriteBytes(path, bytes);
  storage::ShardFileHeader h;
  (void)storage::ReadShardFile(path, &h, [](const storage::TableSpec& t, const Key* keys,
                                            const storage::RowStats* st, const float* rows,
                                            size_t n) {
    Touch(rows, n * t.row_floats());
    return Status::OK();
  });
  auto store = ShardStore();
  (void)storage::LoadShardFile(path, kShard, kShards, store.get());
}

std::vector<std::string> PolicySeeds() {
  auto store = ShardStore();
  auto blob = store->SavePolicyState(kShard);
  return {blob.ok() ? *blob : std::string()};
}

void RunPolicy(std::string_view bytes) {
  (void)storage::policy_state::DecodeShardState(std::string(bytes), kShards, kShard);
  auto store = ShardStore();
  (void)store->LoadPolicyState(kShard, std::string(bytes));
}

// --- checkpoint manifests and dense files ----------------------------------

// A whole checkpoint "ckpt-0000000010" (dense.bin, one worker file, no
// shards: V = 1 with an empty shard file) under root.
std::string CheckpointSeedDir() {
  const std::string root = Dir("ckpt-seed");
  const std::string final_dir = root + "/" + worker::CheckpointName(10);
  if (fs::exists(final_dir + "/" + worker::kCheckpointManifestName)) return final_dir;
  const std::string tmp = final_dir + ".tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  ckpt::CheckpointManifest m;
  m.set_step(10);
  m.set_model_type("LR");
  m.set_virtual_shards(1);
  m.set_num_workers(1);
  m.set_chain_length(1);
  std::string dense(4 * 6, '\0');
  auto* a = m.add_dense_arrays();
  a->set_name("values");
  a->set_floats(3);
  a->set_offset(0);
  a = m.add_dense_arrays();
  a->set_name("adam.m");
  a->set_floats(3);
  a->set_offset(3);
  auto* p = m.add_dense_params();
  p->set_name("bias");
  p->set_rows(3);
  p->set_cols(1);
  auto* t = m.add_tables();
  t->set_table_id(0);
  t->set_dim(1);
  *m.add_files() = *worker::WriteCheckpointFile(tmp, worker::kDenseFileName, dense,
                                                ckpt::FileEntry::DENSE, 0);
  auto shard = storage::ShardSetWriter::Open(tmp, 1, {0}, {}, 10, 0);
  auto info = (*shard)->Finish();
  auto* e = m.add_files();
  e->set_path((*info)[0].name);
  e->set_bytes((*info)[0].bytes);
  e->set_crc32((*info)[0].crc32);
  e->set_kind(ckpt::FileEntry::SHARD);
  e->set_index(0);
  (void)worker::CommitCheckpoint(tmp, final_dir, m);
  return final_dir;
}

std::vector<std::string> ManifestSeeds() {
  return {ReadBytes(CheckpointSeedDir() + "/" + worker::kCheckpointManifestName)};
}

void RunManifest(std::string_view bytes) {
  const std::string seed = CheckpointSeedDir();
  const std::string root = Dir("ckpt");
  const std::string dir = root + "/" + worker::CheckpointName(10);
  if (!fs::exists(dir)) fs::copy(seed, dir, fs::copy_options::recursive);
  WriteBytes(dir + "/" + worker::kCheckpointManifestName, bytes);
  auto m = worker::ReadCheckpointManifest(dir);
  (void)worker::VerifyCheckpoint(dir);
  std::vector<std::string> skipped;
  (void)worker::FindResumableCheckpoint(root, &skipped);
  if (!m.ok()) return;
  const std::string dense = ReadBytes(dir + "/" + worker::kDenseFileName);
  for (const auto& a : m->dense_arrays()) {
    auto values = worker::DenseArrayIn(*m, dense, a.name(), a.floats(), dir);
    if (values.ok()) Touch(*values, a.floats());
  }
}

// --- wire messages ----------------------------------------------------------

std::vector<std::string> WireSeeds() {
  ps::MessageBuilder b(ps::MessageKind::kPush, 0, 5);
  b.AddSlice(0, 4, 3, true, true);
  b.AddSlice(2, 1, 2, true, false);
  b.SetBlob("blob", 4);
  b.Finish();
  for (int i = 0; i < 3; ++i) b.keys(0)[i] = MakeKey(0, i);
  std::vector<char> msg = b.Take();
  storage::ShardFileInfo f{3, "shard-0003.rows", 100, 7, 2, {{0, 1}, {4, 1}}};
  storage::TableStats st;
  st.table_id = 2;
  st.rows = 9;
  return {std::string(msg.begin(), msg.end()), ps::EncodeShardFiles({f, f}),
          ps::EncodeTableStats({st, st})};
}

void RunWire(std::string_view bytes) {
  std::vector<char> buf(bytes.begin(), bytes.end());
  ps::DecodedMessage d;
  if (ps::DecodeMessage(&buf, &d).ok()) {
    for (const ps::WireSlice& s : d.slices) {
      if (s.keys) Touch(reinterpret_cast<const float*>(s.keys), s.n * 2);
      if (s.data) Touch(s.data, s.n * s.width);
    }
    std::string blob(d.blob, d.blob_bytes);
  }
  std::vector<storage::ShardFileInfo> files;
  (void)ps::DecodeShardFiles(bytes.data(), bytes.size(), &files);
  std::vector<storage::TableStats> tables;
  (void)ps::DecodeTableStats(bytes.data(), bytes.size(), &tables);
}

// --- serving bundles and table files ----------------------------------------

std::vector<std::string> BundleSeeds() {
  worker::serve::BundleManifest m;
  m.model.type = worker::ModelType::kLR;
  m.model.num_fields = 2;
  m.model.emb_dims = {};
  m.data.field_names = {"a", "b"};
  m.dense.push_back({"bias", 1, 1, {0.25f}});
  for (int t = 0; t < 2; ++t) {
    worker::serve::TableEntry e;
    e.table_id = t;
    e.file = "table_" + std::to_string(t) + ".bin";
    e.width = 1;
    e.rows = 3;
    m.tables.push_back(e);
  }
  const std::string dir = Dir("bundle-seed");
  if (!worker::serve::WriteBundleManifest(dir, m).ok()) return {};
  return {ReadBytes(dir + "/" + worker::serve::kBundleModelFile)};
}

void RunBundle(std::string_view bytes) {
  const std::string dir = Dir("bundle");
  WriteBytes(dir + "/" + worker::serve::kBundleModelFile, bytes);
  auto m = worker::serve::ReadBundleManifest(dir);
  if (!m.ok()) return;
  for (const auto& t : m->dense) Touch(t.values.data(), t.values.size());
}

std::vector<std::string> TableFileSeeds() {
  std::vector<std::string> out;
  const std::string dir = Dir("table-seed");
  const Key keys[3] = {MakeKey(1, 5), MakeKey(1, 9), MakeKey(1, 1u << 30)};
  const float rows[6] = {1, 2, 3, 4, 5, 6};
  for (auto dtype : {worker::serve::TableDtype::kFloat32, worker::serve::TableDtype::kFloat16,
                     worker::serve::TableDtype::kInt8})
    for (auto enc : {worker::serve::KeyEncoding::kU64, worker::serve::KeyEncoding::kPacked}) {
      worker::serve::TableEntry e;
      const std::string path = dir + "/t.bin";
      if (worker::serve::WriteTableFile(path, 1, 2, dtype, keys, 3, rows, &e, enc).ok())
        out.push_back(ReadBytes(path));
    }
  return out;
}

// model.pb is as untrusted as the table file: the expected entry is taken
// from the bytes' own header, so the reader's checks past it are reached.
void RunTableFile(std::string_view bytes) {
  const std::string path = Dir("table") + "/t.bin";
  WriteBytes(path, bytes);
  worker::serve::TableEntry e;
  if (bytes.size() >= 36) {
    uint32_t dtype, width, table, crc;
    uint64_t rows;
    std::memcpy(&dtype, bytes.data() + 12, 4);
    std::memcpy(&width, bytes.data() + 16, 4);
    std::memcpy(&table, bytes.data() + 20, 4);
    std::memcpy(&rows, bytes.data() + 24, 8);
    std::memcpy(&crc, bytes.data() + 32, 4);
    e.dtype = static_cast<worker::serve::TableDtype>(dtype);
    e.width = static_cast<int>(width);
    e.table_id = static_cast<int>(table);
    e.rows = rows;
    e.crc32 = crc;
    uint32_t version;
    std::memcpy(&version, bytes.data() + 8, 4);
    if (version == 3 || version == 4) e.key_encoding = worker::serve::KeyEncoding::kPacked;
    if (version == 2 || version == 4) e.layout = worker::serve::TableEntry::Layout::kSparseRows;
    if (e.layout == worker::serve::TableEntry::Layout::kSparseRows && bytes.size() >= 48)
      std::memcpy(&e.nnz, bytes.data() + 40, 8);
  }
  auto t = worker::serve::MappedTable::Open(path, e);
  if (!t.ok()) return;
  for (uint64_t i = 0; i < t->rows(); ++i) (void)t->Find(t->KeyAt(i));
}

// --- saved models -----------------------------------------------------------

struct SavedModelJob {
  std::unique_ptr<worker::Model> model;
  std::unique_ptr<storage::EmbeddingStore> store;
  std::unique_ptr<ps::EmbeddingClient> client;
  SavedModelJob() {
    worker::ModelOptions mo;
    mo.type = worker::ModelType::kLR;
    mo.num_fields = 2;
    mo.emb_dims = {};
    model = std::move(worker::NewModel(mo)).value();
    store = storage::NewMemoryStore();
    client = ps::NewLocalClient(store.get(), 4);
    std::vector<ps::TableConfig> tables(2);
    for (int t = 0; t < 2; ++t) {
      tables[t].table_id = t;
      tables[t].dim = model->RowWidth(t);
    }
    (void)client->DeclareTables(tables);
  }
};

std::string SavedModelSeedDir() {
  const std::string dir = FuzzScratchDir() + "/model-seed";
  if (fs::exists(dir + "/MANIFEST")) return dir;
  SavedModelJob job;
  std::vector<float> g(2, 0.1f);
  const Key keys[2] = {MakeKey(0, 1), MakeKey(0, 2)};
  ps::TableSlice s{0, keys, 2, g.data()};
  (void)job.client->Pull({s}, true);
  (void)worker::SaveModel(dir, job.model.get(), job.client.get(), {});
  return dir;
}

std::vector<std::string> SavedModelSeeds() {
  return {ReadBytes(SavedModelSeedDir() + "/MANIFEST")};
}

void RunSavedModel(std::string_view bytes) {
  const std::string dir = FuzzScratchDir() + "/model";
  if (!fs::exists(dir)) fs::copy(SavedModelSeedDir(), dir, fs::copy_options::recursive);
  WriteBytes(dir + "/MANIFEST", bytes);
  SavedModelJob job;
  (void)worker::LoadModel(dir, job.model.get(), job.client.get());
}

// --- gzip restart points (inside reader positions) ---------------------------

std::string GzipSeedFile() {
  const std::string path = FuzzScratchDir() + "/seed.gz";
  if (fs::exists(path)) return path;
  std::string content;
  for (int i = 0; i < 20000; ++i)
    content += std::to_string(i * 7919 % 100003) + "\t" + std::to_string(i) + "\tabc\n";
  gzFile gz = gzopen(path.c_str(), "wb");
  gzwrite(gz, content.data(), static_cast<unsigned>(content.size()));
  gzclose(gz);
  return path;
}

std::vector<std::string> GzipRestartSeeds() {
  const std::string path = GzipSeedFile();
  auto index = std::make_shared<worker::GzipRestartIndex>(64 << 10);
  auto decoder = worker::NewGzipDecoder(std::move(worker::OpenFileSource(path)).value(), path, index);
  std::vector<char> buf(1 << 16);
  while (true) {
    auto got = decoder->Read(buf.data(), buf.size());
    if (!got.ok() || *got == 0) break;
  }
  std::vector<std::string> out;
  for (uint64_t at : {uint64_t{70} << 10, uint64_t{140} << 10, uint64_t{1} << 30})
    if (auto p = index->Before(at)) out.push_back(worker::EncodeGzipRestartPoint(*p));
  return out;
}

void RunGzipRestart(std::string_view bytes) {
  auto p = worker::DecodeGzipRestartPoint(std::string(bytes));
  if (!p.ok()) return;
  auto src = worker::OpenGzipSourceAt(GzipSeedFile(), *p);
  if (!src.ok()) return;
  std::vector<char> buf(1 << 16);
  for (int i = 0; i < 16; ++i) {  // bounded: up to 1 MiB of output
    auto got = (*src)->Read(buf.data(), buf.size());
    if (!got.ok() || *got == 0) break;
  }
}

}  // namespace

const std::string& FuzzScratchDir() {
  static const std::string dir = [] {
    const char* root = std::getenv("CTRPS_TEST_TMPDIR");
    std::string d = std::string(root && *root ? root : "/tmp") + "/fuzz-" +
                    std::to_string(getpid());
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

const std::vector<FuzzTarget>& FuzzTargets() {
  static const std::vector<FuzzTarget> targets = {
      {"shard_file", ShardSeeds, RunShard},
      {"policy_state", PolicySeeds, RunPolicy},
      {"checkpoint_manifest", ManifestSeeds, RunManifest},
      {"wire_message", WireSeeds, RunWire},
      {"bundle_model", BundleSeeds, RunBundle},
      {"table_file", TableFileSeeds, RunTableFile},
      {"saved_model", SavedModelSeeds, RunSavedModel},
      {"gzip_restart", GzipRestartSeeds, RunGzipRestart},
  };
  return targets;
}

}  // namespace ctrps::testing
