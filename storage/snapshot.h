// Snapshot manifests: a snapshot directory holds one RocksDB checkpoint per
// virtual shard (shard-NNNN/), VIRTUAL_SHARDS, and SNAPSHOT-MANIFEST, written
// last via tmp + rename, so a snapshot with a manifest is whole.
//
// Manifest format (text, persisted: never change the meaning of version 1):
//   ctrps-snapshot 1
//   <size bytes> <crc32 as 8 hex digits> <path relative to the snapshot dir>
//   ...
#pragma once

#include <string>

#include "common/status.h"

namespace ctrps::storage {

inline constexpr char kManifestName[] = "SNAPSHOT-MANIFEST";

// Lists every regular file under dir (except the manifest) with its size and
// crc32, and writes the manifest atomically.
[[nodiscard]] Status WriteManifest(const std::string& dir);

// Checks a snapshot against its manifest. Errors (Corruption or NotFound)
// name the file: missing manifest, malformed manifest line, a listed file
// that is absent, a size mismatch (truncation), a checksum mismatch (bit
// flips), or a file the manifest does not list.
[[nodiscard]] Status VerifySnapshot(const std::string& dir);

// Materialises a verified snapshot as a live store directory `dest` (which
// must be absent or empty): SST files hard-linked (copied when linking
// fails), the rest copied, so the snapshot itself is never modified.
[[nodiscard]] Status RestoreSnapshotFiles(const std::string& snapshot_dir, const std::string& dest);

}  // namespace ctrps::storage
