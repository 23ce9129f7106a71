// The tiered store's DRAM tier of one table (private to storage/): a fixed
// number of slots, a key -> slot index, per-slot stats, CLOCK frequency
// counters, flags and pins, and the operations on them that the store's
// calls compose (tiered_store.cc). Not thread-safe: callers hold Tier::mu.
//
// Eviction is CLOCK with a 2-bit frequency counter: an access sets the
// counter up by one (saturating at 3); the hand skips a slot while
// decrementing its counter and evicts the first slot at 0. Rows of the
// running batch are pinned (pin == epoch).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "storage/embedding_store.h"
#include "storage/rocksdb_store.h"
#include "storage/slot_index.h"

namespace ctrps::storage::tiered {

constexpr uint8_t kDirty = 1;   // DRAM copy differs from disk
constexpr uint8_t kOnDisk = 2;  // the row exists on disk
constexpr uint8_t kFreeSlot = 0xff;  // flags of a slot that holds no row
constexpr uint8_t kMaxFreq = 3;

struct Tier {
  TableSpec spec;
  size_t rf = 0;
  size_t capacity = 0;  // slots
  std::unique_ptr<float[]> slab;  // capacity * rf, touched only as slots fill
  std::vector<Key> keys;          // per used slot
  std::vector<RowStats> stats;
  std::vector<uint8_t> freq, flags;
  std::vector<uint32_t> pin;      // epoch of the batch that pinned the slot
  std::vector<uint32_t> free_slots;
  SlotIndex index;
  size_t hand = 0;
  uint32_t epoch = 0;
  uint64_t dram_only = 0;  // resident rows not yet on disk
  uint64_t lookups = 0, created = 0, hits = 0, misses = 0, evictions = 0, writebacks = 0;
  std::mutex mu;

  float* Row(uint32_t s) { return slab.get() + s * rf; }
  // Whether slot s holds a row that the disk tier lacks or holds older:
  // what a write-back writes.
  bool NeedsWriteBack(uint32_t s) const { return flags[s] != kFreeSlot && flags[s] != kOnDisk; }
  static constexpr Key kFreeKey = ~Key{0};

  // Empties the tier and gives it `cap` slots.
  void Reset(size_t cap);
};

// DRAM bytes per slot of a table (row, key, stats, flags, pin, index).
size_t SlotBytes(const TableSpec& s);

// A planned insertion of rows into the tier.
struct Plan {
  std::vector<uint32_t> slot;     // per row to insert: its slot, or kNone = bypass
  std::vector<uint32_t> victims;  // resident slots to evict
  std::vector<uint32_t> fresh_free;  // free-list slots taken
  size_t new_used = 0;
};

// The distinct cold keys of a batch, read from disk in one batched call
// (absent rows initialised from their key).
struct Cold {
  std::vector<Key> keys;
  std::vector<uint32_t> slot;  // per miss (in order): index into keys
  std::vector<float> rows;
  std::vector<RowStats> stats;
  std::vector<uint8_t> found;
};

// Chooses a slot for each of `count` rows without changing the tier:
// free slots, then unused capacity, then CLOCK victims (never pinned).
Plan PlanInsert(Tier* t, size_t count);
uint32_t FindVictim(Tier* t, uint32_t epoch);
// Appends the victims that must be written back (dirty or not on disk).
void CollectVictims(Tier* t, const Plan& p, std::vector<Key>* k, std::vector<float>* r,
                    std::vector<RowStats>* s);
// Applies a plan after its write-backs succeeded: victims leave the tier.
void CommitPlan(Tier* t, const Plan& p);
void Install(Tier* t, uint32_t s, Key key, const float* row, const RowStats& st, uint8_t flags);
void Free(Tier* t, uint32_t s);
// Restores a Modify whose bypass write failed.
void RollBack(Tier* t, const std::vector<uint32_t>& where, const std::vector<float>& undo_rows,
              const std::vector<RowStats>& undo_stats, const std::vector<uint8_t>& undo_flags,
              const Cold& c, const Plan& p);
// Writes every row that NeedsWriteBack to `disk` (batches of 65536 rows);
// they stay resident, clean.
[[nodiscard]] Status WriteBackAll(Tier* t, RocksDbStore* disk);

// ScanShards of the tiered store (tiered_scan.cc): the rows of the wanted
// virtual shards (disk's own sharding), shard by shard in key order, each
// row as DRAM holds it if it NeedsWriteBack, else as the disk holds it.
// Writes nothing back. Takes t->mu only while copying one shard's DRAM rows.
// Not a point-in-time view if other threads write meanwhile (the dirty rows
// are listed once, up front): callers (checkpoints) scan with no writers.
[[nodiscard]] Status ScanTierShards(Tier* t, const RocksDbStore& disk,
                                    const std::vector<uint8_t>& wanted,
                                    const EmbeddingStore::ScanFn& fn);

}  // namespace ctrps::storage::tiered
