// Admission/eviction state per virtual shard: one store holding every shard
// decides exactly like one store per shard (the single-process trainer vs
// parameter servers), and the state saved in shard files (version 2) makes
// a resumed stream decide exactly like an uninterrupted one.
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/keys.h"
#include "storage/admission.h"
#include "storage/shard_file.h"
#include "tests/storage/store_fixtures.h"

namespace ctrps::storage {
namespace {

constexpr uint32_t kShards = 4;
constexpr int kTable = 3;

TableSpec Spec() { return testing::MakeSpec(kTable, 2, 1, 5); }

struct Case {
  const char* name;
  TablePolicy policy;
};

std::vector<Case> Cases() {
  Case seen{"min_seen", {}};
  seen.policy.admission.min_seen = 3;
  seen.policy.admission.counter_bytes = 256 << 10;
  seen.policy.eviction.max_unseen_steps = 4;
  seen.policy.eviction.every_steps = 5;
  Case prob{"probability", {}};
  prob.policy.admission.probability = 0.3;
  prob.policy.admission.seed = 17;
  prob.policy.eviction.min_count = 2;
  prob.policy.eviction.every_steps = 6;
  return {seen, prob};
}

std::unique_ptr<EmbeddingStore> Policy(const TablePolicy& p, std::vector<uint32_t> shards) {
  PolicyOptions o;
  o.defaults = p;
  o.num_virtual_shards = kShards;
  o.shards = std::move(shards);
  auto s = NewPolicyStore(NewMemoryStore(), o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE((*s)->CreateTable(Spec()).ok());
  return std::move(s).value();
}

// The training stream: step s looks up a Zipf-ish batch of unique keys,
// then updates them (row[0] += 1, row[2] += step). Odd steps have no key of
// shard s % 4, so shards reach eviction steps at different calls.
std::vector<Key> Batch(uint32_t step) {
  std::mt19937_64 rng(step * 7919);
  std::vector<Key> keys;
  std::vector<uint8_t> used(3000, 0);
  for (int i = 0; i < 300; ++i) {
    const uint64_t id = static_cast<uint64_t>(3000.0 * std::pow((rng() >> 11) * 0x1.0p-53, 2.5));
    const Key k = MakeKey(kTable, id);
    if (step % 2 == 1 && VirtualShardOf(k, kShards) == step % kShards) continue;
    if (id < used.size() && !used[id]) used[id] = 1, keys.push_back(k);
  }
  return keys;
}

// A store per shard, or one for all; calls are routed the way the
// parameter server routes them (each shard's keys in batch order).
class Cluster {
 public:
  Cluster(const TablePolicy& p, bool per_shard) {
    if (per_shard)
      for (uint32_t v = 0; v < kShards; ++v) stores_.push_back(Policy(p, {v}));
    else
      stores_.push_back(Policy(p, {}));
  }
  void Step(uint32_t step) {
    const std::vector<Key> keys = Batch(step);
    for (size_t s = 0; s < stores_.size(); ++s) {
      std::vector<Key> mine;
      for (Key k : keys)
        if (stores_.size() == 1 || VirtualShardOf(k, kShards) == s) mine.push_back(k);
      if (mine.empty()) continue;
      std::vector<float> out(mine.size() * 2);
      ASSERT_TRUE(stores_[s]->Lookup(kTable, mine.data(), mine.size(), out.data(), 2, true).ok());
      ASSERT_TRUE(stores_[s]->Modify(kTable, mine.data(), mine.size(), step, [&](size_t, float* r) {
        r[0] += 1;
        r[2] += static_cast<float>(step);
      }).ok());
    }
  }
  std::map<Key, std::vector<float>> Rows() const {
    std::map<Key, std::vector<float>> out;
    for (const auto& s : stores_)
      EXPECT_TRUE(s->Scan(kTable, [&](Key k, const float* r, const RowStats& st) {
        out[k] = {r[0], r[1], r[2], static_cast<float>(st.count), static_cast<float>(st.last_step)};
        return true;
      }).ok());
    return out;
  }
  std::vector<uint64_t> Counters() const {
    TableStats sum;
    for (const auto& s : stores_) AddTableStats(*s->Stats(kTable), &sum);
    return {sum.rows, sum.admitted, sum.rejected_lookups, sum.dropped_updates, sum.evicted_stale,
            sum.evicted_rare};
  }
  EmbeddingStore* store(size_t i) { return stores_[i].get(); }
  size_t size() const { return stores_.size(); }

 private:
  std::vector<std::unique_ptr<EmbeddingStore>> stores_;
};

constexpr uint32_t kSteps = 40;

TEST(AdmissionShardsTest, OneStoreOfAllShardsDecidesLikeOneStorePerShard) {
  for (const Case& c : Cases()) {
    Cluster one(c.policy, false), split(c.policy, true);
    for (uint32_t step = 1; step <= kSteps; ++step) {
      one.Step(step);
      split.Step(step);
    }
    const auto counters = one.Counters();
    EXPECT_GT(counters[2], 0u) << c.name << ": no lookup was rejected";
    EXPECT_GT(counters[4] + counters[5], 0u) << c.name << ": nothing was evicted";
    EXPECT_EQ(counters, split.Counters()) << c.name;
    EXPECT_TRUE(one.Rows() == split.Rows()) << c.name;
  }
}

// Resume at step k from shard files written by either layout, into either
// layout: the end state equals the uninterrupted run's. Without the policy
// state (rows only, as before version 2) it does not.
TEST(AdmissionShardsTest, ShardFilesCarryThePolicyStateAcrossAResume) {
  for (const Case& c : Cases()) {
    Cluster ref(c.policy, false);
    for (uint32_t step = 1; step <= kSteps; ++step) ref.Step(step);
    for (bool save_split : {false, true}) {
      for (bool load_split : {false, true}) {
        const std::string dir = testing::FreshDir("policy-state");
        Cluster first(c.policy, save_split);
        for (uint32_t step = 1; step <= 17; ++step) first.Step(step);
        for (size_t i = 0; i < first.size(); ++i) {
          std::vector<uint32_t> shards;
          for (uint32_t v = 0; v < kShards; ++v)
            if (first.size() == 1 || v == i) shards.push_back(v);
          auto files = WriteStoreShards(*first.store(i), dir, kShards, shards, 17, 0);
          ASSERT_TRUE(files.ok()) << files.status().ToString();
        }
        Cluster second(c.policy, load_split);
        for (uint32_t v = 0; v < kShards; ++v) {
          EmbeddingStore* s = second.store(second.size() == 1 ? 0 : v);
          Status st = LoadShardFile(dir + "/" + ShardFileName(v), v, kShards, s);
          ASSERT_TRUE(st.ok()) << st.ToString();
        }
        for (uint32_t step = 18; step <= kSteps; ++step) second.Step(step);
        EXPECT_EQ(second.Counters(), ref.Counters()) << c.name << " " << save_split << load_split;
        EXPECT_TRUE(second.Rows() == ref.Rows()) << c.name << " " << save_split << load_split;
      }
    }
    // Rows only: the fresh sketches admit differently.
    Cluster first(c.policy, false), rows_only(c.policy, false);
    for (uint32_t step = 1; step <= 17; ++step) first.Step(step);
    for (const auto& [k, row] : first.Rows()) {
      const float full[3] = {row[0], row[1], row[2]};
      const RowStats st{static_cast<uint32_t>(row[3]), static_cast<uint32_t>(row[4])};
      ASSERT_TRUE(rows_only.store(0)->Put(kTable, &k, 1, full, &st).ok());
    }
    for (uint32_t step = 18; step <= kSteps; ++step) rows_only.Step(step);
    EXPECT_FALSE(rows_only.Rows() == ref.Rows()) << c.name << ": the state made no difference";
  }
}

TEST(AdmissionShardsTest, ShardFileVersionsAndBadPolicyState) {
  Cluster c(Cases()[0].policy, false);
  for (uint32_t step = 1; step <= 7; ++step) c.Step(step);
  const std::string dir = testing::FreshDir("policy-file");
  ASSERT_TRUE(WriteStoreShards(*c.store(0), dir, kShards, {0, 1, 2, 3}, 7, 0).ok());
  const std::string path = dir + "/" + ShardFileName(2);
  ShardFileHeader h;
  ASSERT_TRUE(ReadShardFile(path, &h, nullptr).ok());
  auto saved = c.store(0)->SavePolicyState(2);
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(h.policy_state, *saved);
  uint32_t version = 0;
  {
    std::ifstream f(path, std::ios::binary);
    f.seekg(8);
    f.read(reinterpret_cast<char*>(&version), 4);
  }
  EXPECT_EQ(version, 2u);
  // A store without policies writes version 1 files, and ignores a state.
  auto plain = NewMemoryStore();
  ASSERT_TRUE(plain->CreateTable(Spec()).ok());
  ASSERT_TRUE(LoadShardFile(path, 2, kShards, plain.get()).ok());
  const std::string dir1 = testing::FreshDir("policy-file-v1");
  ASSERT_TRUE(WriteStoreShards(*plain, dir1, kShards, {2}, 7, 0).ok());
  {
    std::ifstream f(dir1 + "/" + ShardFileName(2), std::ios::binary);
    f.seekg(8);
    f.read(reinterpret_cast<char*>(&version), 4);
  }
  EXPECT_EQ(version, 1u);
  ASSERT_TRUE(ReadShardFile(dir1 + "/" + ShardFileName(2), &h, nullptr).ok());
  EXPECT_TRUE(h.policy_state.empty());
  // Damaged or misplaced states are refused, naming the shard.
  auto other = Policy(Cases()[0].policy, {});
  Status s = other->LoadPolicyState(1, *saved);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("shard 2 of 4"), std::string::npos) << s.message();
  EXPECT_EQ(other->LoadPolicyState(2, saved->substr(0, saved->size() - 1)).code(),
            Status::Code::kCorruption);
  EXPECT_EQ(other->LoadPolicyState(2, "garbage").code(), Status::Code::kCorruption);
  // Changed admission settings: the counters carry over, the sketch starts afresh.
  TablePolicy changed = Cases()[0].policy;
  changed.admission.min_seen = 5;
  auto fresh = Policy(changed, {});
  ASSERT_TRUE(fresh->LoadPolicyState(2, *saved).ok());
  EXPECT_GT(fresh->Stats(kTable)->rejected_lookups, 0u);
  auto one_shard = Policy(Cases()[0].policy, {0});
  EXPECT_EQ(one_shard->LoadPolicyState(2, *saved).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(one_shard->SavePolicyState(2).status().code(), Status::Code::kInvalidArgument);
  // A key of a shard the store does not hold is a routing error, not a row.
  const Key wrong = [] {
    for (uint64_t i = 0;; ++i)
      if (VirtualShardOf(MakeKey(kTable, i), kShards) != 0) return MakeKey(kTable, i);
  }();
  float out[2];
  EXPECT_EQ(one_shard->Lookup(kTable, &wrong, 1, out, 2, true).code(), Status::Code::kInvalidArgument);
  // A flipped byte in the policy section fails the file's checksum.
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  bytes[bytes.size() - 24 - saved->size() / 2] ^= 0x04;
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  EXPECT_EQ(ReadShardFile(path, nullptr, nullptr).code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace ctrps::storage
