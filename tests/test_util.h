// Helpers shared by the tests: scratch folders and files.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace pl::testing {

// A fresh folder under the system's temporary folder, removed on scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "pipeline-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// The real CIFAR-10 folder, or "" when PIPELINE_CIFAR10 is not set.
inline std::string cifar_dir() {
  const char* dir = std::getenv("PIPELINE_CIFAR10");
  return dir != nullptr && std::filesystem::exists(std::string(dir) + "/test_batch.bin") ? dir : "";
}

}  // namespace pl::testing
