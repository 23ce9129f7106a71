#include "common/status_wire.h"

namespace ctrps {

std::string EncodeStatus(const Status& s) {
  if (s.ok()) return "";
  return std::to_string(static_cast<int>(s.code())) + ":" + s.message();
}

Status DecodeStatus(const std::string& bytes) {
  if (bytes.empty()) return Status::OK();
  const size_t colon = bytes.find(':');
  int code = -1;
  if (colon != std::string::npos && colon > 0 && colon <= 2) {
    code = 0;
    for (size_t i = 0; i < colon; ++i) {
      if (bytes[i] < '0' || bytes[i] > '9') return Status::Internal(bytes);
      code = code * 10 + (bytes[i] - '0');
    }
  }
  std::string m = colon == std::string::npos ? bytes : bytes.substr(colon + 1);
  using C = Status::Code;
  switch (static_cast<C>(code)) {
    case C::kInvalidArgument: return Status::InvalidArgument(std::move(m));
    case C::kNotFound: return Status::NotFound(std::move(m));
    case C::kIOError: return Status::IOError(std::move(m));
    case C::kCorruption: return Status::Corruption(std::move(m));
    case C::kUnavailable: return Status::Unavailable(std::move(m));
    case C::kFailedPrecondition: return Status::FailedPrecondition(std::move(m));
    case C::kInternal: return Status::Internal(std::move(m));
    case C::kOutOfRange: return Status::OutOfRange(std::move(m));
    case C::kUnimplemented: return Status::Unimplemented(std::move(m));
    case C::kResourceExhausted: return Status::ResourceExhausted(std::move(m));
    case C::kOk: break;
  }
  return Status::Internal(bytes);
}

}  // namespace ctrps
