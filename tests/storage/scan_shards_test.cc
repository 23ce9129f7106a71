// ScanShards of the disk stores (RocksDB: only the wanted shards'
// instances; tiered: those merged with the DRAM tier's dirty rows, nothing
// written back) against a model of the table and against the filtered full
// Scan (EmbeddingStore::ScanShards, the default): the same rows, values,
// stats and order, after bulk Puts, Modify and Lookup creating rows only in
// DRAM, dirty resident rows, rows evicted from DRAM, Erase and Evict; early
// stop; another shard count; and checkpoint shard files byte-identical to
// those written through the default.
#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "common/keys.h"
#include "storage/row_init.h"
#include "storage/shard_file.h"
#include "storage/store_factory.h"
#include "tests/storage/store_fixtures.h"

namespace ctrps::storage {
namespace {

constexpr uint32_t kV = 4;  // SmallRocksDb's virtual shards

TableSpec Spec(int id) { return testing::MakeSpec(id, 4, 2, 11); }
constexpr int kRF = 6;

struct Row {
  Key key;
  std::vector<float> v;
  uint32_t count, last_step;
  bool operator==(const Row& o) const {
    return std::tie(key, v, count, last_step) == std::tie(o.key, o.v, o.count, o.last_step);
  }
};
std::ostream& operator<<(std::ostream& os, const Row& r) {
  return os << "{key " << r.key << " v0 " << r.v[0] << " count " << r.count << " step "
            << r.last_step << "}";
}

// What a table should hold: key -> (row, stats), updated beside the store.
struct Model {
  std::map<Key, Row> rows;
  void Ensure(Key k) {
    if (rows.count(k)) return;
    Row r{k, std::vector<float>(kRF), 0, 0};
    TableSpec s = Spec(0);
    InitRow(s.init, k, s.dim, s.slot_floats, r.v.data());
    rows.emplace(k, r);
  }
  // The rows of the wanted shards in the disk stores' scan order.
  std::vector<Row> Wanted(uint32_t v, const std::vector<uint8_t>& wanted) const {
    std::vector<Row> out;
    for (const auto& [k, r] : rows)
      if (wanted[VirtualShardOf(k, v)]) out.push_back(r);
    std::stable_sort(out.begin(), out.end(), [&](const Row& a, const Row& b) {
      return VirtualShardOf(a.key, v) < VirtualShardOf(b.key, v);
    });
    return out;
  }
};

std::vector<Row> Collect(const EmbeddingStore& s, int table, uint32_t v,
                         const std::vector<uint8_t>& wanted, bool use_default,
                         size_t stop_after = SIZE_MAX) {
  std::vector<Row> out;
  auto fn = [&](Key k, const float* row, const RowStats& st) {
    out.push_back(Row{k, std::vector<float>(row, row + kRF), st.count, st.last_step});
    return out.size() < stop_after;
  };
  Status st = use_default ? s.EmbeddingStore::ScanShards(table, v, wanted, fn)
                          : s.ScanShards(table, v, wanted, fn);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

// Drives both tables of `store` through every kind of row state and keeps
// the models in step. Ends with a Modify and a creating Lookup, so the
// tiered store holds dirty rows and rows only in DRAM.
void Populate(EmbeddingStore* store, std::map<int, Model>* models) {
  std::mt19937_64 rng(5);
  for (int id : {3, 4}) {
    ASSERT_TRUE(store->CreateTable(Spec(id)).ok());
    Model& m = (*models)[id];
    auto modify = [&](std::vector<Key> keys, uint32_t step) {
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      ASSERT_TRUE(store->Modify(id, keys.data(), keys.size(), step, [&](size_t i, float* r) {
        for (int j = 0; j < kRF; ++j) r[j] += 0.5f * (j + 1) + step;
      }).ok());
      for (Key k : keys) {
        m.Ensure(k);
        Row& r = m.rows[k];
        for (int j = 0; j < kRF; ++j) r.v[j] += 0.5f * (j + 1) + step;
        ++r.count;
        r.last_step = step;
      }
    };
    auto lookup_create = [&](const std::vector<Key>& keys) {
      std::vector<float> out(keys.size() * kRF);
      ASSERT_TRUE(store->Lookup(id, keys.data(), keys.size(), out.data(), kRF, true).ok());
      for (Key k : keys) m.Ensure(k);
    };
    // Bulk Put of 3000 rows (disk), with stats.
    std::vector<Key> keys;
    std::vector<float> rows;
    std::vector<RowStats> stats;
    for (int i = 0; i < 3000; ++i) {
      Key k = MakeKey(id, rng() % 100000);
      keys.push_back(k);
      std::vector<float> r(kRF);
      for (int j = 0; j < kRF; ++j) r[j] = static_cast<float>(i) + 0.25f * j;
      rows.insert(rows.end(), r.begin(), r.end());
      stats.push_back(RowStats{static_cast<uint32_t>(i % 7 + 1), static_cast<uint32_t>(i % 5)});
      m.rows[k] = Row{k, r, stats.back().count, stats.back().last_step};  // later duplicates win
    }
    ASSERT_TRUE(store->Put(id, keys.data(), keys.size(), rows.data(), stats.data()).ok());
    // Updates of stored rows and of new ones, more than the DRAM tier holds
    // (~800 rows): evictions write dirty rows back.
    for (uint32_t step = 10; step < 16; ++step) {
      std::vector<Key> batch;
      for (int i = 0; i < 400; ++i)
        batch.push_back(i % 2 ? keys[rng() % keys.size()] : MakeKey(id, 100000 + rng() % 5000));
      modify(batch, step);
    }
    lookup_create({MakeKey(id, 200001), MakeKey(id, 200002), MakeKey(id, 200003)});
    // Erase some disk rows and some resident ones, then evict rare rows.
    std::vector<Key> gone;
    for (int i = 0; i < 300; ++i) gone.push_back(keys[rng() % keys.size()]);
    gone.push_back(MakeKey(id, 200002));
    ASSERT_TRUE(store->Erase(id, gone.data(), gone.size()).ok());
    for (Key k : gone) m.rows.erase(k);
    auto evicted = store->Evict(id, EmbeddingStore::EvictPolicy{20, 0, 2});
    ASSERT_TRUE(evicted.ok());
    size_t rare = 0;
    for (auto it = m.rows.begin(); it != m.rows.end();)
      if (it->second.count < 2) it = m.rows.erase(it), ++rare; else ++it;
    ASSERT_EQ(*evicted, rare);
    ASSERT_GT(rare, 0u);
    // Last: dirty resident rows (updated stored rows) and rows only in DRAM
    // (created by a Modify and a Lookup).
    std::vector<Key> last;
    for (int i = 0; i < 60; ++i) last.push_back(keys[rng() % keys.size()]);
    for (int i = 0; i < 60; ++i) last.push_back(MakeKey(id, 300000 + i));
    modify(last, 17);
    std::vector<Key> fresh;
    for (int i = 0; i < 40; ++i) fresh.push_back(MakeKey(id, 400000 + i));
    lookup_create(fresh);
  }
}

std::unique_ptr<EmbeddingStore> OpenKind(const std::string& kind, const std::string& dir) {
  if (kind == "rocksdb") return testing::OrNull(OpenRocksDbStore(testing::SmallRocksDb(dir)));
  TieredOptions t;
  t.disk = testing::SmallRocksDb(dir);
  t.dram_budget_bytes = size_t{64} << 10;
  return testing::OrNull(OpenTieredStore(t));
}

std::vector<std::vector<uint8_t>> ShardSets() {
  return {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1},
          {1, 0, 1, 0}, {0, 1, 1, 1}, {1, 1, 1, 1}, {0, 0, 0, 0}};
}

class ScanShardsTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ScanShardsTest, YieldsExactlyTheRowsOfTheWantedShards) {
  auto store = OpenKind(GetParam(), testing::FreshDir("scan-shards"));
  ASSERT_NE(store, nullptr);
  std::map<int, Model> models;
  Populate(store.get(), &models);
  for (auto& [id, m] : models) {
    const uint64_t writebacks = store->Stats(id)->writebacks;
    for (const auto& wanted : ShardSets()) {
      SCOPED_TRACE("table " + std::to_string(id) + " shards " + std::to_string(wanted[0]) +
                   std::to_string(wanted[1]) + std::to_string(wanted[2]) + std::to_string(wanted[3]));
      const std::vector<Row> got = Collect(*store, id, kV, wanted, false);
      ASSERT_EQ(got, m.Wanted(kV, wanted));
      // Stopping early yields a prefix.
      if (got.size() > 5) {
        const std::vector<Row> first = Collect(*store, id, kV, wanted, false, 5);
        ASSERT_EQ(first, std::vector<Row>(got.begin(), got.begin() + 5));
      }
    }
    // The tiered store wrote nothing back; it still holds dirty rows.
    EXPECT_EQ(store->Stats(id)->writebacks, writebacks);
    // The default (which writes back, in the tiered store) agrees.
    for (const auto& wanted : ShardSets())
      ASSERT_EQ(Collect(*store, id, kV, wanted, true), m.Wanted(kV, wanted));
  }
}

TEST_P(ScanShardsTest, OtherShardCountsFallBackToTheFilteredScan) {
  auto store = OpenKind(GetParam(), testing::FreshDir("scan-shards-v"));
  ASSERT_NE(store, nullptr);
  std::map<int, Model> models;
  Populate(store.get(), &models);
  const Model& m = models[3];
  std::vector<uint8_t> wanted(7, 0);
  wanted[2] = wanted[5] = 1;
  std::vector<Row> got = Collect(*store, 3, 7, wanted, false);
  std::vector<Row> want = m.Wanted(7, wanted);
  auto by_key = [](const Row& a, const Row& b) { return a.key < b.key; };
  std::sort(got.begin(), got.end(), by_key);
  std::sort(want.begin(), want.end(), by_key);
  EXPECT_EQ(got, want);
  Status bad = store->ScanShards(3, kV, {1, 0}, [](Key, const float*, const RowStats&) { return true; });
  EXPECT_EQ(bad.code(), Status::Code::kInvalidArgument) << bad.ToString();
  EXPECT_FALSE(store->ScanShards(9, kV, {1, 1, 1, 1}, [](Key, const float*, const RowStats&) {
    return true;
  }).ok());
}

// Hides a store's ScanShards, so callers get the default (filtered Scan).
struct DefaultScanShards : EmbeddingStore {
  EmbeddingStore* s;
  explicit DefaultScanShards(EmbeddingStore* p) : s(p) {}
  Status CreateTable(const TableSpec& t) override { return s->CreateTable(t); }
  std::vector<TableSpec> Tables() const override { return s->Tables(); }
  Status Lookup(int t, const Key* k, size_t n, float* o, int f, bool c) override {
    return s->Lookup(t, k, n, o, f, c);
  }
  Status Modify(int t, const Key* k, size_t n, uint32_t st, const RowFn& fn) override {
    return s->Modify(t, k, n, st, fn);
  }
  Status Scan(int t, const ScanFn& fn) const override { return s->Scan(t, fn); }
  Status Put(int t, const Key* k, size_t n, const float* r, const RowStats* st) override {
    return s->Put(t, k, n, r, st);
  }
  Status DropTable(int t) override { return s->DropTable(t); }
  Status Flush() override { return s->Flush(); }
  StatusOr<TableStats> Stats(int t) const override { return s->Stats(t); }
};

TEST_P(ScanShardsTest, CheckpointFilesMatchTheDefaultScan) {
  const std::string root = testing::FreshDir("scan-shards-ckpt");
  auto store = OpenKind(GetParam(), root + "/store");
  ASSERT_NE(store, nullptr);
  std::map<int, Model> models;
  Populate(store.get(), &models);
  DefaultScanShards plain(store.get());
  for (uint32_t since : {0u, 12u}) {
    std::vector<std::vector<ShardFileInfo>> files;
    // The override first: the default writes the tiered store's dirty rows back.
    for (const EmbeddingStore* s : {static_cast<const EmbeddingStore*>(store.get()),
                                    static_cast<const EmbeddingStore*>(&plain)}) {
      const std::string dir = root + "/ckpt-" + std::to_string(since) + "-" +
                              std::to_string(files.size());
      std::filesystem::create_directories(dir);
      auto f = WriteStoreShards(*s, dir, kV, {0, 1, 2, 3}, 20, since, /*threads=*/2);
      ASSERT_TRUE(f.ok()) << f.status().ToString();
      files.push_back(*f);
    }
    ASSERT_EQ(files[0].size(), kV);
    ASSERT_EQ(files[1].size(), kV);
    uint64_t rows = 0;
    for (uint32_t v = 0; v < kV; ++v) {
      EXPECT_EQ(files[0][v].rows, files[1][v].rows) << "shard " << v;
      EXPECT_EQ(files[0][v].crc32, files[1][v].crc32) << "shard " << v;
      EXPECT_EQ(files[0][v].bytes, files[1][v].bytes) << "shard " << v;
      rows += files[0][v].rows;
    }
    size_t want = 0;
    for (auto& [id, m] : models)
      for (auto& [k, r] : m.rows) want += since == 0 || r.last_step > since;
    EXPECT_EQ(rows, want);
  }
}

INSTANTIATE_TEST_SUITE_P(DiskStores, ScanShardsTest, ::testing::Values("rocksdb", "tiered"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace ctrps::storage
