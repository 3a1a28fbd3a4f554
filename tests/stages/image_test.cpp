#include "stages/image.h"

#include <doctest/doctest.h>
#include <stb/stb_image.h>

#include "../test_util.h"
#include "pipeline/paths.h"

namespace pl {
namespace {

TEST_CASE("base64 encodes with padding as RFC 4648 says") {
  CHECK(base64("") == "");
  CHECK(base64("f") == "Zg==");
  CHECK(base64("fo") == "Zm8=");
  CHECK(base64("foo") == "Zm9v");
  CHECK(base64("foobar") == "Zm9vYmFy");
}

TEST_CASE("a grid PNG has the tiles' pixels at their places") {
  testing::ScratchDir dir;
  std::vector<uint8_t> red(3072, 0), blue(3072, 0);
  for (int i = 0; i < 1024; ++i) {
    red[i] = 255;
    blue[2048 + i] = 255;
  }
  write_grid_png(dir / "g.png", {tile_from_bytes(red.data()), tile_from_bytes(blue.data())}, 2, 1);
  std::string png = read_file(dir / "g.png");
  int w = 0, h = 0, c = 0;
  unsigned char* pixels = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()),
                                                static_cast<int>(png.size()), &w, &h, &c, 3);
  REQUIRE(pixels != nullptr);
  CHECK(w == 2 + 2 * 34);
  CHECK(h == 2 + 34);
  auto at = [&](int x, int y, int ch) { return pixels[3 * (y * w + x) + ch]; };
  CHECK(at(2, 2, 0) == 255);  // first tile red
  CHECK(at(2, 2, 2) == 0);
  CHECK(at(36, 2, 2) == 255);  // second tile blue
  CHECK(at(0, 0, 1) == 255);   // white gap
  stbi_image_free(pixels);
}

}  // namespace
}  // namespace pl
