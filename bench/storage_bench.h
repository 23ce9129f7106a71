// Shared by storage_bench's files: storage_bench.cc (the per-store
// throughput section and main), storage_bench_sections.cc (Put, out of
// core, snapshot) and storage_bench_util.cc (the helpers below): the
// benchmark table, its keys and workloads, timing, RSS and child processes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/keys.h"
#include "common/status.h"
#include "storage/embedding_store.h"
#include "storage/store_options.h"

namespace ctrps::storage_bench {

using Clock = std::chrono::steady_clock;
using storage::EmbeddingStore;

constexpr int kDim = 16, kSlots = 16, kRowFloats = kDim + kSlots, kBatch = 4096;
constexpr int kTable = 1;

struct Rate {
  double lookups = 0, updates = 0;
};

struct Workload {
  const char* name;
  std::vector<std::vector<Key>> lookup;  // with repeats, as pulled
  std::vector<std::vector<Key>> update;  // unique, as pushed
};

// The stores the stores section measures (--stores=...).
extern std::string g_stores;
bool Want(const char* name);

double Secs(Clock::time_point a);
// Exits the process with `what` and the error unless s is OK.
void Check(const Status& s, const char* what);
// Rank r (0 = most frequent) -> key; ranks are scattered over the key space.
Key KeyOf(uint64_t rank);
long PeakRssMiB();  // VmHWM of this process
long RssMiB();      // VmRSS of this process
// Batches of kBatch ranks: uniform (s = 0), or Zipf(s).
std::vector<std::vector<uint64_t>> MakeBatches(uint64_t n, double s, int batches, uint64_t seed);
std::vector<Key> Keys(const std::vector<uint64_t>& ranks);
std::vector<Key> UniqueKeys(const std::vector<uint64_t>& ranks);
storage::TableSpec Spec();  // dim kDim + kSlots Adagrad slots
// Creates the table and loads rows 0..n-1.
void Load(EmbeddingStore* store, uint64_t n);
// The Adagrad step the trainer's server applies (row and state together).
void Adagrad(float* row, const float* g);
// Lookups/s and updates/s of `w` on `store`: the best of `reps` passes.
Rate RunStore(EmbeddingStore* store, const Workload& w, int reps = 3);
storage::RocksDbOptions DiskOptions(const std::string& dir);  // 16 virtual shards
// Runs fn in a child process (its own peak RSS); waits for it.
void InChild(const std::function<void()>& fn);
// Reads every row once, in key-rank order.
void WarmAll(EmbeddingStore* s, uint64_t n);

// The sections; main runs each in a child process.
void StoresSection(const std::string& root, uint64_t n);
void PutSection(const std::string& root, uint64_t n);
void OutOfCoreSection(const std::string& root, uint64_t n);
void SnapshotSection(const std::string& root, uint64_t n);

}  // namespace ctrps::storage_bench
