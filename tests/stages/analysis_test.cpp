#include "stages/analysis.h"

#include <doctest/doctest.h>

#include <cmath>

namespace pl {
namespace {

TEST_CASE("Spearman is 1 for any increasing relation and -1 for a decreasing one") {
  CHECK(spearman({1, 2, 3, 4}, {1, 8, 27, 64}) == doctest::Approx(1.0));
  CHECK(spearman({1, 2, 3, 4}, {10, 5, 2, 1}) == doctest::Approx(-1.0));
}

TEST_CASE("Spearman averages the ranks of ties") {
  // x ranks 1, 2.5, 2.5, 4; y ranks 1, 2, 3, 4: Pearson of the ranks.
  CHECK(spearman({1, 2, 2, 3}, {1, 2, 3, 4}) == doctest::Approx(0.9486833));
}

TEST_CASE("Spearman is undefined for fewer than three pairs or a constant side") {
  CHECK(std::isnan(spearman({1, 2}, {2, 1})));
  CHECK(std::isnan(spearman({1, 1, 1}, {1, 2, 3})));
}

TEST_CASE("the Pareto front keeps the points no other point beats on both") {
  //        0       1       2       3       4 (duplicate of 1)
  auto front = pareto_front({1, 2, 3, 1.5, 2}, {5, 4, 1, 3, 4});
  CHECK(front == std::vector<std::size_t>{0, 1, 2, 4});
}

TEST_CASE("a sweep's analysis uses its done runs only") {
  auto run = [](const std::string& id, const std::string& status, double psnr, double gain) {
    RunRow row;
    row.id = id;
    row.status = status;
    row.metrics = {{"copy.psnr", psnr}, {"modify.fd_gain", gain}, {"modify.change", -gain}};
    return row;
  };
  SweepAnalysis a = analyse_sweep({run("a", "done", 20, 0.1), run("b", "done", 21, 0.05),
                                   run("c", "done", 22, 0.0), run("d", "failed", 30, 1.0)});
  REQUIRE(a.correlations.size() == 2);
  CHECK(a.correlations[0].name == "spearman.copy.psnr.modify.fd_gain");
  CHECK(a.correlations[0].value == doctest::Approx(-1.0));
  CHECK(a.correlations[0].step == 3);
  CHECK(a.front == std::vector<std::string>{"a", "b", "c"});
}

}  // namespace
}  // namespace pl
