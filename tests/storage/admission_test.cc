// Admission (seen-N-times, probability) and eviction (stale, rare) policies.
#include "storage/admission.h"

#include <vector>

#include <gtest/gtest.h>

#include "storage/snapshot.h"
#include "storage/store_factory.h"
#include "tests/storage/store_fixtures.h"

namespace ctrps::storage {
namespace {

TableSpec Spec(int id) { return testing::MakeSpec(id, 2, 1, 3); }

std::unique_ptr<EmbeddingStore> Wrap(std::unique_ptr<EmbeddingStore> inner, const TablePolicy& p) {
  PolicyOptions o;
  o.defaults = p;
  auto s = NewPolicyStore(std::move(inner), o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

TEST(AdmissionTest, AdmitsAfterMinSeenSightings) {
  TablePolicy p;
  p.admission.min_seen = 3;
  auto store = Wrap(NewMemoryStore(), p);
  ASSERT_TRUE(store->CreateTable(Spec(1)).ok());
  Key k = MakeKey(1, 42);
  std::vector<float> init(3), got(3);
  ASSERT_TRUE(store->Lookup(1, &k, 1, init.data(), 3, false).ok());  // eval: not a sighting
  for (int seen = 1; seen <= 2; ++seen) {
    ASSERT_TRUE(store->Lookup(1, &k, 1, got.data(), 3, true).ok());
    EXPECT_EQ(got, init);
    ASSERT_TRUE(store->Modify(1, &k, 1, seen, [](size_t, float* r) { r[0] += 1; }).ok());
    EXPECT_EQ(store->Stats(1)->rows, 0u) << "admitted after " << seen << " sightings";
  }
  ASSERT_TRUE(store->Lookup(1, &k, 1, got.data(), 3, true).ok());
  ASSERT_TRUE(store->Modify(1, &k, 1, 3, [](size_t, float* r) { r[0] += 1; }).ok());
  ASSERT_TRUE(store->Lookup(1, &k, 1, got.data(), 3, true).ok());
  EXPECT_EQ(got[0], init[0] + 1);  // only the update after admission applied
  auto s = store->Stats(1);
  EXPECT_EQ(s->rows, 1u);
  EXPECT_EQ(s->admitted, 1u);
  EXPECT_EQ(s->rejected_lookups, 2u);
  EXPECT_EQ(s->dropped_updates, 2u);
}

TEST(AdmissionTest, ManyKeysEachAdmittedAtTheirThreshold) {
  TablePolicy p;
  p.admission.min_seen = 2;
  p.admission.counter_bytes = 64 << 10;
  auto store = Wrap(NewMemoryStore(), p);
  ASSERT_TRUE(store->CreateTable(Spec(1)).ok());
  std::vector<Key> once, twice;
  for (int i = 0; i < 5000; ++i) (i % 2 ? once : twice).push_back(MakeKey(1, i * 977 + 5));
  std::vector<float> out(5000 * 2);
  ASSERT_TRUE(store->Lookup(1, once.data(), once.size(), out.data(), 2, true).ok());
  ASSERT_TRUE(store->Lookup(1, twice.data(), twice.size(), out.data(), 2, true).ok());
  ASSERT_TRUE(store->Lookup(1, twice.data(), twice.size(), out.data(), 2, true).ok());
  auto s = store->Stats(1);
  // The sketch never under-counts; with 32K counters per row over 5000 keys
  // it over-counts a once-seen key only rarely.
  EXPECT_GE(s->rows, twice.size());
  EXPECT_LE(s->rows, twice.size() + 50);
}

TEST(AdmissionTest, ProbabilityAdmitsAboutPAndKeepsAdmittedKeys) {
  TablePolicy p;
  p.admission.probability = 0.25;
  p.admission.seed = 9;
  auto store = Wrap(NewMemoryStore(), p);
  ASSERT_TRUE(store->CreateTable(Spec(2)).ok());
  std::vector<Key> keys;
  for (int i = 0; i < 20000; ++i) keys.push_back(MakeKey(2, i));
  std::vector<float> out(keys.size() * 2);
  ASSERT_TRUE(store->Lookup(2, keys.data(), keys.size(), out.data(), 2, true).ok());
  uint64_t rows = store->Stats(2)->rows;
  EXPECT_NEAR(static_cast<double>(rows), 5000.0, 400.0);
  EXPECT_EQ(store->Stats(2)->admitted, rows);
  // A second pass admits about a quarter of the rest; admitted keys stay.
  ASSERT_TRUE(store->Lookup(2, keys.data(), keys.size(), out.data(), 2, true).ok());
  EXPECT_NEAR(static_cast<double>(store->Stats(2)->rows), 5000.0 + 15000 * 0.25, 500.0);
}

TEST(AdmissionTest, RowsThatExistAreUpdatedEvenIfNotAdmitted) {
  // A restored store starts with an empty sketch: its rows must still train.
  auto inner = NewMemoryStore();
  ASSERT_TRUE(inner->CreateTable(Spec(1)).ok());
  Key k = MakeKey(1, 7);
  std::vector<float> row = {1, 2, 3};
  ASSERT_TRUE(inner->Put(1, &k, 1, row.data(), nullptr).ok());
  TablePolicy p;
  p.admission.min_seen = 10;
  auto store = Wrap(std::move(inner), p);
  std::vector<float> got(3);
  ASSERT_TRUE(store->Lookup(1, &k, 1, got.data(), 3, true).ok());
  EXPECT_EQ(got, row);
  ASSERT_TRUE(store->Modify(1, &k, 1, 1, [](size_t, float* r) { r[0] = 5; }).ok());
  ASSERT_TRUE(store->Lookup(1, &k, 1, got.data(), 3, false).ok());
  EXPECT_EQ(got[0], 5.0f);
  EXPECT_EQ(store->Stats(1)->dropped_updates, 0u);
}

TEST(EvictionTest, ScheduledEvictionCountsStaleAndRare) {
  TablePolicy p;
  p.eviction.max_unseen_steps = 5;
  p.eviction.min_count = 2;
  p.eviction.every_steps = 10;
  auto store = Wrap(NewMemoryStore(), p);
  ASSERT_TRUE(store->CreateTable(Spec(1)).ok());
  std::vector<Key> a, b;
  for (int i = 0; i < 100; ++i) a.push_back(MakeKey(1, i));
  for (int i = 100; i < 150; ++i) b.push_back(MakeKey(1, i));
  auto nop = [](size_t, float*) {};
  ASSERT_TRUE(store->Modify(1, a.data(), a.size(), 1, nop).ok());      // a: count 1, step 1
  for (uint32_t step = 6; step <= 8; ++step)                            // b: count 3, step 8
    ASSERT_TRUE(store->Modify(1, b.data(), b.size(), step, nop).ok());
  ASSERT_TRUE(store->Modify(1, a.data(), 10, 9, nop).ok());            // a[0..9]: count 2, step 9
  EXPECT_EQ(store->Stats(1)->rows, 150u);
  Key c = MakeKey(1, 999);
  ASSERT_TRUE(store->Modify(1, &c, 1, 10, nop).ok());  // step 10: eviction runs first
  auto s = store->Stats(1);
  EXPECT_EQ(s->evicted_stale, 90u);  // a[10..99], last seen at step 1
  EXPECT_EQ(s->evicted_rare, 0u);    // a[0..9] seen twice, b three times
  EXPECT_EQ(s->rows, 61u);
  EmbeddingStore::EvictPolicy on_demand;
  on_demand.now_step = 10;
  on_demand.min_count = 3;
  auto gone = store->Evict(1, on_demand);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(*gone, 11u);  // a[0..9] and c
  EXPECT_EQ(store->Stats(1)->evicted_rare, 11u);
}

TEST(EvictionTest, SnapshotEvictsFirst) {
  StoreOptions o;
  o.kind = StoreOptions::Kind::kTiered;
  o.rocksdb = testing::SmallRocksDb(testing::FreshDir("evict-snap"));
  o.dram_budget_bytes = 1 << 20;
  o.policy.defaults.eviction.max_unseen_steps = 3;
  auto store = OpenStore(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->CreateTable(Spec(1)).ok());
  std::vector<Key> old_keys = {MakeKey(1, 1), MakeKey(1, 2)}, new_keys = {MakeKey(1, 3)};
  ASSERT_TRUE((*store)->Modify(1, old_keys.data(), 2, 1, [](size_t, float*) {}).ok());
  ASSERT_TRUE((*store)->Modify(1, new_keys.data(), 1, 20, [](size_t, float*) {}).ok());
  std::string snap = testing::FreshDir("evict-snap-out") + "/snap";
  ASSERT_TRUE((*store)->Snapshot(snap).ok());
  EXPECT_TRUE(VerifySnapshot(snap).ok());
  EXPECT_EQ((*store)->Stats(1)->evicted_stale, 2u);
  StoreOptions r = o;
  r.rocksdb.dir = testing::FreshDir("evict-snap-restore") + "/db";
  auto restored = OpenStoreFromSnapshot(snap, r);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ((*restored)->Stats(1)->rows, 1u);
}

TEST(PolicyOptionsTest, RejectsBadSettings) {
  PolicyOptions o;
  o.defaults.admission.min_seen = 300;
  EXPECT_EQ(o.Validate().code(), Status::Code::kInvalidArgument);
  o.defaults.admission.min_seen = 3;
  o.defaults.admission.probability = 0.5;
  EXPECT_EQ(o.Validate().code(), Status::Code::kInvalidArgument);
  o.defaults.admission.probability = 0;
  EXPECT_EQ(o.Validate().code(), Status::Code::kInvalidArgument);
  PolicyOptions e;
  e.per_table[4].eviction.every_steps = 10;
  Status s = e.Validate();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("table 4"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ctrps::storage
