// A Status sent to another rank and read back with its code and message as
// they were, so a relayed error is not wrapped in a second code name
// ("Failed precondition: Failed precondition: ...").
#pragma once

#include <string>

#include "common/status.h"

namespace ctrps {

// "<code>:<message>"; "" for OK.
std::string EncodeStatus(const Status& s);
// The Status EncodeStatus wrote; bytes that are not one come back as an
// Internal error holding them.
Status DecodeStatus(const std::string& bytes);

}  // namespace ctrps
