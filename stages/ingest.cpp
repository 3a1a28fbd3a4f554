#include "stages/ingest.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "pipeline/h5file.h"
#include "pipeline/hash.h"
#include "pipeline/paths.h"

namespace pl {
namespace fs = std::filesystem;
namespace {

const char* kFiles[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                        "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};

const char* kWhere =
    "set PIPELINE_CIFAR10 (or data.dir) to the folder that cifar-10-binary.tar.gz unpacks to, "
    "or run tools/fetch_data.sh";

std::string file_state(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return fmt::format("{}:{}:{}", st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

ImageSet load_set(const H5Reader& in, const std::string& name) {
  Array<uint8_t> pixels = in.read_bytes(name + "/pixels");
  Array<uint8_t> labels = in.read_bytes(name + "/labels");
  ImageSet set;
  set.count = static_cast<int64_t>(labels.data.size());
  if (static_cast<int64_t>(pixels.data.size()) != set.count * kImageValues) {
    throw DataError(fmt::format("cache dataset '{}' has the wrong size", name));
  }
  set.pixels = std::move(pixels.data);
  set.labels = std::move(labels.data);
  return set;
}

void save_set(H5Writer& out, const std::string& name, const ImageSet& set) {
  out.put(name + "/pixels", {set.count, kImageValues}, set.pixels.data());
  out.put(name + "/labels", {set.count}, set.labels.data());
}

}  // namespace

void ImageSet::append(const uint8_t* record) {
  labels.push_back(record[0]);
  pixels.insert(pixels.end(), record + 1, record + kRecordBytes);
  ++count;
}

namespace {

// The size check, before any byte is read.
void check_cifar_size(const std::string& name, int64_t size, int64_t expected_records) {
  if (size == 0) throw DataError(fmt::format("{}: the file is empty; download it again", name));
  bool whole = size % kRecordBytes == 0;
  if (!whole || (expected_records > 0 && size != expected_records * kRecordBytes)) {
    throw DataError(fmt::format(
        "{}: {} bytes, expected {} ({} records of {} bytes): the file is truncated or not a "
        "CIFAR-10 binary batch; download it again",
        name, size, expected_records * kRecordBytes, expected_records, kRecordBytes));
  }
}

}  // namespace

ImageSet parse_cifar_bytes(const uint8_t* bytes, std::size_t size, const std::string& name,
                           int64_t expected_records) {
  check_cifar_size(name, static_cast<int64_t>(size), expected_records);
  if (bytes[0] == 0x80) {
    throw DataError(fmt::format(
        "{}: looks like a Python pickle (the CIFAR-10 python version); the tool reads the binary "
        "version, cifar-10-binary.tar.gz",
        name));
  }
  ImageSet set;
  set.pixels.reserve(size / kRecordBytes * kImageValues);
  set.labels.reserve(size / kRecordBytes);
  for (std::size_t offset = 0; offset < size; offset += kRecordBytes) {
    uint8_t label = bytes[offset];
    if (label > 9) {
      throw DataError(fmt::format(
          "{}: record {} has label {}, but CIFAR-10 labels are 0-9: the file is corrupt or not a "
          "CIFAR-10 binary batch (CIFAR-100's binary files hold two label bytes)",
          name, offset / kRecordBytes, label));
    }
    set.append(bytes + offset);
  }
  return set;
}

ImageSet read_cifar_file(const std::string& path, int64_t expected_records) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw DataError(
        fmt::format("{}: is a folder, expected a CIFAR-10 batch file; {}", path, kWhere));
  }
  if (!fs::exists(path, ec)) throw DataError(fmt::format("{}: no such file; {}", path, kWhere));
  auto size = static_cast<int64_t>(fs::file_size(path, ec));
  if (ec) throw DataError(fmt::format("{}: cannot read its size: {}", path, ec.message()));
  check_cifar_size(path, size, expected_records);

  std::vector<uint8_t> bytes(static_cast<std::size_t>(size));
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    throw DataError(fmt::format("{}: read error", path));
  }
  return parse_cifar_bytes(bytes.data(), bytes.size(), path, expected_records);
}

void check_cifar_folder(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    throw DataError(fmt::format("CIFAR-10 folder '{}' does not exist; {}", dir, kWhere));
  }
  if (!fs::is_directory(dir, ec)) {
    throw DataError(fmt::format("CIFAR-10 folder '{}' is a file, not a folder; {}", dir, kWhere));
  }
  if (fs::exists(fs::path(dir) / "data_batch_1", ec) &&
      !fs::exists(fs::path(dir) / kFiles[0], ec)) {
    throw DataError(fmt::format(
        "'{}' holds the CIFAR-10 python version (data_batch_1 without .bin); the tool reads the "
        "binary version: download cifar-10-binary.tar.gz",
        dir));
  }
  for (const char* name : kFiles) {
    std::string path = (fs::path(dir) / name).string();
    if (fs::is_directory(path, ec)) {
      throw DataError(
          fmt::format("{}: is a folder, expected a CIFAR-10 batch file; {}", path, kWhere));
    }
    if (!fs::exists(path, ec)) throw DataError(fmt::format("{}: missing; {}", path, kWhere));
    auto size = static_cast<int64_t>(fs::file_size(path, ec));
    if (size != kRecordsPerFile * kRecordBytes) {
      throw DataError(fmt::format(
          "{}: {} bytes, expected {} (10,000 records of 3,073 bytes): truncated or not a CIFAR-10 "
          "binary batch; download it again",
          path, size, kRecordsPerFile * kRecordBytes));
    }
  }
}

