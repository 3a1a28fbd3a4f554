#include "stages/picture.h"

#include <doctest/doctest.h>
#include <stb/stb_image_write.h>

#include <filesystem>

#include "../test_util.h"
#include "pipeline/paths.h"

namespace pl {
namespace {

// RGB of a tile's pixel (x, y) back in bytes.
std::vector<int> pixel(const Tile& tile, int x, int y) {
  std::vector<int> rgb;
  for (int c = 0; c < 3; ++c)
    rgb.push_back(static_cast<int>((tile[c * 1024 + y * 32 + x] + 1) * 127.5f + 0.5f));
  return rgb;
}

void append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<char*>(data),
                                             static_cast<std::size_t>(size));
}

// A w x h picture, left half red and right half blue.
std::vector<uint8_t> halves(int w, int h, int channels) {
  std::vector<uint8_t> p(static_cast<std::size_t>(w * h * channels), 0);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* px = &p[static_cast<std::size_t>((y * w + x) * channels)];
      px[x < w / 2 ? 0 : 2] = 255;
      if (channels == 4) px[3] = 255;
    }
  }
  return p;
}

std::string jpeg_with_orientation(int orientation) {
  std::vector<uint8_t> p = halves(64, 32, 3);
  std::string jpeg;
  stbi_write_jpg_to_func(append, &jpeg, 64, 32, 3, p.data(), 95);
  // An APP1 EXIF segment (big-endian TIFF, one IFD entry) right after SOI.
  std::string tiff = std::string("MM\0*\0\0\0\x08", 8) + std::string("\0\x01", 2) +
                     std::string("\x01\x12\0\x03\0\0\0\x01", 8) + std::string(1, '\0') +
                     std::string(1, static_cast<char>(orientation)) + std::string("\0\0", 2) +
                     std::string(4, '\0');
  std::string body = std::string("Exif\0\0", 6) + tiff;
  std::size_t length = body.size() + 2;
  std::string app1 = std::string("\xff\xe1", 2) + static_cast<char>(length >> 8) +
                     static_cast<char>(length & 0xff) + body;
  return jpeg.substr(0, 2) + app1 + jpeg.substr(2);
}

