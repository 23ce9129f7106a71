// Every reader of untrusted bytes (tests/fuzz/fuzz_targets.h) fed mutations
// of valid inputs for a bounded time: CTRPS_FUZZ_SECONDS per target (default
// 4; CI runs this through ctest), or CTRPS_FUZZ_ITERATIONS at most. The
// mutations are the damage files and messages really take: bit flips,
// truncation, size fields overwritten with boundary values, bytes
// inserted, removed or repeated. A crash or sanitizer report fails the
// run; so does one allocation over 64 MiB for an input of a few KiB (a
// size taken from the input and trusted before it was checked).
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>

#include <gtest/gtest.h>

#include "tests/fuzz/alloc_cap.h"
#include "tests/fuzz/fuzz_targets.h"

namespace ctrps::testing {
namespace {

constexpr size_t kAllocationCap = size_t{64} << 20;

double EnvNumber(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atof(v) : fallback;
}

std::string Mutate(std::string s, const std::vector<std::string>& seeds, std::mt19937_64& rng) {
  static const uint32_t kBoundaries[] = {0,          1,          2,          7,
                                         8,          24,         0x7FFFFFFF, 0x80000000,
                                         0xFFFFFFFF, 0xFFFFFFFE, 0x10000,    0x1000000};
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits; ++e) {
    const size_t pos = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 8) {
      case 0:  // bit flip
        if (!s.empty()) s[pos] = static_cast<char>(s[pos] ^ (1 << (rng() % 8)));
        break;
      case 1:  // truncation
        s.resize(pos);
        break;
      case 2: {  // a 32-bit field set to a boundary value
        const uint32_t v = kBoundaries[rng() % (sizeof(kBoundaries) / sizeof(kBoundaries[0]))];
        const size_t at = pos & ~size_t{3};
        if (at + 4 <= s.size()) std::memcpy(&s[at], &v, 4);
        break;
      }
      case 3: {  // a 64-bit field set to a boundary value
        const uint64_t v = rng() % 2 ? ~uint64_t{0} - rng() % 4 : uint64_t{1} << (rng() % 64);
        const size_t at = pos & ~size_t{7};
        if (at + 8 <= s.size()) std::memcpy(&s[at], &v, 8);
        break;
      }
      case 4:  // bytes removed
        if (!s.empty()) s.erase(pos, 1 + rng() % 16);
        break;
      case 5:  // a run repeated
        s.insert(pos, s.substr(rng() % (s.size() + 1), rng() % 32));
        break;
      case 6:  // random bytes
        if (!s.empty()) s[pos] = static_cast<char>(rng());
        break;
      default: {  // spliced with another seed's tail
        const std::string& o = seeds[rng() % seeds.size()];
        if (!o.empty()) s = s.substr(0, pos) + o.substr(rng() % o.size());
        break;
      }
    }
  }
  return s;
}

// Runs one input under the cap; false (with the reason) if it failed.
bool RunOne(const FuzzTarget& t, const std::string& input, std::string* why) {
  ScopedAllocationCap cap(kAllocationCap);
  try {
    t.run(input);
  } catch (const std::bad_alloc&) {
    const size_t asked = TakeRefusedAllocation();
    *why = "asked for " + std::to_string(asked) + " bytes at once on an input of " +
           std::to_string(input.size()) + " bytes";
    return false;
  } catch (const std::exception& e) {
    *why = std::string("threw ") + e.what();
    return false;
  }
  return true;
}

std::string Hex(const std::string& s) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && i < 256; ++i) {
    out += kDigits[static_cast<uint8_t>(s[i]) >> 4];
    out += kDigits[static_cast<uint8_t>(s[i]) & 15];
  }
  return out + (s.size() > 256 ? "..." : "");
}

class FuzzTest : public ::testing::TestWithParam<int> {};

TEST_P(FuzzTest, MutatedInputsNeverCrashOrOverAllocate) {
  const FuzzTarget& t = FuzzTargets()[GetParam()];
  const std::vector<std::string> seeds = t.seeds();
  ASSERT_FALSE(seeds.empty()) << t.name << ": no seed inputs";
  const double seconds = EnvNumber("CTRPS_FUZZ_SECONDS", 4);
  const double max_iterations = EnvNumber("CTRPS_FUZZ_ITERATIONS", 1e9);
  std::mt19937_64 rng(static_cast<uint64_t>(EnvNumber("CTRPS_FUZZ_SEED", 19)) + GetParam());
  std::string why;
  for (const std::string& s : seeds) ASSERT_TRUE(RunOne(t, s, &why)) << t.name << " seed: " << why;
  const auto start = std::chrono::steady_clock::now();
  int64_t n = 0;
  std::vector<std::string> pool = seeds;
  for (; n < max_iterations; ++n) {
    if ((n & 15) == 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds)
      break;
    std::string input = Mutate(pool[rng() % pool.size()], seeds, rng);
    ASSERT_TRUE(RunOne(t, input, &why)) << t.name << ": " << why << "\ninput (hex): " << Hex(input);
    // Mutations of mutations reach deeper; the pool stays small.
    if (rng() % 8 == 0) {
      if (pool.size() < 64) pool.push_back(std::move(input));
      else pool[seeds.size() + rng() % (pool.size() - seeds.size())] = std::move(input);
    }
  }
  std::printf("fuzz %s: %lld inputs\n", t.name, static_cast<long long>(n));
}

// What a hostile QA pass found, kept as fixed inputs.
TEST(FuzzRegressionTest, ShardFileWithAPolicySectionPastItsEnd) {
  // 57 bytes: a version 2 header without tables, then a policy section
  // header claiming ~4 GiB with 17 bytes left. An unsigned subtraction in
  // the bound check (bytes left minus the 24-byte trailer) wrapped, and
  // `ckpt verify` allocated the 4 GiB.
  std::string f("CTRPSHD1", 8);
  for (uint32_t v : {2u, 1u, 4u, 0u, 9u, 0u, 0xFFFFFFFFu, 0xFFFFFFF0u})
    f.append(reinterpret_cast<const char*>(&v), 4);
  f.append(17, '\x01');
  ASSERT_EQ(f.size(), 57u);
  for (const FuzzTarget& t : FuzzTargets()) {
    if (std::string(t.name) != "shard_file") continue;
    std::string why;
    EXPECT_TRUE(RunOne(t, f, &why)) << why;
  }
}

INSTANTIATE_TEST_SUITE_P(Readers, FuzzTest,
                         ::testing::Range(0, static_cast<int>(FuzzTargets().size())),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(FuzzTargets()[info.param].name);
                         });

}  // namespace
}  // namespace ctrps::testing
