#include "stages/image.h"

#include <fmt/format.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "pipeline/paths.h"

namespace pl {
namespace {

constexpr int kSide = 32;
constexpr int kGap = 2;

uint8_t to_byte(float v) {
  float scaled = std::round((v + 1.0f) * 127.5f);
  return static_cast<uint8_t>(std::clamp(scaled, 0.0f, 255.0f));
}

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<std::size_t>(size));
}

}  // namespace

Tile tile_from_bytes(const uint8_t* planes) {
  Tile tile(3 * kSide * kSide);
  for (std::size_t i = 0; i < tile.size(); ++i) tile[i] = planes[i] / 127.5f - 1.0f;
  return tile;
}

void write_grid_png(const std::string& path, const std::vector<Tile>& tiles, int columns,
                    int scale) {
  if (tiles.empty() || columns <= 0) throw std::runtime_error(path + ": no pictures to write");
  int rows = (static_cast<int>(tiles.size()) + columns - 1) / columns;
  int cell = kSide * scale + kGap;
  int width = columns * cell + kGap;
  int height = rows * cell + kGap;
  std::vector<uint8_t> rgb(static_cast<std::size_t>(width * height * 3), 255);

  for (std::size_t t = 0; t < tiles.size(); ++t) {
    const Tile& tile = tiles[t];
    int x0 = kGap + static_cast<int>(t % columns) * cell;
    int y0 = kGap + static_cast<int>(t / columns) * cell;
    for (int y = 0; y < kSide * scale; ++y) {
      for (int x = 0; x < kSide * scale; ++x) {
        std::size_t out = 3 * (static_cast<std::size_t>(y0 + y) * width + x0 + x);
        int pixel = (y / scale) * kSide + x / scale;
        for (int c = 0; c < 3; ++c) rgb[out + c] = to_byte(tile[c * kSide * kSide + pixel]);
      }
    }
  }

  std::string png;
  if (stbi_write_png_to_func(append_bytes, &png, width, height, 3, rgb.data(), width * 3) == 0) {
    throw std::runtime_error(fmt::format("{}: cannot encode the PNG", path));
  }
  write_file_atomic(path, png);
}

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(n >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= uint8_t(bytes[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace pl
