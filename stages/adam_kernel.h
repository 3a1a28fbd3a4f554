// The fused Adam update over plain float arrays (no LibTorch): the train
// stage's optimizer step, one pass over parameter, gradient and moments.
#pragma once

#include <cstdint>

namespace pl {

struct AdamStep {
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float root_bc2;  // sqrt(1 - beta2^t)
  float eps;
  float minus_step;  // -lr / (1 - beta1^t)
  float decay;       // L2 weight decay added to the gradient
};

// Updates `count` parameters in place, rounding as LibTorch's vectorised
// kernels do (fused multiply-adds where the processor has them), so the
// result agrees with torch.optim.Adam to the last bit or nearly.
void adam_span(const AdamStep& step, float* p, const float* g, float* m, float* v, int64_t count);

}  // namespace pl
