// ingest: CIFAR-10 binary files into memory, validated and cached.
//
// The official binary layout: data_batch_1.bin .. data_batch_5.bin and
// test_batch.bin, each 10,000 records of one label byte and 3,072 pixel bytes
// (red, green, blue planes of 32x32, rows top to bottom). Pixels stay bytes
// here; the network stages scale them to [-1, 1] (x = byte / 127.5 - 1).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipeline/config.h"

namespace pl {

constexpr int64_t kImageSide = 32;
constexpr int64_t kImageValues = 3 * kImageSide * kImageSide;  // 3072
constexpr int64_t kRecordBytes = kImageValues + 1;             // 3073
constexpr int64_t kRecordsPerFile = 10000;

// A data file or folder that cannot be used; the message names it and the fix.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ImageSet {
  int64_t count = 0;
  std::vector<uint8_t> pixels;  // count x 3072 bytes, plane order
  std::vector<uint8_t> labels;  // count

  const uint8_t* image(int64_t i) const { return pixels.data() + i * kImageValues; }
  void append(const uint8_t* record);  // one 3,073-byte record
};

struct CifarData {
  ImageSet train;    // training images of the class (first train_limit)
  ImageSet test;     // test images of the class (first test_limit)
  ImageSet foreign;  // test images of every other class, in file order
  std::string key;   // identifies this data config and the files' state
  bool from_cache = false;
};

// Reads one batch file, checking its size and labels. `expected_records` of 0
// accepts any whole number of records.
ImageSet read_cifar_file(const std::string& path, int64_t expected_records = kRecordsPerFile);

// The same from the bytes of a file already in memory; `name` names it in errors.
ImageSet parse_cifar_bytes(const uint8_t* bytes, std::size_t size, const std::string& name,
                           int64_t expected_records = kRecordsPerFile);

// Checks the folder before anything is read: the six files present, each of
// the official size. Throws DataError naming the file and the fix.
void check_cifar_folder(const std::string& dir);

// Reads the data of `config`, from the cache in `cache_dir` when one is there
// (an empty `cache_dir` reads the files). Writes nothing.
CifarData ingest_cifar(const DataConfig& config, const std::string& cache_dir);

// Saves `data` in `cache_dir` for later runs with the same data config.
void save_cifar_cache(const CifarData& data, const std::string& cache_dir);

}  // namespace pl
