#include "tests/fuzz/alloc_cap.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace ctrps::testing {
namespace {
std::atomic<size_t> g_cap{0};
std::atomic<size_t> g_refused{0};

void* Allocate(size_t n) {
  const size_t cap = g_cap.load(std::memory_order_relaxed);
  if (cap != 0 && n > cap) {
    size_t prev = g_refused.load();
    while (n > prev && !g_refused.compare_exchange_weak(prev, n)) {
    }
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
}  // namespace

void SetAllocationCap(size_t bytes) { g_cap.store(bytes); }
size_t TakeRefusedAllocation() { return g_refused.exchange(0); }

}  // namespace ctrps::testing

void* operator new(size_t n) { return ctrps::testing::Allocate(n); }
void* operator new[](size_t n) { return ctrps::testing::Allocate(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  try {
    return ctrps::testing::Allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  try {
    return ctrps::testing::Allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
