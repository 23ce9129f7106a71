// Storage throughput: lookups/s and updates/s of the memory, RocksDB and
// tiered stores at batch 4096, dim 16 with Adagrad state (16 slot floats),
// uniform and Zipf (s = 1.05, 1.2) keys, beside a raw RocksDB MultiGet /
// WriteBatch of the same rows and a plain in-memory gather, in one run.
// Then out of core (a table 4x the DRAM budget, Zipf keys: hit rate,
// lookups/s, peak RSS), Put rows/s (restore into an empty table, and
// overwrite), and snapshot + restore of a large table.
// Each section runs in a forked child, so its peak RSS is its own.
//
//   storage_bench [--rows=1000000] [--ooc_rows=2000000] [--snap_rows=10000000]
//                 [--dir=/tmp/storage_bench] [--sections=stores,put,ooc,snapshot]
//                 [--stores=memory,tiered-hot,tiered-quarter,rocksdb,raw]
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/storage_bench.h"
#include "storage/store_factory.h"

using namespace ctrps;
using namespace ctrps::storage;
using namespace ctrps::storage_bench;
namespace fs = std::filesystem;

namespace {

// A plain gather from a dense array (ranks as indices): the upper bound.
Rate RunGather(const std::vector<std::vector<uint64_t>>& ranks, uint64_t n) {
  std::vector<float> slab(n * kRowFloats, 0.5f), out(kBatch * kDim), grads(kBatch * kDim, 0.01f);
  Rate r;
  for (int rep = 0; rep < 3; ++rep) {
  auto t = Clock::now();
  size_t keys = 0;
  for (const auto& b : ranks) {
    for (size_t i = 0; i < b.size(); ++i)
      std::memcpy(out.data() + i * kDim, slab.data() + b[i] * kRowFloats, kDim * sizeof(float));
    keys += b.size();
  }
  r.lookups = std::max(r.lookups, keys / Secs(t));
  t = Clock::now();
  keys = 0;
  for (const auto& b : ranks) {
    for (size_t i = 0; i < b.size(); ++i) Adagrad(slab.data() + b[i] * kRowFloats, grads.data() + i * kDim);
    keys += b.size();
  }
  r.updates = std::max(r.updates, keys / Secs(t));
  }
  volatile float sink = out[3];
  (void)sink;
  return r;
}

// Raw RocksDB, one DB with default options (only the WAL off, as in the
// stores): MultiGet of the batch's unique sorted keys, WriteBatch of rows.
Rate RunRawRocks(const std::string& dir, uint64_t n, const Workload& w) {
  rocksdb::Options o;
  o.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(o, dir, &raw).ok()) std::exit(1);
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  std::vector<float> row(kRowFloats + 2, 0.5f);
  auto enc = [](Key k, char* b) { for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(k >> (56 - 8 * i)); };
  for (uint64_t b = 0; b < n; b += 65536) {
    rocksdb::WriteBatch wb;
    for (uint64_t i = b; i < std::min(n, b + 65536); ++i) {
      char k[8];
      enc(KeyOf(i), k);
      wb.Put(rocksdb::Slice(k, 8), rocksdb::Slice(reinterpret_cast<char*>(row.data()), row.size() * 4));
    }
    db->Write(wo, &wb);
  }
  db->Flush(rocksdb::FlushOptions());
  Rate r;
  std::vector<char> kb(kBatch * 8);
  std::vector<rocksdb::Slice> ks(kBatch);
  std::vector<rocksdb::PinnableSlice> vs(kBatch);
  std::vector<rocksdb::Status> st(kBatch);
  auto t = Clock::now();
  size_t keys = 0;
  for (const auto& b : w.update) {  // unique keys, sorted
    for (size_t i = 0; i < b.size(); ++i) {
      enc(b[i], kb.data() + i * 8);
      ks[i] = rocksdb::Slice(kb.data() + i * 8, 8);
    }
    db->MultiGet(rocksdb::ReadOptions(), db->DefaultColumnFamily(), b.size(), ks.data(), vs.data(),
                 st.data(), true);
    for (size_t i = 0; i < b.size(); ++i) vs[i].Reset();
    keys += b.size();
  }
  r.lookups = keys / Secs(t);
  t = Clock::now();
  keys = 0;
  for (const auto& b : w.update) {
    rocksdb::WriteBatch wb;
    for (size_t i = 0; i < b.size(); ++i) {
      char k[8];
      enc(b[i], k);
      wb.Put(rocksdb::Slice(k, 8), rocksdb::Slice(reinterpret_cast<char*>(row.data()), row.size() * 4));
    }
    db->Write(wo, &wb);
    keys += b.size();
  }
  r.updates = keys / Secs(t);
  return r;
}

}  // namespace

