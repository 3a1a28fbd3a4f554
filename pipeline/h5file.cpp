#include "pipeline/h5file.h"

#include <fmt/format.h>
#include <hdf5.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "pipeline/paths.h"

namespace pl {
namespace {

// HDF5 prints its error stack by default; the tool reports errors itself.
// Its exit handler is left out: a file whose writing failed (a full disk, a
// file-size limit) cannot be closed, and the handler crashed closing it again
// at exit. Every file that was written is closed before then.
void silence_hdf5() {
  static const bool done = [] {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

// What a failed write most likely means, from the system's error number.
std::string disk_full_hint(int err) {
  if (err == ENOSPC || err == EFBIG || err == EDQUOT) {
    return fmt::format(": {} (the disk is full or a file-size limit was reached)",
                       std::strerror(err));
  }
  return " (is the disk full?)";
}

hid_t link_creation() {
  hid_t plist = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(plist, 1);
  return plist;
}

}  // namespace

H5Writer::H5Writer(std::string path) : path_(std::move(path)), tmp_(temporary_path(path_)) {
  silence_hdf5();
  file_ = H5Fcreate(tmp_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file_ < 0) fail("cannot create the file (is the folder writable?)");
}

H5Writer::~H5Writer() {
  if (file_ >= 0) H5Fclose(file_);
  if (!committed_) {
    std::error_code ignored;
    std::filesystem::remove(tmp_, ignored);
  }
}

void H5Writer::fail(const std::string& what) const {
  throw std::runtime_error(fmt::format("{}: {}", path_, what));
}

void H5Writer::put_raw(const std::string& name, const std::vector<int64_t>& shape, int64_t type,
                       const void* data) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t plist = link_creation();
  errno = 0;
  hid_t set = H5Dcreate2(file_, name.c_str(), type, space, plist, H5P_DEFAULT, H5P_DEFAULT);
  herr_t status = set < 0 ? -1 : H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  int err = errno;
  if (set >= 0) H5Dclose(set);
  H5Pclose(plist);
  H5Sclose(space);
  if (status < 0) fail(fmt::format("cannot write dataset '{}'{}", name, disk_full_hint(err)));
}

void H5Writer::put(const std::string& name, const std::vector<int64_t>& shape, const float* data) {
  put_raw(name, shape, H5T_NATIVE_FLOAT, data);
}
void H5Writer::put(const std::string& name, const std::vector<int64_t>& shape, const double* data) {
  put_raw(name, shape, H5T_NATIVE_DOUBLE, data);
}
void H5Writer::put(const std::string& name, const std::vector<int64_t>& shape,
                   const int64_t* data) {
  put_raw(name, shape, H5T_NATIVE_INT64, data);
}
void H5Writer::put(const std::string& name, const std::vector<int64_t>& shape,
                   const uint8_t* data) {
  put_raw(name, shape, H5T_NATIVE_UINT8, data);
}

void H5Writer::attr(const std::string& name, const std::string& value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, std::max<std::size_t>(1, value.size()));
  H5Tset_cset(type, H5T_CSET_UTF8);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(file_, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t status = a < 0 ? -1 : H5Awrite(a, type, value.empty() ? "" : value.data());
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
  if (status < 0) fail(fmt::format("cannot write attribute '{}'", name));
}

void H5Writer::attr(const std::string& name, int64_t value) {
  put_scalar(name, H5T_NATIVE_INT64, &value);
}

void H5Writer::attr(const std::string& name, double value) {
  put_scalar(name, H5T_NATIVE_DOUBLE, &value);
}

void H5Writer::put_scalar(const std::string& name, int64_t type, const void* value) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(file_, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t status = a < 0 ? -1 : H5Awrite(a, type, value);
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  if (status < 0) fail(fmt::format("cannot write attribute '{}'", name));
}

void H5Writer::commit() {
  errno = 0;
  if (H5Fflush(file_, H5F_SCOPE_GLOBAL) < 0 || H5Fclose(file_) < 0) {
    int err = errno;
    file_ = -1;
    fail(fmt::format("cannot flush the file{}", disk_full_hint(err)));
  }
  file_ = -1;
  sync_path(tmp_);
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) fail(fmt::format("cannot rename the finished file into place: {}", ec.message()));
  committed_ = true;
  sync_path(std::filesystem::path(path_).parent_path().string());
}

H5Reader::H5Reader(std::string path) : path_(std::move(path)) {
  silence_hdf5();
  if (!std::filesystem::exists(path_)) fail("no such file");
  if (H5Fis_hdf5(path_.c_str()) <= 0) {
    fail("not an HDF5 file, or truncated; delete it to have it written again");
  }
  file_ = H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) fail("cannot open as HDF5 (truncated or corrupt); delete it to start over");
}

