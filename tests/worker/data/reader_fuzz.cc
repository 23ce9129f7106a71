// libFuzzer target for the data pipeline (built only with clang):
//   ./reader_fuzz -max_len=4096 corpus/
#include <cstddef>
#include <cstdint>

#include "tests/worker/data/fuzz_one_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctrps::worker::testing::FuzzCounts counts =
      ctrps::worker::testing::FuzzOneInput(std::string_view(reinterpret_cast<const char*>(data), size));
  if (counts.invariant_errors != 0) __builtin_trap();
  return 0;
}
