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
    // mkdtemp replaces the six trailing X of its template.
    std::string pattern =
        (std::filesystem::temp_directory_path() / ("pipeline-test-" + std::string(6, 'X')))
            .string();
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

// The real CIFAR-10 folder: $PIPELINE_CIFAR10, else the one tools/fetch_data.sh
// unpacks into the source tree; "" when neither holds the files.
inline std::string cifar_dir() {
  const char* env = std::getenv("PIPELINE_CIFAR10");
  const char* source = std::getenv("PIPELINE_SOURCE_DIR");
  std::string dir = env != nullptr && *env != '\0' ? env
                    : source != nullptr ? std::string(source) + "/data/cifar-10-batches-bin"
                                        : "";
  return !dir.empty() && std::filesystem::exists(dir + "/test_batch.bin") ? dir : "";
}

}  // namespace pl::testing
