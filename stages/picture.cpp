#include "stages/picture.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>

#include "pipeline/fault.h"
#include "pipeline/paths.h"

namespace pl {
namespace fs = std::filesystem;
namespace {

constexpr int kSide = 32;

bool starts_with(const std::string& bytes, const char* magic, std::size_t size) {
  return bytes.size() >= size && std::memcmp(bytes.data(), magic, size) == 0;
}

std::string format_name(const std::string& bytes) {
  if (starts_with(bytes, "\x89PNG\r\n\x1a\n", 8)) return "png";
  if (starts_with(bytes, "\xff\xd8\xff", 3)) return "jpeg";
  if (starts_with(bytes, "GIF8", 4)) return "GIF";
  if (starts_with(bytes, "BM", 2)) return "BMP";
  if (starts_with(bytes, "RIFF", 4)) return "WebP or another RIFF format";
  if (starts_with(bytes, "II*\0", 4) || starts_with(bytes, "MM\0*", 4)) return "TIFF";
  return "an unknown format";
}

// The EXIF orientation (1-8) of a JPEG, 1 when it has none.
int exif_orientation(const std::string& jpeg) {
  auto u8 = [&](std::size_t i) { return static_cast<unsigned>(static_cast<uint8_t>(jpeg[i])); };
  std::size_t pos = 2;
  while (pos + 4 <= jpeg.size() && u8(pos) == 0xFF) {
    unsigned marker = u8(pos + 1);
    std::size_t length = (u8(pos + 2) << 8) | u8(pos + 3);
    if (marker == 0xDA || length < 2) break;  // image data starts: no EXIF before it
    std::size_t start = pos + 4;
    if (marker == 0xE1 && start + 14 <= jpeg.size() && jpeg.compare(start, 6, "Exif\0\0", 6) == 0) {
      std::size_t tiff = start + 6;
      bool little = jpeg[tiff] == 'I';
      auto read = [&](std::size_t at, int bytes) -> unsigned {
        if (at + bytes > jpeg.size()) return 0;
        unsigned v = 0;
        for (int b = 0; b < bytes; ++b) {
          v |= u8(at + (little ? b : bytes - 1 - b)) << (8 * b);
        }
        return v;
      };
      std::size_t ifd = tiff + read(tiff + 4, 4);
      unsigned entries = read(ifd, 2);
      for (unsigned e = 0; e < entries && e < 512; ++e) {
        std::size_t entry = ifd + 2 + 12 * e;
        if (read(entry, 2) == 0x0112) {
          unsigned value = read(entry + 8, 2);
          return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
        }
      }
      return 1;
    }
    pos += 2 + length;
  }
  return 1;
}

// Applies an EXIF orientation to an RGB image in place; may swap w and h.
void orient(std::vector<uint8_t>& rgb, int& w, int& h, int orientation) {
  if (orientation <= 1) return;
  bool transpose = orientation >= 5;
  int out_w = transpose ? h : w;
  int out_h = transpose ? w : h;
  std::vector<uint8_t> out(rgb.size());
  for (int y = 0; y < out_h; ++y) {
    for (int x = 0; x < out_w; ++x) {
      int sx = 0, sy = 0;  // where the output pixel comes from
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          sy = y;
          break;
        case 3:
          sx = w - 1 - x;
          sy = h - 1 - y;
          break;
        case 4:
          sx = x;
          sy = h - 1 - y;
          break;
        case 5:
          sx = y;
          sy = x;
          break;
        case 6:
          sx = y;
          sy = h - 1 - x;
          break;
        case 7:
          sx = w - 1 - y;
          sy = h - 1 - x;
          break;
        case 8:
          sx = w - 1 - y;
          sy = x;
          break;
      }
      std::memcpy(&out[3 * (static_cast<std::size_t>(y) * out_w + x)],
                  &rgb[3 * (static_cast<std::size_t>(sy) * w + sx)], 3);
    }
  }
  rgb.swap(out);
  w = out_w;
  h = out_h;
}

void check_size(const std::string& path, long long w, long long h) {
  if (w > kMaxPictureSide || h > kMaxPictureSide || w * h > kMaxPicturePixels) {
    throw PictureError(
        fmt::format("{}: {}x{} pixels is above the limit of {} per side and {} in "
                    "all; scale it down first",
                    path, w, h, kMaxPictureSide, kMaxPicturePixels));
  }
}

// Memory shared with a child process, unmapped on scope exit.
class SharedBuffer {
 public:
  explicit SharedBuffer(std::size_t bytes) : bytes_(bytes) {
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    data_ = p == MAP_FAILED ? nullptr : static_cast<unsigned char*>(p);
  }
  ~SharedBuffer() {
    if (data_ != nullptr) munmap(data_, bytes_);
  }
  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;
  unsigned char* data() const { return data_; }