namespace ctrps::storage_bench {

void StoresSection(const std::string& root, uint64_t n) {
  std::printf("\n== per-store throughput: %llu rows, dim %d + %d Adagrad slots, batch %d, 1 thread ==\n",
              static_cast<unsigned long long>(n), kDim, kSlots, kBatch);
  std::printf("%-10s %-26s %14s %14s %10s\n", "keys", "store", "lookups/s", "updates/s", "vs gather");
  const int batches = 150;
  struct Dist { const char* name; double s; } dists[] = {{"uniform", 0}, {"zipf1.05", 1.05}, {"zipf1.2", 1.2}};
  // The stores are loaded once and measured under each distribution.
  std::unique_ptr<EmbeddingStore> mem, rocks, tiered_hot, tiered_q;
  if (Want("memory")) {
    mem = NewMemoryStore();
    Load(mem.get(), n);
  }
  if (Want("rocksdb")) {
    rocks = std::move(OpenRocksDbStore(DiskOptions(root + "/rocksdb"))).value();
    Load(rocks.get(), n);
    Check(rocks->Flush(), "flush");
  }
  TieredOptions hot;
  hot.disk = DiskOptions(root + "/tiered-hot");
  hot.dram_budget_bytes = n * 220;  // every row fits: the hot path
  if (Want("tiered-hot")) {
    tiered_hot = std::move(OpenTieredStore(hot)).value();
    Load(tiered_hot.get(), n);
    WarmAll(tiered_hot.get(), n);
  }
  TieredOptions quarter = hot;
  quarter.disk = DiskOptions(root + "/tiered-quarter");
  quarter.dram_budget_bytes = n * kRowFloats * 4 / 4;  // a quarter of the row bytes
  if (Want("tiered-quarter")) {
    tiered_q = std::move(OpenTieredStore(quarter)).value();
    Load(tiered_q.get(), n);
    Check(tiered_q->Flush(), "flush");
  }
  for (const Dist& d : dists) {
    auto ranks = MakeBatches(n, d.s, batches, 7);
    Workload w{d.name, {}, {}};
    for (const auto& b : ranks) {
      w.lookup.push_back(Keys(b));
      w.update.push_back(UniqueKeys(b));
    }
    // Warm the tiers and caches with one pass of other batches of the same law.
    auto warm = MakeBatches(n, d.s, 50, 8);
    Workload ww{d.name, {}, {}};
    for (const auto& b : warm) ww.lookup.push_back(Keys(b));
    Rate g = RunGather(ranks, n);
    std::printf("%-10s %-26s %14.0f %14.0f %10s\n", d.name, "plain in-memory gather", g.lookups, g.updates, "1.00");
    auto row = [&](const char* name, EmbeddingStore* s) {
      RunStore(s, Workload{d.name, ww.lookup, {}}, 1);
      Rate r = RunStore(s, w);
      std::printf("%-10s %-26s %14.0f %14.0f %10.2f\n", d.name, name, r.lookups, r.updates, r.lookups / g.lookups);
    };
    if (mem) row("memory", mem.get());
    if (tiered_hot) row("tiered (all rows in DRAM)", tiered_hot.get());
    if (tiered_q) row("tiered (DRAM = 1/4 rows)", tiered_q.get());
    if (rocks) row("rocksdb (tuned)", rocks.get());
    if (Want("raw")) {
      Rate raw = RunRawRocks(root + std::string("/raw-") + d.name, n, w);
      std::printf("%-10s %-26s %14.0f %14.0f %10.2f   (unique keys)\n", d.name, "raw RocksDB MultiGet/WB",
                  raw.lookups, raw.updates, raw.lookups / g.lookups);
    }
    if (tiered_q) {
      auto ts = tiered_q->Stats(kTable);
      std::printf("%-10s   tiered 1/4: hit rate so far %.3f\n", d.name,
                  static_cast<double>(ts->dram_hits) / std::max<uint64_t>(1, ts->dram_hits + ts->dram_misses));
    }
  }
}

}  // namespace ctrps::storage_bench

int main(int argc, char** argv) {
  uint64_t rows = 1000000, ooc_rows = 2000000, snap_rows = 10000000;
  std::string dir = "/tmp/storage_bench", sections = "stores,put,ooc,snapshot";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&](const char* f) { return a.rfind(f, 0) == 0 ? a.substr(std::strlen(f)) : std::string(); };
    if (!val("--rows=").empty()) rows = std::stoull(val("--rows="));
    else if (!val("--ooc_rows=").empty()) ooc_rows = std::stoull(val("--ooc_rows="));
    else if (!val("--snap_rows=").empty()) snap_rows = std::stoull(val("--snap_rows="));
    else if (!val("--dir=").empty()) dir = val("--dir=");
    else if (!val("--sections=").empty()) sections = val("--sections=");
    else if (!val("--stores=").empty()) g_stores = val("--stores=");
    else {
      std::fprintf(stderr, "usage: storage_bench [--rows=N] [--ooc_rows=N] [--snap_rows=N] [--dir=D] "
                           "[--sections=stores,put,ooc,snapshot] [--stores=...]\n");
      return 2;
    }
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  if (sections.find("stores") != std::string::npos) InChild([&] { StoresSection(dir, rows); });
  if (sections.find("put") != std::string::npos) InChild([&] { PutSection(dir, rows); });
  if (sections.find("ooc") != std::string::npos) InChild([&] { OutOfCoreSection(dir, ooc_rows); });
  if (sections.find("snapshot") != std::string::npos) InChild([&] { SnapshotSection(dir, snap_rows); });
  fs::remove_all(dir);
  return 0;
}
