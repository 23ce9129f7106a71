// storage_bench's Put, out-of-core and snapshot sections (see
// storage_bench.cc for what each measures).
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>

#include "bench/storage_bench.h"
#include "storage/snapshot.h"
#include "storage/store_factory.h"
#include "storage/row_init.h"

namespace ctrps::storage_bench {
namespace fs = std::filesystem;
using namespace ctrps::storage;

namespace {

uint64_t DirBytes(const std::string& d) {
  uint64_t b = 0;
  for (auto& e : fs::recursive_directory_iterator(d))
    if (e.is_regular_file()) b += e.file_size();
  return b;
}

}  // namespace

// Put of n rows in chunks of 4096 (as a checkpoint restore loads a shard
// file): into a freshly dropped and re-created table (the bulk-load path),
// then over the same rows again in another order (each Put reads first).
void PutSection(const std::string& root, uint64_t n) {
  std::printf("\n== Put (restore): %llu rows in chunks of 4096, dim %d + %d slots, 1 thread ==\n",
              static_cast<unsigned long long>(n), kDim, kSlots);
  std::printf("%-26s %16s %16s\n", "store", "empty rows/s", "overwrite rows/s");
  const uint64_t chunk = 4096;
  std::vector<uint64_t> order(n);
  for (uint64_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(11));
  auto put_all = [&](EmbeddingStore* s, bool shuffled) {
    std::vector<Key> keys;
    std::vector<float> rows(chunk * kRowFloats);
    auto t = Clock::now();
    for (uint64_t b = 0; b < n; b += chunk) {
      uint64_t m = std::min(chunk, n - b);
      keys.resize(m);
      for (uint64_t i = 0; i < m; ++i) {
        keys[i] = KeyOf(shuffled ? order[b + i] : b + i);
        InitRow(Spec().init, keys[i], kDim, kSlots, rows.data() + i * kRowFloats);
      }
      Check(s->Put(kTable, keys.data(), m, rows.data(), nullptr), "put");
    }
    Check(s->Flush(), "flush");
    return n / Secs(t);
  };
  auto row = [&](const char* name, EmbeddingStore* s) {
    Check(s->CreateTable(Spec()), "create table");
    Load(s, std::min<uint64_t>(n, 65536));  // some rows, then dropped, as a restore does
    Check(s->DropTable(kTable), "drop");
    Check(s->CreateTable(Spec()), "create table");
    double empty = put_all(s, false);
    double over = put_all(s, true);
    if (s->Stats(kTable)->rows != n) {
      std::fprintf(stderr, "%s: %llu rows after Put, expected %llu\n", name,
                   static_cast<unsigned long long>(s->Stats(kTable)->rows), static_cast<unsigned long long>(n));
      std::exit(1);
    }
    std::printf("%-26s %16.0f %16.0f\n", name, empty, over);
  };
  if (Want("rocksdb")) {
    auto s = std::move(OpenRocksDbStore(DiskOptions(root + "/put-rocksdb"))).value();
    row("rocksdb", s.get());
  }
  if (Want("tiered")) {
    TieredOptions o;
    o.disk = DiskOptions(root + "/put-tiered");
    o.dram_budget_bytes = n * kRowFloats * 4 / 4;
    auto s = std::move(OpenTieredStore(o)).value();
    row("tiered (DRAM = 1/4 rows)", s.get());
  }
}

void OutOfCoreSection(const std::string& root, uint64_t n) {
  long base = RssMiB();
  size_t budget = n * kRowFloats * sizeof(float) / 4;
  std::printf("\n== out of core: %llu rows (%.0f MiB of row data), DRAM budget %.0f MiB (1/4) ==\n",
              static_cast<unsigned long long>(n), n * kRowFloats * 4.0 / (1 << 20), budget / 1048576.0);
  TieredOptions o;
  o.disk = DiskOptions(root + "/ooc");
  o.disk.block_cache_bytes = 32 << 20;
  o.disk.memtable_bytes = 32 << 20;
  o.dram_budget_bytes = budget;
  auto store = std::move(OpenTieredStore(o)).value();
  Load(store.get(), n);
  Check(store->Flush(), "flush");
  std::printf("%-10s %10s %14s %14s %12s %12s\n", "keys", "hit rate", "lookups/s", "updates/s", "RSS MiB", "peak MiB");
  for (double s : {1.05, 1.2}) {
    auto warm = MakeBatches(n, s, 100, 3);
    for (const auto& b : warm) {
      auto k = Keys(b);
      std::vector<float> out(k.size() * kDim);
      Check(store->Lookup(kTable, k.data(), k.size(), out.data(), kDim, true), "warm");
    }
    auto before = *store->Stats(kTable);
    auto ranks = MakeBatches(n, s, 150, 4);
    Workload w{"", {}, {}};
    for (const auto& b : ranks) {
      w.lookup.push_back(Keys(b));
      w.update.push_back(UniqueKeys(b));
    }
    Rate r = RunStore(store.get(), w);
    auto after = *store->Stats(kTable);
    double hits = after.dram_hits - before.dram_hits, misses = after.dram_misses - before.dram_misses;
    std::printf("zipf%-6.2f %10.3f %14.0f %14.0f %12ld %12ld\n", s, hits / (hits + misses), r.lookups,
                r.updates, RssMiB(), PeakRssMiB());
  }
  std::printf("RSS before opening the store %ld MiB; peak %ld MiB = budget %.0f MiB + %.0f MiB fixed overhead "
              "(block cache %d MiB, memtables %d MiB, RocksDB, load buffers)\n",
              base, PeakRssMiB(), budget / 1048576.0, PeakRssMiB() - base - budget / 1048576.0, 32, 32);
}

void SnapshotSection(const std::string& root, uint64_t n) {
  std::printf("\n== snapshot and restore: %llu rows (tiered store, 16 shards) ==\n",
              static_cast<unsigned long long>(n));
  StoreOptions o;
  o.kind = StoreOptions::Kind::kTiered;
  o.rocksdb = DiskOptions(root + "/snap-live");
  o.dram_budget_bytes = size_t{256} << 20;
  auto t = Clock::now();
  auto store = std::move(OpenStore(o)).value();
  Load(store.get(), n);
  // Some dirty rows in DRAM, as in training.
  auto ranks = MakeBatches(n, 1.05, 50, 5);
  for (size_t i = 0; i < ranks.size(); ++i) {
    auto k = UniqueKeys(ranks[i]);
    Check(store->Modify(kTable, k.data(), k.size(), i + 1, [](size_t, float* r) { r[0] += 1; }), "modify");
  }
  std::printf("load %.1f s\n", Secs(t));
  t = Clock::now();
  Check(store->Snapshot(root + "/snap"), "snapshot");
  double snap_s = Secs(t);
  uint64_t bytes = DirBytes(root + "/snap");
  t = Clock::now();
  Check(VerifySnapshot(root + "/snap"), "verify");
  double verify_s = Secs(t);
  store.reset();
  StoreOptions r = o;
  r.rocksdb.dir = root + "/snap-restored";
  t = Clock::now();
  auto restored = std::move(OpenStoreFromSnapshot(root + "/snap", r)).value();
  double restore_s = Secs(t);
  if (restored->Stats(kTable)->rows != n) {
    std::fprintf(stderr, "restored %llu rows, expected %llu\n",
                 static_cast<unsigned long long>(restored->Stats(kTable)->rows), static_cast<unsigned long long>(n));
    std::exit(1);
  }
  double mb = bytes / 1048576.0;
  std::printf("%-28s %10s %10s\n", "", "seconds", "MiB/s");
  std::printf("%-28s %10.2f %10.0f\n", "snapshot (flush+ckpt+crc)", snap_s, mb / snap_s);
  std::printf("%-28s %10.2f %10.0f\n", "verify", verify_s, mb / verify_s);
  std::printf("%-28s %10.2f %10.0f\n", "restore (verify+link+open)", restore_s, mb / restore_s);
  std::printf("snapshot size %.0f MiB (%.1f bytes/row)\n", mb, static_cast<double>(bytes) / n);
}

}  // namespace ctrps::storage_bench