 private:
  std::size_t bytes_;
  unsigned char* data_ = nullptr;
};

// Decodes `w` x `h` RGBA pixels in a child process. The decoder stops the
// whole process on some hostile files (an assertion in its JPEG Huffman
// decoder, found by fuzz_picture); that must be an error for the picture,
// not the end of a sweep.
// TODO(#8): the cause is in Debian 12's stb_image 2.27, which reads Huffman
// tables a JPEG never defined (uninitialised memory); a newer decoder would
// remove it, the child process only contains it.
void decode_rgba(const std::string& path, const std::string& format, const unsigned char* data,
                 int size, int w, int h, const SharedBuffer& out) {
  std::size_t bytes = static_cast<std::size_t>(w) * h * 4;
  int reply_pipe[2];
  if (pipe(reply_pipe) != 0) {
    throw PictureError(fmt::format("{}: cannot decode: {}", path, std::strerror(errno)));
  }
  pid_t child = fork();
  if (child < 0) {
    int err = errno;
    close(reply_pipe[0]);
    close(reply_pipe[1]);
    throw PictureError(fmt::format("{}: cannot decode: {}", path, std::strerror(err)));
  }
  if (child == 0) {
    close(reply_pipe[0]);
    int quiet = open("/dev/null", O_WRONLY);  // the decoder's own assertion message
    if (quiet >= 0) dup2(quiet, STDERR_FILENO);
    // The child ends plainly on a fatal signal, whatever handlers the program set.
    for (int fatal : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) std::signal(fatal, SIG_DFL);
    fault_point("picture-decode");  // the tests' stand-in for a decoder that dies
    int got_w = 0, got_h = 0, channels = 0;
    unsigned char* rgba = stbi_load_from_memory(data, size, &got_w, &got_h, &channels, 4);
    std::string reply;
    if (rgba == nullptr) {
      const char* why = stbi_failure_reason();
      reply = std::string("E") + (why != nullptr ? why : "unknown reason");
    } else if (got_w != w || got_h != h) {
      reply = "Ea size other than its header's";
    } else {
      std::memcpy(out.data(), rgba, bytes);
      reply = "K";
    }
    ssize_t written = write(reply_pipe[1], reply.data(), reply.size());
    _exit(written == static_cast<ssize_t>(reply.size()) ? 0 : 1);
  }
  close(reply_pipe[1]);
  std::string reply;
  char buffer[256];
  for (ssize_t got = 0; (got = read(reply_pipe[0], buffer, sizeof buffer)) != 0;) {
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) break;
    reply.append(buffer, static_cast<std::size_t>(got));
  }
  close(reply_pipe[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status) || reply.empty()) {
    throw PictureError(
        fmt::format("{}: cannot decode the {}: the decoder failed on it ({}): truncated or corrupt",
                    path, format, WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "no answer"));
  }
  if (reply[0] != 'K') {
    throw PictureError(fmt::format("{}: cannot decode the {} ({}): truncated or corrupt", path,
                                   format, reply.substr(1)));
  }
}

}  // namespace

Fit parse_fit(const std::string& name) {
  if (name == "crop") return Fit::kCrop;
  if (name == "letterbox") return Fit::kLetterbox;
  throw std::invalid_argument(fmt::format("fit '{}': expected crop or letterbox", name));
}

Tile load_picture(const std::string& path, Fit fit) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw PictureError(path + ": is a folder, not a picture");
  if (!fs::exists(path, ec)) throw PictureError(path + ": no such picture");
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const std::exception& e) {
    throw PictureError(e.what());
  }
  return decode_picture(bytes, path, fit);
}

