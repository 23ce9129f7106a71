// The three EmbeddingStore implementations, opened on a test directory, for
// the conformance suite and the other storage tests. The disk stores use 4
// virtual shards and small caches; the tiered store gets a DRAM tier of
// 64 KiB (about a thousand rows of a small table), so any test touching more
// rows than that goes through eviction and write-back.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "storage/embedding_store.h"
#include "storage/store_factory.h"
#include "tests/storage/temp_dir.h"

namespace ctrps::storage::testing {

// A table spec for tests: rows of dim + slot_floats floats, key-seeded init.
inline TableSpec MakeSpec(int table_id, int dim, int slot_floats, uint64_t init_seed = 0) {
  TableSpec s;
  s.table_id = table_id;
  s.dim = dim;
  s.slot_floats = slot_floats;
  s.init.seed = init_seed;
  return s;
}

inline RocksDbOptions SmallRocksDb(const std::string& dir) {
  RocksDbOptions o;
  o.dir = dir;
  o.virtual_shards = 4;
  o.block_cache_bytes = size_t{8} << 20;
  o.memtable_bytes = size_t{4} << 20;
  o.background_jobs = 1;
  return o;
}

struct StoreKind {
  const char* name;
  bool persistent;
  std::function<std::unique_ptr<EmbeddingStore>(const std::string& dir)> open;
};
inline void PrintTo(const StoreKind& k, std::ostream* os) { *os << k.name; }

inline std::unique_ptr<EmbeddingStore> OrNull(StatusOr<std::unique_ptr<EmbeddingStore>> s) {
  if (!s.ok()) {
    ADD_FAILURE() << s.status().ToString();
    return nullptr;
  }
  return std::move(s).value();
}

inline std::vector<StoreKind> AllStoreKinds() {
  return {
      {"memory", false, [](const std::string&) { return NewMemoryStore(); }},
      {"rocksdb", true, [](const std::string& dir) { return OrNull(OpenRocksDbStore(SmallRocksDb(dir))); }},
      {"tiered", true,
       [](const std::string& dir) {
         TieredOptions t;
         t.disk = SmallRocksDb(dir);
         t.dram_budget_bytes = size_t{64} << 10;
         return OrNull(OpenTieredStore(t));
       }},
  };
}

}  // namespace ctrps::storage::testing
