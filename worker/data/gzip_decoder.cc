// The gzip side of byte_source.h, on zlib's inflate, with restart points
// (gzip_restart.h) recorded as it goes and resumed from.
#include <zlib.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "worker/data/byte_source.h"
#include "worker/data/gzip_restart.h"

namespace ctrps::worker {
namespace {

constexpr size_t kCompressedBufferBytes = 256 << 10;
constexpr int kGzipWindowBits = 16 + MAX_WBITS;  // a gzip header and trailer, checked by zlib
constexpr int kRawWindowBits = -MAX_WBITS;       // deflate data alone: a resumed member

class GzipDecoder : public ByteSource {
 public:
  // From the start of the file (compressed_offset 0), or from `start`
  // (`compressed` then begins at start->compressed_offset, one byte earlier
  // when start->bits > 0).
  GzipDecoder(std::unique_ptr<ByteSource> compressed, std::string name,
              std::shared_ptr<GzipRestartIndex> index, const GzipRestartPoint* start)
      : compressed_(std::move(compressed)), name_(std::move(name)), index_(std::move(index)),
        in_(new unsigned char[kCompressedBufferBytes]) {
    raw_ = start && !start->member_start;
    const int rc = inflateInit2(&zs_, raw_ ? kRawWindowBits : kGzipWindowBits);
    CHECK_EQ(rc, Z_OK) << "inflateInit2 failed (out of memory?)";
    if (start) {
      read_end_ = start->compressed_offset - (start->bits > 0 ? 1 : 0);
      out_total_ = start->uncompressed_offset;
      member_out_ = raw_ ? start->member_bytes : 0;
      raw_crc_ = start->member_crc;
    }
    if (index_) next_point_at_ = out_total_ + index_->spacing();
  }
  ~GzipDecoder() override { inflateEnd(&zs_); }

  // The rest of the set-up of a resumed mid-member decoder: the bits of the
  // byte before the point, and the window.
  Status Prime(const GzipRestartPoint& start) {
    if (start.bits > 0) {
      ASSIGN_OR_RETURN(bool more, FillInput());
      if (!more) return Fail(Status::Corruption(name_ + ": a restart point past the file's end"));
      const int byte = *zs_.next_in;
      ++zs_.next_in;
      --zs_.avail_in;
      if (inflatePrime(&zs_, start.bits, byte >> (8 - start.bits)) != Z_OK)
        return Fail(Status::Corruption(name_ + ": cannot resume at the restart point"));
    }
    if (!start.window.empty() &&
        inflateSetDictionary(&zs_, reinterpret_cast<const Bytef*>(start.window.data()),
                             static_cast<uInt>(start.window.size())) != Z_OK)
      return Fail(Status::Corruption(name_ + ": cannot resume at the restart point (window)"));
    return Status::OK();
  }

  StatusOr<size_t> Read(char* buf, size_t n) override {
    if (!error_.ok()) return error_;
    if (done_) return size_t{0};
    zs_.next_out = reinterpret_cast<Bytef*>(buf);
    // zlib counts in uInt; a smaller read is fine (callers loop).
    zs_.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    const uInt asked = zs_.avail_out;
    while (zs_.avail_out == asked) {
      if (zs_.avail_in == 0) {
        ASSIGN_OR_RETURN(bool more, FillInput());
        if (!more) {
          if (member_ended_) {
            done_ = true;
            break;
          }
          return Fail(Status::Corruption(name_ + ": truncated gzip stream (ends inside a member, after " +
                                         std::to_string(out_total_) + " uncompressed bytes)"));
        }
      }
      if (member_ended_) {
        // Zero bytes after a member are padding (tape and block devices
        // write them; gzip -d ignores them too).
        while (zs_.avail_in > 0 && *zs_.next_in == 0) {
          ++zs_.next_in;
          --zs_.avail_in;
        }
        if (zs_.avail_in == 0) continue;
        // Other bytes after a member must be another member.
        if (*zs_.next_in != 0x1f)
          return Fail(Status::Corruption(
              name_ + ": trailing garbage: bytes after the end of a gzip member are neither "
                      "zero padding nor another gzip member"));
        if (index_) {  // a member start is a restart point without a window
          GzipRestartPoint p;
          p.compressed_offset = read_end_ - zs_.avail_in;
          p.uncompressed_offset = out_total_;
          p.member_start = true;
          index_->Add(std::move(p));
        }
        inflateReset2(&zs_, kGzipWindowBits);
        raw_ = false;
        member_out_ = 0;
        member_ended_ = false;
      }
      // Past the spacing, stop at the next block end to record a point.
      const bool want_point = index_ && out_total_ + (asked - zs_.avail_out) >= next_point_at_;
      Bytef* before = zs_.next_out;
      const int rc = inflate(&zs_, want_point ? Z_BLOCK : Z_NO_FLUSH);
      const size_t produced = static_cast<size_t>(zs_.next_out - before);
      if (raw_) raw_crc_ = crc32(raw_crc_, before, static_cast<uInt>(produced));
      member_out_ += produced;
      out_total_ += produced;
      if (rc == Z_STREAM_END) {
        if (raw_) RETURN_IF_ERROR(CheckRawTrailer());
        member_ended_ = true;
      } else if (rc == Z_BUF_ERROR && zs_.avail_in > 0 && produced == 0) {
        return Fail(Status::Corruption(name_ + ": gzip decoder made no progress"));
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return Fail(Status::Corruption(name_ + ": bad gzip data: " +
                                       (zs_.msg != nullptr ? zs_.msg : "inflate error " + std::to_string(rc))));
      } else if (want_point && rc == Z_OK && (zs_.data_type & 128) && !(zs_.data_type & 64)) {
        RecordPoint();
      }
    }
    return static_cast<size_t>(asked - zs_.avail_out);
  }