H5Reader::~H5Reader() {
  if (file_ >= 0) H5Fclose(file_);
}

void H5Reader::fail(const std::string& what) const {
  throw std::runtime_error(fmt::format("{}: {}", path_, what));
}

bool H5Reader::has(const std::string& name) const {
  // Check each path component so a missing group is not an error.
  std::string prefix;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = name.find('/', start);
    prefix = name.substr(0, slash);
    if (H5Lexists(file_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

std::vector<std::string> H5Reader::list(const std::string& group) const {
  std::vector<std::string> names;
  if (!has(group)) return names;
  hid_t g = H5Gopen2(file_, group.c_str(), H5P_DEFAULT);
  if (g < 0) return names;
  H5G_info_t info;
  H5Gget_info(g, &info);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t size =
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    std::string name(static_cast<std::size_t>(size), '\0');
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), size + 1, H5P_DEFAULT);
    names.push_back(name);
  }
  H5Gclose(g);
  std::sort(names.begin(), names.end());
  return names;
}

template <typename T>
Array<T> H5Reader::read(const std::string& name, int64_t type) const {
  if (!has(name)) fail(fmt::format("no dataset '{}'; the file was not written by this tool", name));
  hid_t set = H5Dopen2(file_, name.c_str(), H5P_DEFAULT);
  if (set < 0) fail(fmt::format("cannot open dataset '{}'", name));
  hid_t space = H5Dget_space(set);
  int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  H5Sclose(space);

  Array<T> out;
  std::size_t count = 1;
  for (hsize_t d : dims) {
    out.shape.push_back(static_cast<int64_t>(d));
    count *= d;
  }
  out.data.resize(count);
  herr_t status = H5Dread(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data.data());
  H5Dclose(set);
  if (status < 0) fail(fmt::format("cannot read dataset '{}' (truncated or corrupt file)", name));
  return out;
}

Array<float> H5Reader::read_float(const std::string& name) const {
  return read<float>(name, H5T_NATIVE_FLOAT);
}
Array<double> H5Reader::read_double(const std::string& name) const {
  return read<double>(name, H5T_NATIVE_DOUBLE);
}
Array<int64_t> H5Reader::read_int(const std::string& name) const {
  return read<int64_t>(name, H5T_NATIVE_INT64);
}
Array<uint8_t> H5Reader::read_bytes(const std::string& name) const {
  return read<uint8_t>(name, H5T_NATIVE_UINT8);
}

bool H5Reader::has_attr(const std::string& name) const {
  return H5Aexists(file_, name.c_str()) > 0;
}

std::string H5Reader::attr_text(const std::string& name) const {
  if (!has_attr(name)) fail(fmt::format("no attribute '{}'", name));
  hid_t a = H5Aopen(file_, name.c_str(), H5P_DEFAULT);
  hid_t type = H5Aget_type(a);
  std::string value;
  herr_t status = -1;
  if (H5Tis_variable_str(type) > 0) {  // as h5py writes str attributes
    char* text = nullptr;
    hid_t memtype = H5Tcopy(H5T_C_S1);
    H5Tset_size(memtype, H5T_VARIABLE);
    H5Tset_cset(memtype, H5Tget_cset(type));
    status = H5Aread(a, memtype, &text);
    if (status >= 0 && text != nullptr) value = text;
    H5free_memory(text);
    H5Tclose(memtype);
  } else {
    value.assign(H5Tget_size(type), '\0');
    hid_t memtype = H5Tcopy(type);
    status = H5Aread(a, memtype, value.data());
    H5Tclose(memtype);
  }
  H5Tclose(type);
  H5Aclose(a);
  if (status < 0) fail(fmt::format("cannot read attribute '{}'", name));
  value.erase(std::find(value.begin(), value.end(), '\0'), value.end());
  return value;
}

int64_t H5Reader::attr_int(const std::string& name) const {
  int64_t value = 0;
  read_scalar(name, H5T_NATIVE_INT64, &value);
  return value;
}

double H5Reader::attr_double(const std::string& name) const {
  double value = 0;
  read_scalar(name, H5T_NATIVE_DOUBLE, &value);
  return value;
}

void H5Reader::read_scalar(const std::string& name, int64_t type, void* value) const {
  if (!has_attr(name)) fail(fmt::format("no attribute '{}'", name));
  hid_t a = H5Aopen(file_, name.c_str(), H5P_DEFAULT);
  herr_t status = H5Aread(a, type, value);
  H5Aclose(a);
  if (status < 0) fail(fmt::format("cannot read attribute '{}'", name));
}

}  // namespace pl
