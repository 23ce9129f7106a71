// One fuzz iteration over the data pipeline's input-facing code, shared by
// the libFuzzer target (reader_fuzz.cc) and the randomized robustness test:
// any bytes go through the line reader, the line checks, every parser and
// the gzip decoder. Crashes, hangs and sanitizer reports are the failures;
// the returned counts let the test check invariants.
#pragma once

#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "worker/data/avazu_parser.h"
#include "worker/data/byte_source.h"
#include "worker/data/criteo_parser.h"
#include "worker/data/libffm_parser.h"
#include "worker/data/line_reader.h"
#include "worker/data/text_util.h"

namespace ctrps::worker::testing {

struct FuzzCounts {
  int lines = 0;
  int parsed = 0;          // (line, parser) pairs accepted
  int invariant_errors = 0;  // accepted rows with a wrong table id, label or value
};

inline void ParseWithAll(std::string_view line, FuzzCounts* counts) {
  static CriteoParser criteo_log(0, IntegerEncoding::kLogBucket);
  static CriteoParser criteo_scale(1, IntegerEncoding::kScale);
  static AvazuParser avazu(0);
  static LibffmParser ffm(5, 0);
  static CriteoParser criteo_unlabeled(0, IntegerEncoding::kLogBucket, /*labeled=*/false);
  static AvazuParser avazu_unlabeled(0, false);
  static LibffmParser ffm_unlabeled(5, 0, false);
  LineParser* parsers[] = {&criteo_log, &criteo_scale,     &avazu,
                           &ffm,        &criteo_unlabeled, &avazu_unlabeled,
                           &ffm_unlabeled};
  std::vector<Key> keys(64);
  std::vector<float> values(64);
  for (LineParser* parser : parsers) {
    float label = -1;
    ParseError error;
    if (!parser->Parse(line, &label, keys.data(), values.data(), &error)) {
      if (error.detail.empty()) ++counts->invariant_errors;  // every rejection explains itself
      continue;
    }
    ++counts->parsed;
    if (label != 0.0f && label != 1.0f) ++counts->invariant_errors;
    for (int f = 0; f < parser->num_fields(); ++f) {
      if (KeyTable(keys[f]) != f || !std::isfinite(values[f])) ++counts->invariant_errors;
    }
  }
  (void)avazu.CheckHeader(line);
  (void)avazu_unlabeled.CheckHeader(line);
}

inline FuzzCounts FuzzOneInput(std::string_view data) {
  FuzzCounts counts;
  ParseWithAll(data, &counts);
  LineReaderOptions options;
  options.read_buffer_bytes = 4096;
  options.max_line_bytes = 300;
  LineReader reader(NewStringSource(std::string(data), 1 + data.size() % 13), 0, options);
  Line line;
  while (true) {
    StatusOr<bool> more = reader.Next(&line);
    if (!more.ok() || !*more) break;
    ++counts.lines;
    MalformedReason reason;
    size_t offset;
    if (!line.too_long && CheckLineBytes(line.text, &reason, &offset)) ParseWithAll(line.text, &counts);
  }
  auto gzip = NewGzipDecoder(NewStringSource(std::string(data)), "fuzz.gz");
  char buf[4096];
  for (int i = 0; i < 1 << 16; ++i) {  // bounded: a tiny input cannot inflate forever
    StatusOr<size_t> got = gzip->Read(buf, sizeof(buf));
    if (!got.ok() || *got == 0) break;
  }
  return counts;
}

}  // namespace ctrps::worker::testing
