// The gzip side of byte_source.h, on zlib's inflate.
#include <zlib.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "worker/data/byte_source.h"

namespace ctrps::worker {
namespace {

constexpr size_t kCompressedBufferBytes = 256 << 10;

class GzipDecoder : public ByteSource {
 public:
  GzipDecoder(std::unique_ptr<ByteSource> compressed, std::string name)
      : compressed_(std::move(compressed)), name_(std::move(name)),
        in_(new unsigned char[kCompressedBufferBytes]) {
    // 16 + MAX_WBITS: expect a gzip header and trailer (CRC and length checked).
    int rc = inflateInit2(&zs_, 16 + MAX_WBITS);
    CHECK_EQ(rc, Z_OK) << "inflateInit2 failed (out of memory?)";
  }
  ~GzipDecoder() override { inflateEnd(&zs_); }

  StatusOr<size_t> Read(char* buf, size_t n) override {
    if (!error_.ok()) return error_;
    if (done_) return size_t{0};
    zs_.next_out = reinterpret_cast<Bytef*>(buf);
    // zlib counts in uInt; a smaller read is fine (callers loop).
    zs_.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    const uInt asked = zs_.avail_out;
    while (zs_.avail_out == asked) {
      if (zs_.avail_in == 0) {
        StatusOr<size_t> got = compressed_->Read(reinterpret_cast<char*>(in_.get()),
                                                 kCompressedBufferBytes);
        if (!got.ok()) return Fail(got.status());
        if (*got == 0) {
          if (member_ended_) {
            done_ = true;
            break;
          }
          return Fail(Status::Corruption(name_ + ": truncated gzip stream (ends inside a member, after " +
                                         std::to_string(zs_.total_out) + " uncompressed bytes)"));
        }
        zs_.next_in = in_.get();
        zs_.avail_in = static_cast<uInt>(*got);
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
        inflateReset(&zs_);
        member_ended_ = false;
      }
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        member_ended_ = true;
      } else if (rc == Z_BUF_ERROR && zs_.avail_in > 0) {
        return Fail(Status::Corruption(name_ + ": gzip decoder made no progress"));
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return Fail(Status::Corruption(name_ + ": bad gzip data: " +
                                       (zs_.msg != nullptr ? zs_.msg : "inflate error " + std::to_string(rc))));
      }
    }
    return static_cast<size_t>(asked - zs_.avail_out);
  }

 private:
  Status Fail(Status st) {
    error_ = st;
    return st;
  }

  std::unique_ptr<ByteSource> compressed_;
  std::string name_;
  std::unique_ptr<unsigned char[]> in_;
  z_stream zs_{};
  bool member_ended_ = false;
  bool done_ = false;
  Status error_;
};

}  // namespace

std::unique_ptr<ByteSource> NewGzipDecoder(std::unique_ptr<ByteSource> compressed,
                                           std::string name) {
  return std::make_unique<GzipDecoder>(std::move(compressed), std::move(name));
}

}  // namespace ctrps::worker
