#include "stages/cloud.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <numeric>

#include "../test_util.h"
#include "pipeline/config.h"
#include "stages/ingest.h"

namespace pl {
namespace {

Cloud cloud_of(const std::vector<std::string>& overrides) {
  std::vector<std::string> all = {"data.source=cloud", "model.bottleneck=1"};
  all.insert(all.end(), overrides.begin(), overrides.end());
  return make_cloud(make_run_config(all).data());
}

std::string error_of(const std::string& text) {
  try {
    parse_csv_cloud(text, "points.csv");
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a cloud is the same for the same seed and differs for another") {
  Cloud a = cloud_of({"data.shape=arc", "data.seed=3"});
  Cloud b = cloud_of({"data.shape=arc", "data.seed=3"});
  Cloud c = cloud_of({"data.shape=arc", "data.seed=4"});
  CHECK(a.count == 1000);
  CHECK(a.dim == 2);
  CHECK(a.points == b.points);
  CHECK(a.key == b.key);
  CHECK(a.points != c.points);
  CHECK(a.key != c.key);
}

TEST_CASE("a noiseless arc lies on the unit circle within its angle") {
  Cloud arc = cloud_of({"data.shape=arc", "data.noise=0", "data.angle=90", "data.rotation=0"});
  for (int64_t i = 0; i < arc.count; ++i) {
    const double* p = arc.point(i);
    CHECK(std::hypot(p[0], p[1]) == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(std::abs(std::atan2(p[1], p[0])) <= M_PI / 4 + 1e-12);
    CHECK(std::atan2(p[1], p[0]) == doctest::Approx(arc.parameter[i]).epsilon(1e-12));
  }
  CHECK_FALSE(arc.closed);
  CHECK(cloud_of({"data.shape=arc", "data.angle=360"}).closed);
  CHECK(cloud_of({"data.shape=arc", "data.angle=355"}).closed);
  CHECK_FALSE(cloud_of({"data.shape=arc", "data.angle=340"}).closed);
  // A point on its own shape is fitted exactly by the shape.
  CHECK(curve_fve(arc) == doctest::Approx(1.0).epsilon(1e-6));
}

TEST_CASE("the noise has the declared standard deviation") {
  Cloud noisy =
      cloud_of({"data.shape=line", "data.noise=0.5", "data.rotation=0", "data.points=20000"});
  // Across the line (y) only the noise varies.
  double sum = 0, squares = 0;
  for (int64_t i = 0; i < noisy.count; ++i) {
    double y = noisy.point(i)[1];
    sum += y;
    squares += y * y;
  }
  double n = static_cast<double>(noisy.count);
  CHECK(sum / n == doctest::Approx(0).epsilon(0.02));
  CHECK(std::sqrt(squares / n) == doctest::Approx(0.5).epsilon(0.02));
}

TEST_CASE("a helix has three coordinates and its height follows the parameter") {
  Cloud helix = cloud_of({"data.shape=helix", "data.dim=3", "data.noise=0", "data.turns=2"});
  CHECK(helix.dim == 3);
  CHECK(helix.columns == std::vector<std::string>{"x", "y", "z"});
  for (int64_t i = 0; i < helix.count; ++i) {
    double expected = 2.0 * helix.parameter[i] / (4.0 * M_PI) - 1.0;
    CHECK(helix.point(i)[2] == doctest::Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE(
    "a helix in two dimensions, a csv source without a file and a wide bottleneck are refused") {
  auto message = [](const std::vector<std::string>& overrides) {
    try {
      make_run_config(overrides);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(message({"data.source=cloud", "data.shape=helix", "model.bottleneck=1"})
            .find("a helix needs 3 dimensions") != std::string::npos);
  CHECK(message({"data.source=csv", "model.bottleneck=1"}).find("no data.file is given") !=
        std::string::npos);
  CHECK(message({"data.source=cloud", "model.bottleneck=2"})
            .find("not narrower than the input (2 values)") != std::string::npos);
}

TEST_CASE("the point-cloud keys at their defaults leave a CIFAR-10 run's id as it was") {
  RunConfig plain = make_run_config({"model.hidden=[512]"});
  RunConfig explicit_defaults =
      make_run_config({"model.hidden=[512]", "data.noise=0.05", "model.standardize=none",
                       "model.bottleneck_activation=same", "data.shape=ellipse"});
  CHECK(plain.id() == explicit_defaults.id());
  CHECK(plain.canonical(true).find("data.noise") == std::string::npos);
  CHECK(make_run_config({"model.hidden=[512]", "model.standardize=center"}).id() != plain.id());
}

TEST_CASE("a CSV file with a header gives named columns") {
  Cloud c = parse_csv_cloud(
      "# measured\nheight, weight\n" +
          [] {
            std::string rows;
            for (int i = 0; i < 12; ++i)
              rows += std::to_string(i) + ", " + std::to_string(2 * i) + "\n";
            return rows;
          }(),
      "points.csv");
  CHECK(c.columns == std::vector<std::string>{"height", "weight"});
  CHECK(c.count == 12);
  CHECK(c.dim == 2);
  CHECK(c.point(5)[1] == 10.0);
  CHECK(c.parameter.empty());
  CHECK(std::isnan(curve_fve(c)));
}

TEST_CASE("a CSV file without a header starts with data") {
  std::string rows;
  for (int i = 0; i < 10; ++i) rows += "1.5e-1,2,3\n";
  Cloud c = parse_csv_cloud(rows, "p.csv");
  CHECK(c.count == 10);
  CHECK(c.columns == std::vector<std::string>{"x", "y", "z"});
  CHECK(c.point(9)[0] == 0.15);
  // Quoted cells and a byte-order mark, as spreadsheets write them.
  Cloud quoted = parse_csv_cloud(
      "\xEF\xBB\xBF\"h\",\"w\"\n" +
          [] {
            std::string rows;
            for (int i = 0; i < 10; ++i) rows += "\"1.5\",2\n";
            return rows;
          }(),
      "q.csv");
  CHECK(quoted.columns == std::vector<std::string>{"h", "w"});
  CHECK(quoted.point(3)[0] == 1.5);
}

TEST_CASE("bad CSV cells and shapes are named by row and column") {
  std::string good;
  for (int i = 0; i < 10; ++i) good += "1,2\n";
  CHECK(error_of("a,b\n" + good + "3,n/a\n")
            .find("row 12, column 2 ('b'): 'n/a' is not a finite number") != std::string::npos);
  CHECK(error_of(good + "1,2,3\n").find("row 11 has 3 cells but the first row has 2") !=
        std::string::npos);
  CHECK(error_of(good + "1,nan\n").find("row 11, column 2") != std::string::npos);
  CHECK(error_of("").find("no rows of numbers") != std::string::npos);
  CHECK(error_of("x,y\n").find("no rows of numbers") != std::string::npos);
  CHECK(error_of("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n").find("principal components need at least 2") !=
        std::string::npos);
  CHECK(error_of("1,2\n3,4\n").find("only 2 rows of points") != std::string::npos);
  CHECK(error_of("a,b\n" + good + "1,\n").find("column 2 ('b'): the cell is empty") !=
        std::string::npos);
  CHECK(error_of("a;b\n1;2\n").find("separate cells with ';'") != std::string::npos);
  CHECK(error_of("1,x\n" + good).find("row 1, column 2") != std::string::npos);
}

TEST_CASE("a CSV path that is a folder or missing is named") {
  testing::ScratchDir dir;
  auto error = [](const std::string& path) {
    try {
      read_csv_cloud(path);
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error(dir.path()).find("is a folder") != std::string::npos);
  CHECK(error(dir / "none.csv").find("cannot be read") != std::string::npos);
}

TEST_CASE("the cloud figure is an SVG with every point and the net's curve") {
  CloudFigure f;
  f.title = "a < b";
  f.points = {{0, 0}, {1, 1}, {2, 0}};
  f.fitted = {{0, 0.1}, {1, 0.9}};
  f.fitted_is_curve = true;
  f.pc_from = {0, 0};
  f.pc_to = {2, 0};
  std::string svg = cloud_svg(f);
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("a &lt; b") != std::string::npos);
  std::size_t circles = 0;
  for (std::size_t at = svg.find("<circle"); at != std::string::npos;
       at = svg.find("<circle", at + 1))
    ++circles;
  CHECK(circles == 3);
  CHECK(svg.find("<polyline") != std::string::npos);
}

}  // namespace pl

namespace pl {

TEST_CASE("columns beyond 32-bit floats are refused unless standardizing brings them in") {
  auto cloud_with = [](double scale, double offset) {
    std::string text = "a,b\n";
    for (int i = 0; i < 20; ++i) {
      text += fmt::format("{:.17g},{}\n", offset + scale * (i % 5), i);
    }
    return parse_csv_cloud(text, "p.csv");
  };
  CHECK(float32_problem(cloud_with(1, 0), "none").empty());
  CHECK(float32_problem(cloud_with(1e35, 0), "center").find("column 1 ('a') varies on a scale") !=
        std::string::npos);
  CHECK(float32_problem(cloud_with(1e35, 0), "scale").empty());
  CHECK(float32_problem(cloud_with(1e-35, 0), "none").find("beyond what the net's 32-bit") !=
        std::string::npos);
  CHECK(float32_problem(cloud_with(1e-35, 0), "scale").empty());
  CHECK(float32_problem(cloud_with(1e-9, 1), "none").find("below 32-bit float precision") !=
        std::string::npos);
  CHECK(float32_problem(cloud_with(1e-9, 1), "center").empty());
  CHECK(float32_problem(cloud_with(1e200, 0), "scale").find("too large to compute") !=
        std::string::npos);
}

TEST_CASE("hexadecimal cells are not numbers") {
  std::string rows;
  for (int i = 0; i < 10; ++i) rows += "1,2\n";
  CHECK(error_of(rows + "0x10,3\n").find("row 11, column 1") != std::string::npos);
}

}  // namespace pl
