// HDF5 files for checkpoints and caches, without HDF5 in the header.
//
// Dataset names may hold '/' (groups are created as needed) and '.'
// ("model/encoder.0.weight"). Data is stored row-major, as NumPy and h5py
// read it. Every error throws std::runtime_error naming the file and dataset.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pl {

// Writes `path` atomically: everything goes to `path`.tmp, and commit()
// flushes, syncs and renames it into place. A writer destroyed without
// commit() removes the temporary file and leaves `path` untouched.
class H5Writer {
 public:
  explicit H5Writer(std::string path);
  ~H5Writer();
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  void put(const std::string& name, const std::vector<int64_t>& shape, const float* data);
  void put(const std::string& name, const std::vector<int64_t>& shape, const double* data);
  void put(const std::string& name, const std::vector<int64_t>& shape, const int64_t* data);
  void put(const std::string& name, const std::vector<int64_t>& shape, const uint8_t* data);

  // Attributes on the root group.
  void attr(const std::string& name, const std::string& value);
  void attr(const std::string& name, int64_t value);
  void attr(const std::string& name, double value);

  void commit();

 private:
  void put_raw(const std::string& name, const std::vector<int64_t>& shape, int64_t type,
               const void* data);
  void put_scalar(const std::string& name, int64_t type, const void* value);
  void fail(const std::string& what) const;

  std::string path_;
  std::string tmp_;
  int64_t file_ = -1;
  bool committed_ = false;
};

template <typename T>
struct Array {
  std::vector<int64_t> shape;
  std::vector<T> data;
};

class H5Reader {
 public:
  // Throws when `path` is missing or not an HDF5 file (truncated, foreign).
  explicit H5Reader(std::string path);
  ~H5Reader();
  H5Reader(const H5Reader&) = delete;
  H5Reader& operator=(const H5Reader&) = delete;

  bool has(const std::string& name) const;
  // Names of the datasets directly inside `group` ("model"), sorted.
  std::vector<std::string> list(const std::string& group) const;

  Array<float> read_float(const std::string& name) const;
  Array<double> read_double(const std::string& name) const;
  Array<int64_t> read_int(const std::string& name) const;
  Array<uint8_t> read_bytes(const std::string& name) const;

  bool has_attr(const std::string& name) const;
  std::string attr_text(const std::string& name) const;
  int64_t attr_int(const std::string& name) const;
  double attr_double(const std::string& name) const;

 private:
  template <typename T>
  Array<T> read(const std::string& name, int64_t type) const;
  void read_scalar(const std::string& name, int64_t type, void* value) const;
  [[noreturn]] void fail(const std::string& what) const;

  std::string path_;
  int64_t file_ = -1;
};

}  // namespace pl
