// CHECK(cond) << "message": aborts with file:line and the message when an
// invariant is broken. Not for errors caused by input; those return Status.
#pragma once

#include <sstream>
#include <string>

namespace ctrps::internal {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `CHECK(x) << ...` be a void expression in both branches of ?:.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace ctrps::internal

#define CHECK(cond)                                      \
  (cond) ? (void)0                                       \
         : ::ctrps::internal::Voidify() &                \
               ::ctrps::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()

#define CHECK_EQ(a, b) CHECK((a) == (b)) << #a " = " << (a) << ", " #b " = " << (b) << " "
#define CHECK_NE(a, b) CHECK((a) != (b)) << #a " = " << (a) << ", " #b " = " << (b) << " "
#define CHECK_LT(a, b) CHECK((a) < (b)) << #a " = " << (a) << ", " #b " = " << (b) << " "
#define CHECK_LE(a, b) CHECK((a) <= (b)) << #a " = " << (a) << ", " #b " = " << (b) << " "
#define CHECK_GT(a, b) CHECK((a) > (b)) << #a " = " << (a) << ", " #b " = " << (b) << " "
#define CHECK_GE(a, b) CHECK((a) >= (b)) << #a " = " << (a) << ", " #b " = " << (b) << " "

#ifdef NDEBUG
#define DCHECK(cond) \
  while (false) CHECK(cond)
#else
#define DCHECK(cond) CHECK(cond)
#endif
