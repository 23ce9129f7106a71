#include "worker/data/byte_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace ctrps::worker {
namespace {

std::string ErrnoMessage(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

class FileSource : public ByteSource {
 public:
  FileSource(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~FileSource() override { ::close(fd_); }

  StatusOr<size_t> Read(char* buf, size_t n) override {
    while (true) {
      ssize_t got = ::read(fd_, buf, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return Status::IOError(ErrnoMessage("cannot read", path_));
    }
  }

 private:
  int fd_;
  std::string path_;
};

class StringSource : public ByteSource {
 public:
  StringSource(std::string data, size_t max_read_bytes)
      : data_(std::move(data)), max_read_bytes_(max_read_bytes) {}

  StatusOr<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min({n, max_read_bytes_, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::string data_;
  size_t max_read_bytes_;
  size_t pos_ = 0;
};

class FailingSource : public ByteSource {
 public:
  FailingSource(std::unique_ptr<ByteSource> base, uint64_t fail_after_bytes, Status error)
      : base_(std::move(base)), remaining_(fail_after_bytes), error_(std::move(error)) {}

  StatusOr<size_t> Read(char* buf, size_t n) override {
    if (remaining_ == 0) return error_;
    ASSIGN_OR_RETURN(size_t got, base_->Read(buf, std::min<uint64_t>(n, remaining_)));
    remaining_ -= got;
    return got;
  }

 private:
  std::unique_ptr<ByteSource> base_;
  uint64_t remaining_;
  Status error_;
};

}  // namespace

StatusOr<std::unique_ptr<ByteSource>> OpenFileSource(const std::string& path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(ErrnoMessage("cannot open", path));
    return Status::IOError(ErrnoMessage("cannot open", path));
  }
  if (offset > 0 && ::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
    Status st = Status::IOError(ErrnoMessage("cannot seek to byte " + std::to_string(offset) + " of", path));
    ::close(fd);
    return st;
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<ByteSource>(new FileSource(fd, path));
}

StatusOr<std::unique_ptr<ByteSource>> OpenGzipSource(const std::string& path) {
  ASSIGN_OR_RETURN(auto file, OpenFileSource(path, 0));
  return NewGzipDecoder(std::move(file), path);
}

StatusOr<bool> IsGzipFile(const std::string& path) {
  ASSIGN_OR_RETURN(auto file, OpenFileSource(path, 0));
  unsigned char magic[2];
  size_t have = 0;
  while (have < 2) {
    ASSIGN_OR_RETURN(size_t got, file->Read(reinterpret_cast<char*>(magic) + have, 2 - have));
    if (got == 0) return false;
    have += got;
  }
  return magic[0] == 0x1f && magic[1] == 0x8b;
}

std::unique_ptr<ByteSource> NewStringSource(std::string data, size_t max_read_bytes) {
  return std::make_unique<StringSource>(std::move(data), std::max<size_t>(1, max_read_bytes));
}

std::unique_ptr<ByteSource> NewFailingSource(std::unique_ptr<ByteSource> base,
                                             uint64_t fail_after_bytes, Status error) {
  return std::make_unique<FailingSource>(std::move(base), fail_after_bytes, std::move(error));
}

}  // namespace ctrps::worker
