// Pictures: grids of 32x32 tiles written as PNG, and base64 for embedding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pl {

// One tile: 3 x 32 x 32 values in plane order, scaled to [-1, 1].
using Tile = std::vector<float>;

// Writes tiles row by row, `columns` to a row, each magnified `scale` times
// (1 keeps the files small; the report magnifies them on screen),
// with a 2-pixel white gap. Written atomically; throws naming `path`.
void write_grid_png(const std::string& path, const std::vector<Tile>& tiles, int columns,
                    int scale = 1);

// Converts bytes in plane order (3 x 32 x 32) to a tile in [-1, 1].
Tile tile_from_bytes(const uint8_t* planes);

std::string base64(const std::string& bytes);

}  // namespace pl
