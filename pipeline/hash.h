// Content hashes for run ids, stage keys and file checksums (XXH3, 64 bit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pl {

// 16 lowercase hex digits of the XXH3-64 hash of `text`.
std::string hash_text(std::string_view text);

// The same for `size` bytes at `data`.
std::string hash_bytes(const void* data, std::size_t size);

// Hash of a whole file, streamed. Throws std::runtime_error naming the file
// when it cannot be read.
std::string hash_file(const std::string& path);

}  // namespace pl
