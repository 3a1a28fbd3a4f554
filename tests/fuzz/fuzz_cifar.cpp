// Fuzzes the CIFAR-10 batch reader: any bytes must give images with labels
// 0-9 or a DataError.
#include <cstddef>
#include <cstdint>

#include "stages/ingest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    pl::ImageSet set = pl::parse_cifar_bytes(data, size, "fuzz.bin", 0);
    if (set.count * pl::kRecordBytes != static_cast<int64_t>(size)) __builtin_trap();
    for (uint8_t label : set.labels) {
      if (label > 9) __builtin_trap();
    }
  } catch (const pl::DataError&) {
  }
  return 0;
}