CifarData ingest_cifar(const DataConfig& config, const std::string& cache_dir) {
  check_cifar_folder(config.dir);

  // The key covers the class, the limits and each file's size and time, so
  // a replaced file is read again.
  std::string identity = fmt::format("cifar10 v1 class={} train={} test={}", config.class_index,
                                     config.train_limit, config.test_limit);
  for (const char* name : kFiles) {
    identity += " " + file_state((fs::path(config.dir) / name).string());
  }
  CifarData data;
  data.key = hash_text(identity);
  std::string cache = cache_dir.empty() ? "" : cache_dir + "/cifar-" + data.key + ".h5";

  if (!cache.empty() && fs::exists(cache)) {
    try {
      H5Reader in(cache);
      data.train = load_set(in, "train");
      data.test = load_set(in, "test");
      data.foreign = load_set(in, "foreign");
      data.from_cache = true;
      return data;
    } catch (const std::exception&) {
      // A damaged cache is rebuilt from the source files below.
      data.train = data.test = data.foreign = ImageSet();
    }
  }

  for (int i = 0; i < 6; ++i) {
    ImageSet batch = read_cifar_file((fs::path(config.dir) / kFiles[i]).string());
    bool test = i == 5;
    for (int64_t r = 0; r < batch.count; ++r) {
      const uint8_t label = batch.labels[r];
      ImageSet& target = label != config.class_index ? data.foreign : test ? data.test : data.train;
      if (!test && label != config.class_index) continue;
      int64_t limit = test ? config.test_limit : config.train_limit;
      if (&target != &data.foreign && limit > 0 && target.count >= limit) continue;
      std::vector<uint8_t> record(kRecordBytes);
      record[0] = label;
      std::copy(batch.image(r), batch.image(r) + kImageValues, record.begin() + 1);
      target.append(record.data());
    }
  }

  return data;
}

void save_cifar_cache(const CifarData& data, const std::string& cache_dir) {
  make_dirs(cache_dir);
  H5Writer out(cache_dir + "/cifar-" + data.key + ".h5");
  save_set(out, "train", data.train);
  save_set(out, "test", data.test);
  save_set(out, "foreign", data.foreign);
  out.commit();
}

}  // namespace pl
