// Finite-difference gradient checking for the worker/nn tests.
//
// A layer or model maps inputs to outputs Y; the tests check the gradient of
// the scalar L = sum(G * Y) for a fixed random G (so every output matters)
// against central differences (L(p + h) - L(p - h)) / (actual step), with L
// accumulated in double. Most layers here are polynomials of degree <= 3 in
// any one parameter, where central differences are exact up to rounding, so
// a moderate h keeps float rounding small; ReLU kinks are kept out of reach
// by the tests (see ShapeForReluSafety in model_test.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "worker/nn/model.h"

namespace ctrps::worker::testing {

// Deterministic U(-scale, scale) matrix.
MatrixF RandomMatrix(int rows, int cols, uint64_t seed, float scale = 1.0f);

// sum(g * y) in double.
double Dot(const MatrixF& g, const MatrixF& y);

struct GradCheckOptions {
  float step = 1e-2f;
  double abs_tol = 2e-3;  // |numeric - analytic| <= abs_tol + rel_tol * max(|numeric|, |analytic|)
  double rel_tol = 1e-2;
};

struct GradCheckResult {
  bool ok = true;
  int checked = 0;
  double max_abs_error = 0;
  std::string message;  // the worst coordinate when !ok
};

// For each of the n floats at `param` (perturbed in place, then restored),
// compares the central difference of `loss` with `analytic[i]` (which must
// not alias param and is read before any perturbation).
GradCheckResult CheckGradient(const std::string& what, float* param, const float* analytic,
                              size_t n, const std::function<double()>& loss,
                              const GradCheckOptions& options = {});

}  // namespace ctrps::worker::testing
