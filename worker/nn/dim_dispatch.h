// Internal: compile-time embedding dims for the per-example kernels. A field
// vector of a common dim (4, 8, 16, 32, 64) becomes a fixed-size Eigen
// vector, i.e. a few SIMD registers; other dims take the runtime-size path.
#pragma once

#include <type_traits>

#include <Eigen/Core>

namespace ctrps::worker::internal {

// Upper bound of a runtime dim in kernels that keep vectors on the stack.
constexpr int kMaxDynamicDim = 1024;

// kD > 0: Matrix<float, kD, 1>; kD == 0: a runtime-size vector of at most
// kMaxDynamicDim floats, stack-allocated.
template <int kD>
using FieldVec = Eigen::Matrix<float, (kD > 0 ? kD : Eigen::Dynamic), 1, Eigen::ColMajor,
                               (kD > 0 ? kD : kMaxDynamicDim), 1>;

// Calls fn(std::integral_constant<int, kD>()) with kD = d for the compiled
// dims and kD = 0 otherwise.
template <typename Fn>
void DispatchDim(int d, Fn&& fn) {
  switch (d) {
    case 4: fn(std::integral_constant<int, 4>()); break;
    case 8: fn(std::integral_constant<int, 8>()); break;
    case 16: fn(std::integral_constant<int, 16>()); break;
    case 32: fn(std::integral_constant<int, 32>()); break;
    case 64: fn(std::integral_constant<int, 64>()); break;
    default: fn(std::integral_constant<int, 0>()); break;
  }
}

}  // namespace ctrps::worker::internal
