// The user's own pictures: PNG or JPEG of any size and kind, brought to the
// 32x32 RGB tiles the nets take.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "stages/image.h"

namespace pl {

enum class Fit {
  kCrop,       // the largest centred square, scaled to 32x32
  kLetterbox,  // the whole picture scaled to fit, black bars on the short side
};

// "crop" or "letterbox"; throws std::invalid_argument otherwise.
Fit parse_fit(const std::string& name);

// A picture that cannot be used; the message names the file and the reason.
class PictureError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr int kMaxPictureSide = 20000;
constexpr long long kMaxPicturePixels = 100'000'000;

// Loads `path`: grayscale, palette, alpha (composited over white), 8 or 16
// bits; a JPEG's EXIF orientation is applied. Pictures above the size limits
// are refused before they are decoded.
Tile load_picture(const std::string& path, Fit fit);

// The same from the bytes of a picture file; `path` names it in errors.
Tile decode_picture(const std::string& bytes, const std::string& path, Fit fit);

// The PNG and JPEG files of a folder, sorted by name; throws PictureError
// when the folder is missing or holds none.
std::vector<std::string> picture_files(const std::string& folder);

}  // namespace pl
