#include "worker/data/input_files.h"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "worker/data/byte_source.h"
#include "worker/data/text_util.h"

namespace ctrps::worker {
namespace {

bool HasGlobMeta(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

Status ExpandGlob(const std::string& pattern, std::vector<std::string>* paths) {
  glob_t g;
  int rc = ::glob(pattern.c_str(), GLOB_ERR, nullptr, &g);
  if (rc == GLOB_NOMATCH) {
    ::globfree(&g);
    return Status::NotFound("input pattern '" + pattern + "' matches no files");
  }
  if (rc != 0) {
    ::globfree(&g);
    return Status::IOError("cannot expand input pattern '" + pattern + "'" +
                           (rc == GLOB_ABORTED ? ": a directory could not be read" : ""));
  }
  for (size_t i = 0; i < g.gl_pathc; ++i) paths->emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  return Status::OK();
}

StatusOr<InputFile> Examine(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    std::string msg = "input file " + path + ": " + std::strerror(errno);
    return errno == ENOENT ? Status::NotFound(msg) : Status::IOError(msg);
  }
  if (S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("input " + path + " is a directory; name its files or use a glob such as " +
                                   path + "/*");
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("input " + path + " is not a regular file (pipes and devices cannot be split)");
  }
  InputFile file;
  file.path = path;
  file.size_bytes = static_cast<uint64_t>(st.st_size);
  ASSIGN_OR_RETURN(file.gzip, IsGzipFile(path));
  return file;
}

}  // namespace

StatusOr<std::vector<InputFile>> ResolveInputFiles(std::string_view spec) {
  std::vector<std::string> paths;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string_view::npos) comma = spec.size();
    std::string element(TrimBlanks(spec.substr(start, comma - start)));
    start = comma + 1;
    if (element.empty()) continue;
    if (HasGlobMeta(element)) {
      RETURN_IF_ERROR(ExpandGlob(element, &paths));
    } else {
      paths.push_back(element);
    }
  }
  if (paths.empty()) {
    return Status::InvalidArgument("empty input spec '" + std::string(spec) +
                                   "': expected a path, a comma-separated list, or a glob");
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  std::vector<InputFile> files;
  files.reserve(paths.size());
  for (const std::string& path : paths) {
    ASSIGN_OR_RETURN(InputFile file, Examine(path));
    files.push_back(std::move(file));
  }
  return files;
}

}  // namespace ctrps::worker
