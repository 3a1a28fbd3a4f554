#include "pipeline/paths.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pl {
namespace fs = std::filesystem;

std::string resolve_root(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("PIPELINE_HOME");
  if (env != nullptr && *env != '\0') return env;
  return "runs";
}

std::string default_cifar_dir() {
  const char* env = std::getenv("PIPELINE_CIFAR10");
  if (env != nullptr && *env != '\0') return env;
  return "data/cifar-10-batches-bin";
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw std::runtime_error(
        fmt::format("{}: cannot create folder: {} (choose another output root with --root)", dir,
                    ec.message()));
  }
}

void check_writable(const std::string& dir) {
  std::string probe = temporary_path(dir + "/.write-check");
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    throw std::runtime_error(fmt::format(
        "{}: the output folder is not writable ({}); make it writable or choose another with "
        "--root",
        dir, std::strerror(errno)));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

std::string temporary_path(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return fmt::format("{}.{}-{}.tmp", path, getpid(), counter++);
}

void write_file_atomic(const std::string& path, const std::string& text) {
  std::string tmp = temporary_path(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) {
      int err = errno;
      std::error_code ignored;
      fs::remove(tmp, ignored);
      throw std::runtime_error(fmt::format("{}: cannot write: {}", path, std::strerror(err)));
    }
  }
  sync_path(tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    throw std::runtime_error(fmt::format("{}: cannot rename into place: {}", path, ec.message()));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void sync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace pl
