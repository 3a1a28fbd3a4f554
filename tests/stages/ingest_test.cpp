#include "stages/ingest.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <functional>

#include "../test_util.h"

namespace pl {
namespace {

// A batch file of `labels.size()` records whose pixels all equal the label.
void write_batch(const std::string& path, const std::vector<uint8_t>& labels) {
  std::string bytes;
  for (uint8_t label : labels) {
    bytes += static_cast<char>(label);
    bytes += std::string(kImageValues, static_cast<char>(label));
  }
  testing::write_text(path, bytes);
}

std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_CASE("a small batch file reads back label by label") {
  testing::ScratchDir dir;
  write_batch(dir / "b.bin", {4, 0, 9});
  ImageSet set = read_cifar_file(dir / "b.bin", 3);
  CHECK(set.count == 3);
  CHECK(set.labels == std::vector<uint8_t>{4, 0, 9});
  CHECK(set.image(2)[3071] == 9);
}

TEST_CASE("bad batch files are named with what is wrong") {
  testing::ScratchDir dir;
  write_batch(dir / "label.bin", {1, 12});
  CHECK(error_of([&] { read_cifar_file(dir / "label.bin", 2); }).find("record 1 has label 12") !=
        std::string::npos);
  write_batch(dir / "short.bin", {1, 2});
  std::filesystem::resize_file(dir / "short.bin", 5000);
  CHECK(error_of([&] {
          read_cifar_file(dir / "short.bin", 2);
        }).find("5000 bytes, expected 6146") != std::string::npos);
  testing::write_text(dir / "empty.bin", "");
  CHECK(error_of([&] { read_cifar_file(dir / "empty.bin"); }).find("empty") != std::string::npos);
  testing::write_text(dir / "pickle.bin", std::string("\x80\x02") + std::string(3071, 'x'));
  CHECK(error_of([&] { read_cifar_file(dir / "pickle.bin", 1); }).find("python version") !=
        std::string::npos);
  CHECK(error_of([&] { read_cifar_file(dir.path()); }).find("is a folder") != std::string::npos);
}

TEST_CASE("bytes in memory are read as a file's would be") {
  std::string bytes = std::string(1, '\x07') + std::string(kImageValues, '\x01');
  ImageSet set =
      parse_cifar_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem.bin", 0);
  CHECK(set.count == 1);
  CHECK(set.labels == std::vector<uint8_t>{7});
  CHECK(error_of([&] {
          parse_cifar_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), 10, "mem.bin", 0);
        }).find("mem.bin: 10 bytes") != std::string::npos);
  CHECK(error_of([&] { parse_cifar_bytes(nullptr, 0, "mem.bin", 0); }).find("empty") !=
        std::string::npos);
}

TEST_CASE("a folder is checked for the six files of the official size before reading") {
  testing::ScratchDir dir;
  CHECK(error_of([&] { check_cifar_folder(dir / "absent"); }).find("does not exist") !=
        std::string::npos);
  testing::write_text(dir / "data_batch_1", "pickle");
  CHECK(error_of([&] { check_cifar_folder(dir.path()); }).find("python version") !=
        std::string::npos);
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
    testing::write_text(dir / name, "");
    std::filesystem::resize_file(dir / name, kRecordsPerFile * kRecordBytes);
  }
  check_cifar_folder(dir.path());
  std::filesystem::resize_file(dir / "data_batch_3.bin", 1000);
  CHECK(error_of([&] {
          check_cifar_folder(dir.path());
        }).find("data_batch_3.bin: 1000 bytes, expected 30730000") != std::string::npos);
}

TEST_CASE("the real CIFAR-10 files reproduce their known values") {
  std::string dir = testing::cifar_dir();
  if (dir.empty()) {
    MESSAGE("PIPELINE_CIFAR10 not set: the real-data checks need the CIFAR-10 binary folder");
    return;
  }
  ImageSet first = read_cifar_file(dir + "/data_batch_1.bin");
  CHECK(first.labels[0] == 6);
  CHECK(first.image(0)[0] == 59);
  CHECK(first.image(0)[1024] == 62);
  CHECK(first.image(0)[2048] == 63);
  ImageSet test = read_cifar_file(dir + "/test_batch.bin");
  CHECK(std::vector<uint8_t>(test.labels.begin(), test.labels.begin() + 10) ==
        std::vector<uint8_t>{3, 8, 8, 0, 6, 6, 1, 6, 3, 1});
  CHECK(test.image(0)[0] == 158);
  CHECK(test.image(0)[1024] == 112);
  CHECK(test.image(0)[2048] == 49);

  double sums[3] = {0, 0, 0};
  for (int b = 1; b <= 5; ++b) {
    ImageSet batch =
        b == 1 ? first : read_cifar_file(dir + "/data_batch_" + std::to_string(b) + ".bin");
    for (int64_t i = 0; i < batch.count; ++i) {
      for (int c = 0; c < 3; ++c) {
        for (int p = 0; p < 1024; ++p) sums[c] += batch.image(i)[c * 1024 + p];
      }
    }
  }
  CHECK(sums[0] / (50000.0 * 1024) == doctest::Approx(125.3069).epsilon(1e-6));
  CHECK(sums[1] / (50000.0 * 1024) == doctest::Approx(122.9504).epsilon(1e-6));
  CHECK(sums[2] / (50000.0 * 1024) == doctest::Approx(113.8654).epsilon(1e-6));

  DataConfig config;
  config.dir = dir;
  config.class_index = 4;
  CifarData deer = ingest_cifar(config, "");
  CHECK(deer.train.count == 5000);
  CHECK(deer.test.count == 1000);
  CHECK(deer.foreign.count == 9000);
  CHECK(deer.foreign.labels[0] == 3);
}

TEST_CASE("ingest limits and its cache give the same images as a fresh read") {
  std::string dir = testing::cifar_dir();
  if (dir.empty()) return;
  testing::ScratchDir cache;
  DataConfig config;
  config.dir = dir;
  config.class_index = 4;
  config.train_limit = 100;
  config.test_limit = 50;
  CifarData fresh = ingest_cifar(config, cache.path());
  CHECK_FALSE(fresh.from_cache);
  save_cifar_cache(fresh, cache.path());
  CHECK(fresh.train.count == 100);
  CHECK(fresh.test.count == 50);
  CHECK(std::filesystem::exists(cache / ("cifar-" + fresh.key + ".h5")));
  CifarData cached = ingest_cifar(config, cache.path());
  CHECK(cached.from_cache);
  CHECK(cached.key == fresh.key);
  CHECK(cached.train.pixels == fresh.train.pixels);
  CHECK(cached.foreign.labels == fresh.foreign.labels);
}

}  // namespace
}  // namespace pl
