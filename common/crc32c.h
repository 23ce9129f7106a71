// CRC-32C (Castagnoli), the checksum of checkpoint files: the SSE4.2 crc32
// instruction where the CPU has it (about 8 GB/s, so checksumming a
// checkpoint costs little next to writing it), else a table-driven loop
// with the same result. Persisted: never change the polynomial or seed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctrps {

// Extends `crc` (0 to start) over n bytes at data; Crc32c(Crc32c(0, a), b)
// equals the CRC of a followed by b.
uint32_t Crc32c(uint32_t crc, const void* data, size_t n);

}  // namespace ctrps
