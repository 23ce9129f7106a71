// Status and StatusOr: the error type of every call that can fail for reasons
// outside the programmer's control (files, RocksDB, MPI peers, bad input, bad
// config). Broken invariants are CHECKs instead (common/check.h).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "common/check.h"

namespace ctrps {

class [[nodiscard]] Status {
 public:
  // Never renumber: codes are written into logs and metrics.
  enum class Code : int {
    kOk = 0,
    kInvalidArgument = 1,  // bad config, bad flag, bad input line
    kNotFound = 2,
    kIOError = 3,
    kCorruption = 4,       // checksums, truncated files, malformed messages
    kUnavailable = 5,      // a peer is gone or silent
    kFailedPrecondition = 6,
    kInternal = 7,
    kOutOfRange = 8,
    kUnimplemented = 9,
    kResourceExhausted = 10,
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status IOError(std::string m) { return Status(Code::kIOError, std::move(m)); }
  static Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
  static Status FailedPrecondition(std::string m) { return Status(Code::kFailedPrecondition, std::move(m)); }
  static Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }
  static Status OutOfRange(std::string m) { return Status(Code::kOutOfRange, std::move(m)); }
  static Status Unimplemented(std::string m) { return Status(Code::kUnimplemented, std::move(m)); }
  static Status ResourceExhausted(std::string m) { return Status(Code::kResourceExhausted, std::move(m)); }

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  const std::string& message() const;
  std::string ToString() const;

  // Returns a copy with "context: " prepended to the message (no-op if ok).
  Status WithContext(const std::string& context) const;

 private:
  struct State {
    Code code;
    std::string message;
  };
  Status(Code code, std::string message)
      : state_(std::make_shared<const State>(State{code, std::move(message)})) {}
  std::shared_ptr<const State> state_;  // null means OK; shared so copies are cheap
};

const char* CodeName(Status::Code code);

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    CHECK(!status_.ok()) << "StatusOr constructed from an OK status without a value";
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  const T& value() const& { CheckOk(); return *value_; }
  T& value() & { CheckOk(); return *value_; }
  T&& value() && { CheckOk(); return std::move(*value_); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  void CheckOk() const { CHECK(status_.ok()) << "value() on error StatusOr: " << status_.ToString(); }
  Status status_;
  std::optional<T> value_;
};

}  // namespace ctrps

#define CTRPS_CONCAT_INNER(a, b) a##b
#define CTRPS_CONCAT(a, b) CTRPS_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    ::ctrps::Status _st = (expr);             \
    if (!_st.ok()) return _st;                \
  } while (0)

// Like RETURN_IF_ERROR, prepending context to the message.
#define RETURN_IF_ERROR_CTX(expr, ctx)        \
  do {                                        \
    ::ctrps::Status _st = (expr);             \
    if (!_st.ok()) return _st.WithContext(ctx); \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

// `ASSIGN_OR_RETURN(auto x, F());` declares x from a StatusOr or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(CTRPS_CONCAT(_status_or_, __LINE__), lhs, expr)
