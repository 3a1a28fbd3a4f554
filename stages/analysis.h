// Sweep-level analysis: rank correlation and the Pareto front (no LibTorch).
#pragma once

#include <string>
#include <vector>

#include "pipeline/store.h"

namespace pl {

// Spearman's rank correlation of paired samples (ties get their average
// rank); NaN when fewer than 3 pairs or a side is constant.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

// Indices of the points that no other point beats on both coordinates (higher
// is better on each), in input order.
std::vector<std::size_t> pareto_front(const std::vector<double>& x, const std::vector<double>& y);

struct SweepAnalysis {
  std::vector<Metric> correlations;  // spearman.<a>.<b>, step = number of runs used
  std::vector<std::string> front;    // run ids on the copy.psnr / modify.fd_gain front
};

// Over the sweep's done runs: Spearman of copy.psnr with modify.fd_gain and
// with modify.change, and the Pareto front of (copy.psnr, modify.fd_gain).
SweepAnalysis analyse_sweep(const std::vector<RunRow>& runs);

}  // namespace pl