std::string error_of(const std::string& path) {
  try {
    load_picture(path, Fit::kCrop);
  } catch (const PictureError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_CASE("a wide picture is centre-cropped or letterboxed to 32x32") {
  testing::ScratchDir dir;
  std::vector<uint8_t> p = halves(64, 32, 3);
  stbi_write_png((dir / "wide.png").c_str(), 64, 32, 3, p.data(), 64 * 3);
  Tile crop = load_picture(dir / "wide.png", Fit::kCrop);
  CHECK(pixel(crop, 2, 16) == std::vector<int>{255, 0, 0});
  CHECK(pixel(crop, 29, 16) == std::vector<int>{0, 0, 255});
  Tile box = load_picture(dir / "wide.png", Fit::kLetterbox);
  CHECK(pixel(box, 16, 2) == std::vector<int>{0, 0, 0});    // the bar above
  CHECK(pixel(box, 2, 16) == std::vector<int>{255, 0, 0});  // the picture, scaled whole
}

TEST_CASE("grayscale and transparent pictures become RGB over white") {
  testing::ScratchDir dir;
  std::vector<uint8_t> gray(32 * 32, 100);
  stbi_write_png((dir / "gray.png").c_str(), 32, 32, 1, gray.data(), 32);
  CHECK(pixel(load_picture(dir / "gray.png", Fit::kCrop), 5, 5) == std::vector<int>{100, 100, 100});
  std::vector<uint8_t> clear(32 * 32 * 4, 0);  // fully transparent black
  stbi_write_png((dir / "alpha.png").c_str(), 32, 32, 4, clear.data(), 32 * 4);
  CHECK(pixel(load_picture(dir / "alpha.png", Fit::kCrop), 5, 5) ==
        std::vector<int>{255, 255, 255});
}

TEST_CASE("a JPEG's EXIF orientation is honoured") {
  testing::ScratchDir dir;
  testing::write_text(dir / "upright.jpg", jpeg_with_orientation(1));
  testing::write_text(dir / "turned.jpg", jpeg_with_orientation(6));
  Tile upright = load_picture(dir / "upright.jpg", Fit::kLetterbox);
  CHECK(pixel(upright, 4, 16)[0] > 200);  // red on the left
  // Orientation 6 turns it a quarter clockwise: red on top, blue below.
  Tile turned = load_picture(dir / "turned.jpg", Fit::kLetterbox);
  CHECK(pixel(turned, 16, 4)[0] > 200);
  CHECK(pixel(turned, 16, 27)[2] > 200);
}

TEST_CASE("pictures that cannot be used are named with the reason") {
  testing::ScratchDir dir;
  testing::write_text(dir / "empty.png", "");
  CHECK(error_of(dir / "empty.png").find("empty.png: the file is empty") != std::string::npos);
  testing::write_text(dir / "anim.gif", "GIF89a......");
  CHECK(error_of(dir / "anim.gif").find("GIF is not supported") != std::string::npos);
  std::vector<uint8_t> p = halves(32, 32, 3);
  stbi_write_png((dir / "cut.png").c_str(), 32, 32, 3, p.data(), 96);
  std::filesystem::resize_file(dir / "cut.png", 40);
  CHECK(error_of(dir / "cut.png").find("truncated or corrupt") != std::string::npos);
  // A header that claims 30000 x 30000 pixels is refused before decoding.
  std::string header = std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16) +
                       std::string("\0\0\x75\x30\0\0\x75\x30\x08\x02\0\0\0", 13) +
                       std::string(4, '\0');
  testing::write_text(dir / "huge.png", header);
  CHECK(error_of(dir / "huge.png").find("30000x30000 pixels is above the limit") !=
        std::string::npos);
  CHECK(error_of(dir / "absent.png").find("no such picture") != std::string::npos);
  CHECK(error_of(dir.path()).find("is a folder") != std::string::npos);
}

// Found by fuzz_picture: for this file stb_image reads Huffman tables the file
// never defined (uninitialised memory), and then, depending on what that
// memory holds, decodes garbage, fails, or aborts on an assertion. Decoding
// in a child process keeps an abort from ending the program; the cli test
// "a picture decoder that dies..." checks that path for certain.
TEST_CASE("a picture the decoder may abort on does not end the program") {
  const char* source = std::getenv("PIPELINE_SOURCE_DIR");
  std::string file = std::string(source != nullptr ? source : ".") +
                     "/tests/fuzz/corpus/picture/huffman_assert.jpg";
  REQUIRE(std::filesystem::exists(file));
  for (int i = 0; i < 20; ++i) {
    try {
      Tile tile = load_picture(file, Fit::kCrop);
      CHECK(tile.size() == 3072);
    } catch (const PictureError& e) {
      CHECK(std::string(e.what()).find("huffman_assert.jpg: cannot decode the jpeg") !=
            std::string::npos);
    }
  }
}

TEST_CASE("a picture's bytes decode as its file does") {
  testing::ScratchDir dir;
  std::vector<uint8_t> p = halves(32, 32, 3);
  stbi_write_png((dir / "h.png").c_str(), 32, 32, 3, p.data(), 96);
  std::string bytes = read_file(dir / "h.png");
  CHECK(decode_picture(bytes, "mem.png", Fit::kCrop) == load_picture(dir / "h.png", Fit::kCrop));
  try {
    decode_picture(bytes.substr(0, 30), "mem.png", Fit::kCrop);
    FAIL("expected an error");
  } catch (const PictureError& e) {
    CHECK(std::string(e.what()).find("mem.png: cannot") != std::string::npos);
  }
}

}  // namespace
}  // namespace pl
