// The modification measures of METRICS.md on tensors (LibTorch inside).
#pragma once

#include <torch/torch.h>

#include "stages/model.h"

namespace pl {

// Fréchet distance between Gaussians fitted to the rows of `a` and `b`
// ([n, d] and [m, d]): |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2),
// with the square roots from symmetric eigendecompositions, in float64.
double frechet_distance(const torch::Tensor& a, const torch::Tensor& b);

// mean over rows of |f(x) - x|^2 / |x - mean|^2: [n, d] inputs, outputs; [d] mean.
double relative_change(const torch::Tensor& x, const torch::Tensor& fx, const torch::Tensor& mean);

// How much more a net changes foreign pictures than its own class: the ratio
// of the two relative_change values; 1 when the net changes neither.
double selectivity(double foreign_change, double own_change);

// Spectral radius of the k x k matrix J_enc(x) J_dec(enc(x)) for each row of
// `x` ([n, d] -> [n]): its non-zero eigenvalues are those of the d x d
// Jacobian of f at x, and at a fixed point it is the Jacobian of enc(dec(z))
// at z = enc(x). Costs two forward passes of k rows per picture (forward-mode
// Jacobian products, no autograd).
torch::Tensor latent_spectral_radius(Autoencoder& model, const torch::Tensor& x);

// The full d x d Jacobian of f at one input `x` ([d]); for tests on small nets.
torch::Tensor full_jacobian(Autoencoder& model, const torch::Tensor& x);

}  // namespace pl
