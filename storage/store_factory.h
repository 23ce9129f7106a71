// Factories of every EmbeddingStore, chosen by StoreOptions (filled from the
// StorageConfig message by launch/).
#pragma once

#include <memory>
#include <string>

#include "storage/admission.h"
#include "storage/embedding_store.h"
#include "storage/store_options.h"

namespace ctrps::storage {

struct StoreOptions {
  enum class Kind { kMemory, kRocksDb, kTiered };
  Kind kind = Kind::kMemory;
  RocksDbOptions rocksdb;  // kRocksDb (and the disk tier of kTiered: tiered.disk is ignored)
  size_t dram_budget_bytes = size_t{1} << 30;  // kTiered: see TieredOptions
  PolicyOptions policy;  // admission and eviction per table (off by default)
  Status Validate() const;
};

// The RocksDB store: one instance per virtual shard under opt.dir.
StatusOr<std::unique_ptr<EmbeddingStore>> OpenRocksDbStore(const RocksDbOptions& opt);
// The tiered store: a DRAM tier of opt.dram_budget_bytes over opt.disk.
StatusOr<std::unique_ptr<EmbeddingStore>> OpenTieredStore(const TieredOptions& opt);
// Any kind, wrapped by NewPolicyStore when opt.policy enables a policy.
StatusOr<std::unique_ptr<EmbeddingStore>> OpenStore(const StoreOptions& opt);
// Restores a snapshot (verified first) into opt's directory, which must be
// absent or empty, and opens it. Not for kMemory.
StatusOr<std::unique_ptr<EmbeddingStore>> OpenStoreFromSnapshot(const std::string& snapshot_dir,
                                                                const StoreOptions& opt);

}  // namespace ctrps::storage
