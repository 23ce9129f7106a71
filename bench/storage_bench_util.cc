// storage_bench's shared helpers (see storage_bench.h).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

#include "bench/storage_bench.h"
#include "common/hash.h"
#include "storage/row_init.h"

namespace ctrps::storage_bench {

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

storage::TableSpec Spec() {
  storage::TableSpec s;
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

// Best of `reps` passes (the machine is shared: the best pass is the one
// least disturbed by other processes).
Rate RunStore(EmbeddingStore* store, const Workload& w, int reps) {
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

storage::RocksDbOptions DiskOptions(const std::string& dir) {
  storage::RocksDbOptions o;
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

}  // namespace ctrps::storage_bench
