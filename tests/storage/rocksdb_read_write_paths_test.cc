// The RocksDB store's fast paths: per-shard reads on a TaskPool (results
// identical to reading on one thread, errors in a fixed order) and the bulk
// Put path (WrittenKeys lets Put into an empty table skip its reads; row
// counts stay exact through overlaps, duplicates, drops and reopens).
#include <algorithm>
#include <functional>
#include <map>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "storage/store_factory.h"
#include "common/task_pool.h"
#include "storage/written_keys.h"
#include "tests/storage/store_fixtures.h"

namespace ctrps::storage {
namespace {

TableSpec Spec() { return testing::MakeSpec(5, 4, 2, 9); }
constexpr int kRF = 6;

std::vector<float> RowFor(Key k, float salt) {
  std::vector<float> r(kRF);
  for (int j = 0; j < kRF; ++j) r[j] = static_cast<float>(k % 1000) + salt + j;
  return r;
}

TEST(TaskPoolTest, RunsEachTaskOnceFromConcurrentCallers) {
  TaskPool pool(3);
  EXPECT_EQ(pool.threads(), 3);
  std::vector<std::thread> callers;
  std::atomic<int> bad{0};
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep) {
        std::vector<int> hits(37, 0);
        Status s = pool.Run(hits.size(), [&](size_t i) { ++hits[i]; return Status::OK(); });
        if (!s.ok() || std::count(hits.begin(), hits.end(), 1) != 37) ++bad;
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(TaskPoolTest, ReturnsFirstErrorInIndexOrder) {
  for (int threads : {1, 2, 4}) {
    TaskPool pool(threads);
    for (int rep = 0; rep < 50; ++rep) {
      Status s = pool.Run(16, [](size_t i) {
        if (i == 11) return Status::IOError("task 11");
        if (i == 5) return Status::Corruption("task 5");
        return Status::OK();
      });
      EXPECT_EQ(s.code(), Status::Code::kCorruption) << threads;
      EXPECT_EQ(s.message(), "task 5");
    }
    EXPECT_TRUE(pool.Run(0, [](size_t) { return Status::IOError("never"); }).ok());
  }
}

TEST(WrittenKeysTest, NoFalseNegativesAndFewFalsePositives) {
  WrittenKeys w;
  for (Key k = 0; k < 300000; ++k) w.Add(MakeKey(1, k * 7));  // several segments
  for (Key k = 0; k < 300000; ++k) ASSERT_TRUE(w.MayContain(MakeKey(1, k * 7))) << k;
  int fp = 0;
  for (Key k = 0; k < 100000; ++k) fp += w.MayContain(MakeKey(2, k));
  EXPECT_LT(fp, 5000);  // < 5% with 3 segments
  EXPECT_GT(w.bytes(), 0u);
}

// Two stores with the same rows, reading on 1 and on 4 threads, answer
// every call identically.
TEST(RocksDbReadPathTest, ParallelReadsMatchOneThread) {
  std::unique_ptr<EmbeddingStore> stores[2];
  for (int i = 0; i < 2; ++i) {
    RocksDbOptions o = testing::SmallRocksDb(testing::FreshDir("par"));
    o.virtual_shards = 8;
    o.read_threads = i == 0 ? 1 : 4;
    stores[i] = testing::OrNull(OpenRocksDbStore(o));
    ASSERT_NE(stores[i], nullptr);
    ASSERT_TRUE(stores[i]->CreateTable(Spec()).ok());
  }
  std::mt19937_64 rng(3);
  for (int step = 1; step <= 20; ++step) {
    std::vector<Key> keys(700);
    for (Key& k : keys) k = MakeKey(5, rng() % 3000);  // repeats, hits and misses
    std::vector<float> out[2];
    for (int i = 0; i < 2; ++i) {
      out[i].resize(keys.size() * kRF);
      ASSERT_TRUE(stores[i]->Lookup(5, keys.data(), keys.size(), out[i].data(), kRF, step % 3 != 0).ok());
    }
    ASSERT_EQ(out[0], out[1]) << "step " << step;
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (int i = 0; i < 2; ++i)
      ASSERT_TRUE(stores[i]->Modify(5, keys.data(), keys.size(), step, [&](size_t j, float* r) {
        r[0] += 0.5f * static_cast<float>(j % 7);
      }).ok());
    std::vector<uint8_t> present[2];
    for (int i = 0; i < 2; ++i) {
      present[i].resize(keys.size());
      ASSERT_TRUE(stores[i]->Contains(5, keys.data(), keys.size(), present[i].data()).ok());
    }
    ASSERT_EQ(present[0], present[1]);
  }
  EXPECT_EQ(stores[0]->Stats(5)->rows, stores[1]->Stats(5)->rows);
}

TEST(RocksDbReadPathTest, ReadThreadsAreValidated) {
  RocksDbOptions o = testing::SmallRocksDb(testing::FreshDir("rt"));
  o.read_threads = 0;
  auto s = OpenRocksDbStore(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("read_threads"), std::string::npos) << s.status().message();
}

// Forwards to a store that a test may reopen (replace) midway.
struct Forward : EmbeddingStore {
  std::unique_ptr<EmbeddingStore>* s;
  explicit Forward(std::unique_ptr<EmbeddingStore>* p) : s(p) {}
  Status CreateTable(const TableSpec& t) override { return (*s)->CreateTable(t); }
  std::vector<TableSpec> Tables() const override { return (*s)->Tables(); }
  Status Lookup(int t, const Key* k, size_t n, float* o, int f, bool c) override {
    return (*s)->Lookup(t, k, n, o, f, c);
  }
  Status Modify(int t, const Key* k, size_t n, uint32_t st, const RowFn& fn) override {
    return (*s)->Modify(t, k, n, st, fn);
  }
  Status Scan(int t, const ScanFn& fn) const override { return (*s)->Scan(t, fn); }
  Status Put(int t, const Key* k, size_t n, const float* r, const RowStats* st) override {
    return (*s)->Put(t, k, n, r, st);
  }
  Status DropTable(int t) override { return (*s)->DropTable(t); }
  Status Flush() override { return (*s)->Flush(); }
  StatusOr<TableStats> Stats(int t) const override { return (*s)->Stats(t); }
};

// Put in chunks into an empty table (the bulk path), with keys repeated
// across chunks and inside a chunk, then after a Modify (normal path),
// after DropTable + CreateTable, and after a reopen: the row count always
// equals the distinct keys and every row reads back as last written.
void CheckBulkPut(EmbeddingStore* store, const std::function<void()>& reopen) {
  ASSERT_TRUE(store->CreateTable(Spec()).ok());
  std::map<Key, std::vector<float>> want;
  std::mt19937_64 rng(17);
  auto put = [&](size_t n, Key range, float salt) {
    std::vector<Key> keys(n);
    std::vector<float> rows;
    for (Key& k : keys) {
      k = MakeKey(5, rng() % range);
      auto r = RowFor(k, salt);
      rows.insert(rows.end(), r.begin(), r.end());
      want[k] = r;  // later duplicates win
    }
    ASSERT_TRUE(store->Put(5, keys.data(), n, rows.data(), nullptr).ok());
  };
  auto check = [&](const char* when) {
    ASSERT_EQ(store->Stats(5)->rows, want.size()) << when;
    std::vector<Key> keys;
    for (auto& [k, r] : want) keys.push_back(k);
    std::vector<float> out(keys.size() * kRF);
    ASSERT_TRUE(store->Lookup(5, keys.data(), keys.size(), out.data(), kRF, false).ok());
    for (size_t i = 0; i < keys.size(); ++i)
      ASSERT_EQ(std::vector<float>(out.begin() + i * kRF, out.begin() + (i + 1) * kRF), want[keys[i]])
          << when << " key " << keys[i];
  };
  for (int c = 0; c < 8; ++c) put(1000, 5000, c);  // overlapping chunks into an empty table
  check("bulk load");
  std::vector<Key> some = {MakeKey(5, 1), MakeKey(5, 2), MakeKey(5, 99999)};
  ASSERT_TRUE(store->Modify(5, some.data(), some.size(), 1, [](size_t, float* r) { r[0] = 42; }).ok());
  for (Key k : some) {
    std::vector<float> r(kRF);
    ASSERT_TRUE(store->Lookup(5, &k, 1, r.data(), kRF, false).ok());
    want[k] = r;
  }
  for (int c = 0; c < 3; ++c) put(1000, 8000, 100 + c);  // after a normal write
  check("after modify");
  reopen();
  put(500, 9000, 200);
  check("after reopen");
  ASSERT_TRUE(store->DropTable(5).ok());
  ASSERT_TRUE(store->CreateTable(Spec()).ok());
  want.clear();
  for (int c = 0; c < 4; ++c) put(2000, 6000, 300 + c);
  check("after drop");
}

TEST(RocksDbWritePathTest, BulkPutKeepsCountsExact) {
  const std::string dir = testing::FreshDir("bulk");
  std::unique_ptr<EmbeddingStore> store = testing::OrNull(OpenRocksDbStore(testing::SmallRocksDb(dir)));
  ASSERT_NE(store, nullptr);
  Forward fwd(&store);
  CheckBulkPut(&fwd, [&] {
    store.reset();
    store = testing::OrNull(OpenRocksDbStore(testing::SmallRocksDb(dir)));
  });
}

TEST(RocksDbWritePathTest, TieredBulkPutKeepsCountsExact) {
  const std::string dir = testing::FreshDir("bulk-tiered");
  auto open = [&] {
    TieredOptions t;
    t.disk = testing::SmallRocksDb(dir);
    t.dram_budget_bytes = size_t{64} << 10;  // ~1000 rows: Puts meet resident and evicted rows
    return testing::OrNull(OpenTieredStore(t));
  };
  std::unique_ptr<EmbeddingStore> store = open();
  ASSERT_NE(store, nullptr);
  Forward fwd(&store);
  CheckBulkPut(&fwd, [&] {
    ASSERT_TRUE(store->Flush().ok());
    store.reset();
    store = open();
  });
}

}  // namespace
}  // namespace ctrps::storage