Tile decode_picture(const std::string& bytes, const std::string& path, Fit fit) {
  if (bytes.empty()) throw PictureError(path + ": the file is empty");
  std::string format = format_name(bytes);
  if (format != "png" && format != "jpeg") {
    throw PictureError(
        fmt::format("{}: {} is not supported; give a PNG or JPEG picture", path, format));
  }

  auto data = reinterpret_cast<const unsigned char*>(bytes.data());
  int size = static_cast<int>(std::min<std::size_t>(bytes.size(), INT32_MAX));
  int w = 0, h = 0, channels = 0;
  if (format == "png" && bytes.size() >= 24) {
    // Read the size from IHDR first: the decoder refuses very large
    // pictures with a message that does not say why.
    auto be32 = [&](std::size_t at) {
      return (static_cast<long long>(data[at]) << 24) | (data[at + 1] << 16) | (data[at + 2] << 8) |
             data[at + 3];
    };
    check_size(path, be32(16), be32(20));
  }
  if (stbi_info_from_memory(data, size, &w, &h, &channels) == 0) {
    throw PictureError(fmt::format("{}: cannot read the {} header ({}): truncated or corrupt", path,
                                   format, stbi_failure_reason()));
  }
  check_size(path, w, h);
  SharedBuffer rgba(static_cast<std::size_t>(w) * h * 4);
  if (rgba.data() == nullptr) {
    throw PictureError(fmt::format("{}: {}x{} pixels: not enough memory to decode it", path, w, h));
  }
  decode_rgba(path, format, data, size, w, h, rgba);

  // Transparent parts are shown over white, as a viewer would.
  std::vector<uint8_t> rgb(static_cast<std::size_t>(w) * h * 3);
  for (std::size_t i = 0; i < static_cast<std::size_t>(w) * h; ++i) {
    unsigned alpha = rgba.data()[4 * i + 3];
    for (int c = 0; c < 3; ++c) {
      rgb[3 * i + c] =
          static_cast<uint8_t>((rgba.data()[4 * i + c] * alpha + 255 * (255 - alpha) + 127) / 255);
    }
  }
  if (format == "jpeg") orient(rgb, w, h, exif_orientation(bytes));

  // Crop to the centred square, or place the scaled picture on black bars.
  std::vector<uint8_t> square(kSide * kSide * 3, 0);
  if (fit == Fit::kCrop) {
    int side = std::min(w, h);
    const uint8_t* corner =
        rgb.data() + 3 * (static_cast<std::size_t>((h - side) / 2) * w + (w - side) / 2);
    stbir_resize_uint8(corner, side, side, w * 3, square.data(), kSide, kSide, kSide * 3, 3);
  } else {
    int out_w = std::max(1, w >= h ? kSide : kSide * w / h);
    int out_h = std::max(1, h >= w ? kSide : kSide * h / w);
    std::vector<uint8_t> scaled(static_cast<std::size_t>(out_w) * out_h * 3);
    stbir_resize_uint8(rgb.data(), w, h, w * 3, scaled.data(), out_w, out_h, out_w * 3, 3);
    int x0 = (kSide - out_w) / 2, y0 = (kSide - out_h) / 2;
    for (int y = 0; y < out_h; ++y) {
      std::memcpy(&square[3 * ((y0 + y) * kSide + x0)], &scaled[3 * y * out_w], 3 * out_w);
    }
  }

  std::vector<uint8_t> planes(3 * kSide * kSide);
  for (int i = 0; i < kSide * kSide; ++i) {
    for (int c = 0; c < 3; ++c) planes[c * kSide * kSide + i] = square[3 * i + c];
  }
  return tile_from_bytes(planes.data());
}

std::vector<std::string> picture_files(const std::string& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw PictureError(fmt::format("modify.images: '{}' is not a folder of pictures", folder));
  }
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files.push_back(entry.path().string());
  }
  if (files.empty()) {
    throw PictureError(fmt::format("modify.images: '{}' holds no .png or .jpg pictures", folder));
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace pl
