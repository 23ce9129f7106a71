// The persisted layout of rows in RocksDB (private to storage/).
// Persisted: never change an existing encoding.
//
// Row key:   'r' + the 64-bit Key big-endian (9 bytes). The table id is the
//            key's top byte, so a table's rows are one contiguous range
//            [RowKey(MakeKey(t, 0)), TableEnd(t)) and DropTable is a DeleteRange.
// Row value: row_floats floats, then RowStats {count, last_step} as two
//            uint32; all little-endian (the host order on every supported CPU).
// Meta keys: 'm' + table id byte -> the table's spec (TableSpecCodec);
//            'n' + table id byte -> the shard's row count of that table
//            (uint64), updated in the same WriteBatch as the rows, so it is
//            exact after any crash or reopen.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "common/keys.h"
#include "common/status.h"
#include "storage/embedding_store.h"

namespace ctrps::storage::codec {

inline constexpr size_t kRowKeySize = 9;

inline void EncodeRowKey(Key key, char* out) {
  out[0] = 'r';
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>(key >> (56 - 8 * i));
}
inline Key DecodeRowKey(const char* in) {
  Key k = 0;
  for (int i = 0; i < 8; ++i) k = (k << 8) | static_cast<uint8_t>(in[1 + i]);
  return k;
}
inline std::string RowKey(Key key) {
  std::string s(kRowKeySize, '\0');
  EncodeRowKey(key, s.data());
  return s;
}
// First key of table t's range and the exclusive end.
inline std::string TableBegin(int t) { return RowKey(MakeKey(t, 0)); }
inline std::string TableEnd(int t) {
  return t + 1 < kMaxTables ? RowKey(MakeKey(t + 1, 0)) : std::string("s");
}
inline std::string SpecKey(int t) { return std::string{'m', static_cast<char>(t)}; }
inline std::string CountKey(int t) { return std::string{'n', static_cast<char>(t)}; }

inline size_t RowValueSize(int row_floats) { return row_floats * sizeof(float) + 8; }
inline void EncodeRowValue(const float* row, int row_floats, const RowStats& st, char* out) {
  std::memcpy(out, row, row_floats * sizeof(float));
  std::memcpy(out + row_floats * sizeof(float), &st.count, 4);
  std::memcpy(out + row_floats * sizeof(float) + 4, &st.last_step, 4);
}
inline void DecodeRowValue(const char* in, int row_floats, float* row, RowStats* st) {
  std::memcpy(row, in, row_floats * sizeof(float));
  if (st) {
    std::memcpy(&st->count, in + row_floats * sizeof(float), 4);
    std::memcpy(&st->last_step, in + row_floats * sizeof(float) + 4, 4);
  }
}

// A TableSpec as text "table_id dim slot_floats seed scale zero_prefix
// slot_value slot_value_count" (floats as hex bit patterns, exact).
std::string EncodeSpec(const TableSpec& spec);
StatusOr<TableSpec> DecodeSpec(const std::string& text);

}  // namespace ctrps::storage::codec
