// Which matrix kernels LibTorch's BLAS runs on this CPU, for the log.
#pragma once

#include <string>

namespace pl {

// "OpenBLAS Haswell": the BLAS library and the kernels it chose, or "BLAS"
// when the library is not OpenBLAS.
std::string cpu_kernels();

// A hint when OPENBLAS_CORETYPE keeps OpenBLAS on kernels without AVX-512
// on a CPU that has it (F, BW, DQ and VL); "" otherwise. The setting is the
// user's, so the program only says what it costs and never changes it.
std::string cpu_kernels_hint();

}  // namespace pl