 private:
  Status Fail(Status st) {
    error_ = st;
    return st;
  }

  // Refills the input buffer; false at the end of the compressed stream.
  StatusOr<bool> FillInput() {
    StatusOr<size_t> got = compressed_->Read(reinterpret_cast<char*>(in_.get()),
                                             kCompressedBufferBytes);
    if (!got.ok()) return Fail(got.status());
    zs_.next_in = in_.get();
    zs_.avail_in = static_cast<uInt>(*got);
    read_end_ += *got;
    return *got > 0;
  }

  // At a block end: the compressed position, the bits, the member's crc so
  // far (zlib keeps it in adler for gzip streams) and the window.
  void RecordPoint() {
    GzipRestartPoint p;
    p.compressed_offset = read_end_ - zs_.avail_in;
    p.bits = zs_.data_type & 7;
    p.uncompressed_offset = out_total_;
    p.member_crc = raw_ ? raw_crc_ : static_cast<uint32_t>(zs_.adler);
    p.member_bytes = member_out_;
    p.window.resize(32768);
    uInt len = static_cast<uInt>(p.window.size());
    if (inflateGetDictionary(&zs_, reinterpret_cast<Bytef*>(p.window.data()), &len) != Z_OK) return;
    p.window.resize(len);
    index_->Add(std::move(p));
    next_point_at_ = out_total_ + index_->spacing();
  }

  // A resumed member's trailer (raw inflate does not read it): crc32 and
  // length of the member, little-endian, as gzip -d checks them.
  Status CheckRawTrailer() {
    unsigned char t[8];
    for (int i = 0; i < 8; ++i) {
      if (zs_.avail_in == 0) {
        ASSIGN_OR_RETURN(bool more, FillInput());
        if (!more)
          return Fail(Status::Corruption(name_ + ": truncated gzip stream (no member trailer)"));
      }
      t[i] = *zs_.next_in++;
      --zs_.avail_in;
    }
    const uint32_t crc = t[0] | t[1] << 8 | t[2] << 16 | static_cast<uint32_t>(t[3]) << 24;
    const uint32_t size = t[4] | t[5] << 8 | t[6] << 16 | static_cast<uint32_t>(t[7]) << 24;
    if (crc != raw_crc_ || size != static_cast<uint32_t>(member_out_))
      return Fail(Status::Corruption(name_ + ": incorrect data check (the member's crc32 or "
                                             "length differs from its trailer)"));
    return Status::OK();
  }

  std::unique_ptr<ByteSource> compressed_;
  std::string name_;
  std::shared_ptr<GzipRestartIndex> index_;  // null: record no restart points
  std::unique_ptr<unsigned char[]> in_;
  z_stream zs_{};
  bool raw_ = false;            // inflating a member resumed mid-way (raw deflate)
  uint32_t raw_crc_ = 0;        // raw_: the member's crc32 so far
  uint64_t member_out_ = 0;     // uncompressed bytes of the current member
  uint64_t out_total_ = 0;      // uncompressed bytes of the file before next_out
  uint64_t read_end_ = 0;       // file offset just past the compressed bytes read
  uint64_t next_point_at_ = UINT64_MAX;
  bool member_ended_ = false;
  bool done_ = false;
  Status error_;
};

}  // namespace

std::unique_ptr<ByteSource> NewGzipDecoder(std::unique_ptr<ByteSource> compressed,
                                           std::string name,
                                           std::shared_ptr<GzipRestartIndex> index) {
  return std::make_unique<GzipDecoder>(std::move(compressed), std::move(name), std::move(index),
                                       nullptr);
}

StatusOr<std::unique_ptr<ByteSource>> OpenGzipSourceAt(const std::string& path,
                                                       const GzipRestartPoint& point,
                                                       std::shared_ptr<GzipRestartIndex> index) {
  if (point.bits > 0 && point.compressed_offset == 0)
    return Status::InvalidArgument(path + ": a restart point with bits before the first byte");
  ASSIGN_OR_RETURN(auto file,
                   OpenFileSource(path, point.compressed_offset - (point.bits > 0 ? 1 : 0)));
  auto decoder = std::make_unique<GzipDecoder>(std::move(file), path, std::move(index), &point);
  if (!point.member_start) RETURN_IF_ERROR(decoder->Prime(point));
  return std::unique_ptr<ByteSource>(std::move(decoder));
}

}  // namespace ctrps::worker
