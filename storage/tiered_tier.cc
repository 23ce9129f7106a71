// The DRAM tier's slot management: planned insertions (free slots, unused
// capacity, then CLOCK victims), their commit, and the write-back of dirty
// rows to the disk tier. See tiered_tier.h.
#include "storage/tiered_tier.h"

#include <algorithm>

namespace ctrps::storage::tiered {

void Tier::Reset(size_t cap) {
  capacity = cap;
  slab.reset(new float[std::max<size_t>(1, cap * rf)]);
  keys.clear(); stats.clear(); freq.clear(); flags.clear(); pin.clear(); free_slots.clear();
  keys.reserve(cap); stats.reserve(cap); freq.reserve(cap); flags.reserve(cap); pin.reserve(cap);
  index = SlotIndex(cap);
  hand = 0;
  dram_only = 0;
}

size_t SlotBytes(const TableSpec& s) {
  return s.row_floats() * sizeof(float) + sizeof(Key) + sizeof(RowStats) + 2 + sizeof(uint32_t) +
         SlotIndex::kBytesPerSlot;
}

// Chooses a slot for each of `count` rows without changing the tier:
// free slots, then unused capacity, then CLOCK victims (never pinned).
Plan PlanInsert(Tier* t, size_t count) {
  Plan p;
  p.slot.assign(count, SlotIndex::kNone);
  p.new_used = t->keys.size();
  size_t free_taken = 0;
  const uint32_t epoch = t->epoch;
  for (size_t j = 0; j < count; ++j) {
    if (free_taken < t->free_slots.size()) {
      p.slot[j] = t->free_slots[t->free_slots.size() - 1 - free_taken++];
      p.fresh_free.push_back(p.slot[j]);
    } else if (p.new_used < t->capacity) {
      p.slot[j] = static_cast<uint32_t>(p.new_used++);
    } else {
      uint32_t v = FindVictim(t, epoch);
      if (v == SlotIndex::kNone) break;  // everything pinned: the rest bypass
      t->pin[v] = epoch;
      p.slot[j] = v;
      p.victims.push_back(v);
    }
  }
  return p;
}

uint32_t FindVictim(Tier* t, uint32_t epoch) {
  const size_t used = t->keys.size();
  for (size_t step = 0; step < (kMaxFreq + 2) * used; ++step) {
    if (t->hand >= used) t->hand = 0;
    uint32_t s = static_cast<uint32_t>(t->hand++);
    if (t->flags[s] == kFreeSlot || t->pin[s] == epoch) continue;  // free or pinned
    if (t->freq[s] > 0) { --t->freq[s]; continue; }
    return s;
  }
  return SlotIndex::kNone;
}

void CollectVictims(Tier* t, const Plan& p, std::vector<Key>* k, std::vector<float>* r,
                    std::vector<RowStats>* s) {
  for (uint32_t v : p.victims) {
    if (!(t->flags[v] & kDirty) && (t->flags[v] & kOnDisk)) continue;
    k->push_back(t->keys[v]);
    r->insert(r->end(), t->Row(v), t->Row(v) + t->rf);
    s->push_back(t->stats[v]);
  }
}

// Applies a plan after its write-backs succeeded: victims leave the tier.
void CommitPlan(Tier* t, const Plan& p) {
  for (uint32_t v : p.victims) {
    t->index.Erase(t->keys[v]);
    if (!(t->flags[v] & kOnDisk)) --t->dram_only;
    t->flags[v] = kFreeSlot;
    ++t->evictions;
  }
  t->free_slots.resize(t->free_slots.size() - p.fresh_free.size());
  while (t->keys.size() < p.new_used) {
    t->keys.push_back(Tier::kFreeKey);
    t->stats.emplace_back();
    t->freq.push_back(0);
    t->flags.push_back(kFreeSlot);
    t->pin.push_back(0);
  }
}

void Install(Tier* t, uint32_t s, Key key, const float* row, const RowStats& st, uint8_t flags) {
  std::copy_n(row, t->rf, t->Row(s));
  t->keys[s] = key;
  t->stats[s] = st;
  t->freq[s] = 1;
  t->flags[s] = flags;
  t->pin[s] = t->epoch;
  if (!(flags & kOnDisk)) ++t->dram_only;
  t->index.Insert(key, s);
}

void Free(Tier* t, uint32_t s) {
  t->index.Erase(t->keys[s]);
  if (!(t->flags[s] & kOnDisk)) --t->dram_only;
  t->flags[s] = kFreeSlot;
  t->keys[s] = Tier::kFreeKey;
  t->free_slots.push_back(s);
}

// Restores a Modify whose bypass write failed.
void RollBack(Tier* t, const std::vector<uint32_t>& where, const std::vector<float>& undo_rows,
              const std::vector<RowStats>& undo_stats, const std::vector<uint8_t>& undo_flags,
              const Cold& c, const Plan& p) {
  for (size_t i = 0, h = 0; i < where.size(); ++i) {
    if (where[i] == SlotIndex::kNone) continue;
    std::copy_n(undo_rows.data() + h * t->rf, t->rf, t->Row(where[i]));
    t->stats[where[i]] = undo_stats[h];
    t->flags[where[i]] = undo_flags[h];
    ++h;
  }
  for (uint32_t u = 0; u < c.keys.size(); ++u) {
    uint32_t s = p.slot[u];
    if (s == SlotIndex::kNone) continue;
    if (c.found[u]) {  // back to the disk value, clean
      std::copy_n(c.rows.data() + u * t->rf, t->rf, t->Row(s));
      t->stats[s] = c.stats[u];
      t->flags[s] = kOnDisk;
    } else {
      Free(t, s);
    }
  }
}

Status WriteBackAll(Tier* t, RocksDbStore* disk) {
  std::vector<Key> k;
  std::vector<float> r;
  std::vector<RowStats> s;
  std::vector<uint32_t> slots;
  auto write = [&]() -> Status {
    if (k.empty()) return Status::OK();
    RETURN_IF_ERROR(disk->WriteRows(t->spec.table_id, k.data(), k.size(), r.data(), s.data()));
    for (uint32_t x : slots) {
      if (!(t->flags[x] & kOnDisk)) --t->dram_only;
      t->flags[x] = kOnDisk;
    }
    t->writebacks += k.size();
    k.clear(); r.clear(); s.clear(); slots.clear();
    return Status::OK();
  };
  for (uint32_t x = 0; x < t->keys.size(); ++x) {
    if (!t->NeedsWriteBack(x)) continue;
    k.push_back(t->keys[x]);
    r.insert(r.end(), t->Row(x), t->Row(x) + t->rf);
    s.push_back(t->stats[x]);
    slots.push_back(x);
    if (k.size() == 65536) RETURN_IF_ERROR(write());
  }
  return write();
}

}  // namespace ctrps::storage::tiered
