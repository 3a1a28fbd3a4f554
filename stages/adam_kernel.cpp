// Compiled with -O3 -fno-math-errno (CMakeLists.txt) so the loop vectorises;
// square roots and divisions stay IEEE-exact, so vectorising changes no bit.
#include "stages/adam_kernel.h"

#include <cmath>

namespace pl {
namespace {

template <bool kFma>
__attribute__((always_inline)) inline void adam_loop(const AdamStep& step, float* __restrict p,
                                                     const float* __restrict g, float* __restrict m,
                                                     float* __restrict v, int64_t count) {
  const AdamStep s = step;  // a copy: stores through the pointers cannot change it
  for (int64_t j = 0; j < count; ++j) {
    float grad = s.decay == 0 ? g[j] : kFma ? std::fma(p[j], s.decay, g[j]) : g[j] + s.decay * p[j];
    float mj = kFma ? std::fma(grad, s.one_minus_beta1, s.beta1 * m[j])
                    : grad * s.one_minus_beta1 + s.beta1 * m[j];
    float vj = kFma ? std::fma(s.one_minus_beta2 * grad, grad, s.beta2 * v[j])
                    : s.one_minus_beta2 * grad * grad + s.beta2 * v[j];
    m[j] = mj;
    v[j] = vj;
    p[j] += (s.minus_step * mj) / (std::sqrt(vj) / s.root_bc2 + s.eps);
  }
}

__attribute__((target("avx2,fma"))) void adam_fma(const AdamStep& s, float* p, const float* g,
                                                  float* m, float* v, int64_t count) {
  adam_loop<true>(s, p, g, m, v, count);
}

}  // namespace

void adam_span(const AdamStep& s, float* p, const float* g, float* m, float* v, int64_t count) {
  static const bool fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (fma) {
    adam_fma(s, p, g, m, v, count);
  } else {
    adam_loop<false>(s, p, g, m, v, count);
  }
}

}  // namespace pl
