// A read-only file mapped into memory (POSIX mmap), or a caller-owned buffer seen the same way.
// Model files are opened through this so that weights are viewed in place, never copied.
// An empty file is represented without a mapping (mmap of length 0 is an error on Linux).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"

RECLITE_BEGIN_NAMESPACE

class MappedFile {
 public:
  MappedFile() noexcept = default;
  MappedFile(MappedFile&& other) noexcept { swap(other); }
  MappedFile& operator=(MappedFile&& other) noexcept {
    MappedFile moved(std::move(other));
    swap(moved);
    return *this;
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (owns_mapping_ && data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  }

  // Maps `path` read-only. Fails with file_not_found or io_error naming the path.
  static Result<MappedFile> open(const std::string& path) {
    int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) {
      int code = errno;
      return fail(code == ENOENT ? ErrorCode::file_not_found : ErrorCode::io_error,
                  path + ": cannot open: " + std::strerror(code));
    }
    struct stat status {};
    if (::fstat(descriptor, &status) != 0 || !S_ISREG(status.st_mode)) {
      ::close(descriptor);
      return fail(ErrorCode::io_error, path + ": not a regular file");
    }
    MappedFile file;
    file.path_ = path;
    file.size_ = static_cast<std::size_t>(status.st_size);
    if (file.size_ > 0) {
      void* address = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, descriptor, 0);
      if (address == MAP_FAILED) {
        int code = errno;
        ::close(descriptor);
        return fail(ErrorCode::io_error, path + ": cannot map: " + std::strerror(code));
      }
      file.data_ = static_cast<const std::uint8_t*>(address);
      file.owns_mapping_ = true;
    }
    ::close(descriptor);  // the mapping keeps the file contents reachable
    return file;
  }

  // Views a caller-owned buffer, which must outlive every object built on it. `name` is used in messages.
  static MappedFile view(const void* data, std::size_t size, std::string name) noexcept {
    MappedFile file;
    file.data_ = static_cast<const std::uint8_t*>(data);
    file.size_ = size;
    file.path_ = std::move(name);
    return file;
  }

  const std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }
  bool is_memory_mapped() const noexcept { return owns_mapping_; }

 private:
  void swap(MappedFile& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(path_, other.path_);
    std::swap(owns_mapping_, other.owns_mapping_);
  }
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::string path_;
  bool owns_mapping_ = false;
};

RECLITE_END_NAMESPACE
