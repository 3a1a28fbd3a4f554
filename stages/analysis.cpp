#include "stages/analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace pl {
namespace {

std::vector<double> ranks(const std::vector<double>& values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> rank(values.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    double average = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (std::size_t t = i; t <= j; ++t) rank[order[t]] = average;
    i = j + 1;
  }
  return rank;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  double n = static_cast<double>(x.size());
  double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx == 0 || syy == 0) return std::numeric_limits<double>::quiet_NaN();
  return sxy / std::sqrt(sxx * syy);
}

}  // namespace

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size() || x.size() < 3) return std::numeric_limits<double>::quiet_NaN();
  return pearson(ranks(x), ranks(y));
}

std::vector<std::size_t> pareto_front(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<std::size_t> front;
  for (std::size_t i = 0; i < x.size(); ++i) {
    bool dominated = false;
    for (std::size_t j = 0; j < x.size() && !dominated; ++j) {
      dominated = x[j] >= x[i] && y[j] >= y[i] && (x[j] > x[i] || y[j] > y[i]);
    }
    if (!dominated) front.push_back(i);
  }
  return front;
}

SweepAnalysis analyse_sweep(const std::vector<RunRow>& runs) {
  SweepAnalysis analysis;
  auto pairs = [&](const std::string& a, const std::string& b, std::vector<const RunRow*>* used) {
    std::vector<double> x, y;
    for (const RunRow& run : runs) {
      auto fa = run.metrics.find(a);
      auto fb = run.metrics.find(b);
      if (run.status != "done" || fa == run.metrics.end() || fb == run.metrics.end()) continue;
      x.push_back(fa->second);
      y.push_back(fb->second);
      if (used != nullptr) used->push_back(&run);
    }
    return std::make_pair(x, y);
  };
  for (const char* other : {"modify.fd_gain", "modify.change", "modify.pull"}) {
    auto [x, y] = pairs("copy.psnr", other, nullptr);
    double rho = spearman(x, y);
    if (!std::isnan(rho)) {
      analysis.correlations.push_back(
          {std::string("spearman.copy.psnr.") + other, static_cast<int64_t>(x.size()), rho});
    }
  }
  std::vector<const RunRow*> used;
  auto [x, y] = pairs("copy.psnr", "modify.fd_gain", &used);
  for (std::size_t i : pareto_front(x, y)) analysis.front.push_back(used[i]->id);
  return analysis;
}

}  // namespace pl
