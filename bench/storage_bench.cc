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
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/hash.h"
#include "storage/embedding_store.h"
#include "storage/snapshot.h"
#include "storage/store_factory.h"

using namespace ctrps;
using namespace ctrps::storage;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

constexpr int kDim = 16, kSlots = 16, kRowFloats = kDim + kSlots, kBatch = 4096;
constexpr int kTable = 1;

double Secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

// Rank r (0 = most frequent) -> key; ranks are scattered over the key space.
Key KeyOf(uint64_t rank) { return MakeKey(kTable, Mix64(rank * 2654435761ULL + 12345)); }

long PeakRssMiB() {  // VmHWM of this process
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6) / 1024;
  return -1;
}
long RssMiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6) / 1024;
  return -1;
}

// Batches of ranks: uniform, or Zipf(s) by inversion of the exact CDF.
std::vector<std::vector<uint64_t>> MakeBatches(uint64_t n, double s, int batches, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<uint64_t>> out(batches, std::vector<uint64_t>(kBatch));
  if (s == 0) {
    std::uniform_int_distribution<uint64_t> u(0, n - 1);
    for (auto& b : out)
      for (auto& r : b) r = u(rng);
    return out;
  }
  std::vector<double> cdf(n);
  double acc = 0;
  for (uint64_t i = 0; i < n; ++i) cdf[i] = acc += std::pow(static_cast<double>(i + 1), -s);
  std::uniform_real_distribution<double> u(0, acc);
  for (auto& b : out)
    for (auto& r : b) r = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
  return out;
}

std::vector<Key> Keys(const std::vector<uint64_t>& ranks) {
  std::vector<Key> k(ranks.size());
  for (size_t i = 0; i < k.size(); ++i) k[i] = KeyOf(ranks[i]);
  return k;
}
std::vector<Key> UniqueKeys(const std::vector<uint64_t>& ranks) {
  std::vector<Key> k = Keys(ranks);
  std::sort(k.begin(), k.end());
  k.erase(std::unique(k.begin(), k.end()), k.end());
  return k;
}

TableSpec Spec() {
  TableSpec s;
  s.table_id = kTable;
  s.dim = kDim;
  s.slot_floats = kSlots;
  s.init.seed = 1;
  s.init.slot_value = 0.1f;  // Adagrad's initial accumulator
  return s;
}

// Loads rows 0..n-1 (Put in batches of 64K).
void Load(EmbeddingStore* store, uint64_t n) {
  Check(store->CreateTable(Spec()), "create table");
  const uint64_t chunk = 65536;
  std::vector<Key> keys;
  std::vector<float> rows(chunk * kRowFloats);
  for (uint64_t b = 0; b < n; b += chunk) {
    uint64_t m = std::min(chunk, n - b);
    keys.resize(m);
    for (uint64_t i = 0; i < m; ++i) {
      keys[i] = KeyOf(b + i);
      InitRow(Spec().init, keys[i], kDim, kSlots, rows.data() + i * kRowFloats);
    }
    Check(store->Put(kTable, keys.data(), m, rows.data(), nullptr), "load");
  }
}

// The Adagrad step the trainer's server applies (row and state together).
void Adagrad(float* row, const float* g) {
  for (int j = 0; j < kDim; ++j) {
    row[kDim + j] += g[j] * g[j];
    row[j] -= 0.05f * g[j] / std::sqrt(row[kDim + j]);
  }
}

struct Rate {
  double lookups = 0, updates = 0;
};

struct Workload {
  const char* name;
  std::vector<std::vector<Key>> lookup;  // with repeats, as pulled
  std::vector<std::vector<Key>> update;  // unique, as pushed
};

// Best of `reps` passes (the machine is shared: the best pass is the one
// least disturbed by other processes).
Rate RunStore(EmbeddingStore* store, const Workload& w, int reps = 3) {
  std::vector<float> out(kBatch * kDim), grads(kBatch * kDim, 0.01f);
  Rate r;
  for (int rep = 0; rep < reps; ++rep) {
    auto t = Clock::now();
    size_t keys = 0;
    for (const auto& b : w.lookup) {
      Check(store->Lookup(kTable, b.data(), b.size(), out.data(), kDim, true), "lookup");
      keys += b.size();
    }
    if (keys) r.lookups = std::max(r.lookups, keys / Secs(t));
    t = Clock::now();
    keys = 0;
    for (size_t i = 0; i < w.update.size(); ++i) {
      const auto& b = w.update[i];
      Check(store->Modify(kTable, b.data(), b.size(), static_cast<uint32_t>(i + 1),
                          [&](size_t j, float* row) { Adagrad(row, grads.data() + j * kDim); }),
            "modify");
      keys += b.size();
    }
    if (keys) r.updates = std::max(r.updates, keys / Secs(t));
  }
  return r;
}

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

RocksDbOptions DiskOptions(const std::string& dir) {
  RocksDbOptions o;
  o.dir = dir;
  o.virtual_shards = 16;
  return o;
}

// Runs fn in a child process (its own peak RSS); waits for it.
void InChild(const std::function<void()>& fn) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    fn();
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "section failed (status %d)\n", status);
    std::exit(1);
  }
}

std::string g_stores = "memory,tiered-hot,tiered-quarter,rocksdb,raw";
bool Want(const char* name) { return g_stores.find(name) != std::string::npos; }

// Reads every row once, in key-rank order (fills a DRAM tier that holds them all).
void WarmAll(EmbeddingStore* s, uint64_t n) {
  std::vector<Key> k;
  std::vector<float> out(kBatch * kDim);
  for (uint64_t b = 0; b < n; b += kBatch) {
    k.clear();
    for (uint64_t i = b; i < std::min(n, b + kBatch); ++i) k.push_back(KeyOf(i));
    Check(s->Lookup(kTable, k.data(), k.size(), out.data(), kDim, true), "warm");
  }
}

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

uint64_t DirBytes(const std::string& d) {
  uint64_t b = 0;
  for (auto& e : fs::recursive_directory_iterator(d))
    if (e.is_regular_file()) b += e.file_size();
  return b;
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

}  // namespace

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
