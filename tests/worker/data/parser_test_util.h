// Runs a LineParser on one line and returns what it produced.
#pragma once

#include <string>
#include <vector>

#include "worker/data/line_parser.h"

namespace ctrps::worker::testing {

struct Parsed {
  bool ok = false;
  float label = -1;
  std::vector<Key> keys;
  std::vector<float> values;
  ParseError error;
};

inline Parsed ParseLine(LineParser& parser, std::string_view line) {
  Parsed p;
  p.keys.assign(parser.num_fields(), ~Key{0});
  p.values.assign(parser.num_fields(), -999.0f);
  p.ok = parser.Parse(line, &p.label, p.keys.data(), p.values.data(), &p.error);
  return p;
}

}  // namespace ctrps::worker::testing
