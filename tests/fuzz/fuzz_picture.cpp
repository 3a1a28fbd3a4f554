// Fuzzes the picture loader: any bytes must give a 32x32 tile or a
// PictureError. The input's length chooses the fit, so both are covered.
#include <cstddef>
#include <cstdint>
#include <string>

#include "stages/picture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  pl::Fit fit = size % 2 == 0 ? pl::Fit::kCrop : pl::Fit::kLetterbox;
  try {
    pl::Tile tile = pl::decode_picture(bytes, "fuzz.png", fit);
    if (tile.size() != 3 * 32 * 32) __builtin_trap();
  } catch (const pl::PictureError&) {
  }
  return 0;
}
