#include "pipeline/hash.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace pl {

std::string hash_text(std::string_view text) { return hash_bytes(text.data(), text.size()); }

std::string hash_bytes(const void* data, std::size_t size) {
  return fmt::format("{:016x}", XXH3_64bits(data, size));
}

std::string hash_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) {
    throw std::runtime_error(
        fmt::format("{}: cannot open for hashing: {}", path, std::strerror(errno)));
  }
  std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> state(XXH3_createState(),
                                                                        XXH3_freeState);
  XXH3_64bits_reset(state.get());
  std::vector<char> buffer(1 << 20);
  std::size_t got = 0;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) {
    XXH3_64bits_update(state.get(), buffer.data(), got);
  }
  if (std::ferror(file.get())) throw std::runtime_error(fmt::format("{}: read error", path));
  return fmt::format("{:016x}", XXH3_64bits_digest(state.get()));
}

}  // namespace pl
