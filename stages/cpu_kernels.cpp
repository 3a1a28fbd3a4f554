#include "stages/cpu_kernels.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cctype>
#include <cstdlib>

namespace pl {

namespace {

bool has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

// OpenBLAS's name for the kernels it chose, or "" when it is not loaded.
std::string openblas_core() {
  using CoreName = char* (*)();
  // LibTorch loads it with the program: by its Debian name (RTLD_NOLOAD finds
  // it without loading it), else under whatever name it was loaded.
  void* library = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
  void* symbol = dlsym(library != nullptr ? library : RTLD_DEFAULT, "openblas_get_corename");
  auto corename = reinterpret_cast<CoreName>(symbol);
  const char* name = corename != nullptr ? corename() : nullptr;
  std::string core = name != nullptr ? name : "";
  if (library != nullptr) dlclose(library);  // drops RTLD_NOLOAD's reference only
  return core;
}

bool avx512_core(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name.find("skylakex") != std::string::npos ||
         name.find("cooperlake") != std::string::npos ||
         name.find("sapphirerapids") != std::string::npos;
}

}  // namespace

std::string cpu_kernels() {
  std::string core = openblas_core();
  return core.empty() ? std::string("BLAS") : "OpenBLAS " + core;
}

std::string cpu_kernels_hint() {
  const char* pinned = std::getenv("OPENBLAS_CORETYPE");
  if (pinned == nullptr || !has_avx512()) return "";
  std::string core = openblas_core();
  if (core.empty() || avx512_core(core)) return "";
  return fmt::format(
      "OPENBLAS_CORETYPE={} keeps OpenBLAS on {} kernels although this CPU has AVX-512; "
      "unset it to let OpenBLAS choose (matrix products about 1.5-2x faster)",
      pinned, core);
}

}  // namespace pl
