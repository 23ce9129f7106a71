// libFuzzer entry for the readers of untrusted bytes (built only with clang):
//   CTRPS_FUZZ_TARGET=shard_file ./ctrps_fuzz -max_len=65536 -rss_limit_mb=512 corpus/
// Targets: tests/fuzz/fuzz_targets.cc. -malloc_limit_mb catches a reader
// that trusts a size field before checking it against the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ctrps::testing::FuzzTarget* target = [] {
    const char* name = std::getenv("CTRPS_FUZZ_TARGET");
    for (const auto& t : ctrps::testing::FuzzTargets())
      if (name && std::strcmp(name, t.name) == 0) return &t;
    std::fprintf(stderr, "set CTRPS_FUZZ_TARGET to one of:");
    for (const auto& t : ctrps::testing::FuzzTargets()) std::fprintf(stderr, " %s", t.name);
    std::fprintf(stderr, "\n");
    std::exit(2);
  }();
  target->run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
