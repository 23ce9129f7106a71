// A cap on single allocations, for the fuzz targets: a reader handed a few
// KiB of damaged bytes must not ask for gigabytes (a size read from the
// input and trusted before it was checked against the input's size). While
// a cap is set, operator new throws std::bad_alloc for any one request
// above it and remembers the largest such request, so a fuzz iteration can
// fail with "asked for N bytes on an input of M". The replacement
// operator new lives in alloc_cap.cc; link it only into test binaries.
#pragma once

#include <cstddef>

namespace ctrps::testing {

// 0 = no cap (the default).
void SetAllocationCap(size_t bytes);
// The largest request refused since the last call (0 if none), and resets it.
size_t TakeRefusedAllocation();

// Sets a cap for a scope.
class ScopedAllocationCap {
 public:
  explicit ScopedAllocationCap(size_t bytes) { SetAllocationCap(bytes); }
  ~ScopedAllocationCap() { SetAllocationCap(0); }
  ScopedAllocationCap(const ScopedAllocationCap&) = delete;
  ScopedAllocationCap& operator=(const ScopedAllocationCap&) = delete;
};

}  // namespace ctrps::testing
