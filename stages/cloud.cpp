#include "stages/cloud.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "pipeline/hash.h"
#include "stages/ingest.h"
#include "stages/report.h"

namespace pl {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kCurveSamples = 4000;
constexpr int64_t kCurveFitPoints = 20000;
// Bump when the generator changes what it draws.
constexpr const char* kGenerator = "cloud-1";

// SplitMix64: small, fast and identical on every platform, unlike the
// standard library's distributions.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // In (0, 1): never 0, so the logarithm below is finite.
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  double normal() {  // Box-Muller; the second value is dropped for simplicity
    double u = uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * kPi * v);
  }

 private:
  uint64_t state_;
};

// The noiseless point of `shape` at curve parameter t, before rotation.
std::array<double, 3> shape_point(const DataConfig& c, double t, double s = 0) {
  const double full = 2.0 * kPi * c.turns;
  if (c.shape == "line") return {t, 0, 0};
  if (c.shape == "ellipse") return {t, c.ratio * s, 0};
  if (c.shape == "arc") return {std::cos(t), std::sin(t), 0};
  if (c.shape == "spiral") {
    double r = 0.2 + 0.8 * t / full;
    return {r * std::cos(t), r * std::sin(t), 0};
  }
  return {std::cos(t), std::sin(t), 2.0 * t / full - 1.0};  // helix
}

// The curve parameter's range for the uniform shapes.
std::array<double, 2> parameter_range(const DataConfig& c) {
  if (c.shape == "line") return {-1, 1};
  if (c.shape == "ellipse") return {-4, 4};  // the major axis, four standard deviations
  if (c.shape == "arc") {
    double half = c.angle * kPi / 360.0;
    return {-half, half};
  }
  return {0, 2.0 * kPi * c.turns};
}

void append_rotated(const DataConfig& c, const std::array<double, 3>& p, std::vector<double>& out) {
  double r = c.rotation * kPi / 180.0;
  out.push_back(std::cos(r) * p[0] - std::sin(r) * p[1]);
  out.push_back(std::sin(r) * p[0] + std::cos(r) * p[1]);
  if (c.dim == 3) out.push_back(p[2]);
}

std::vector<std::string> default_columns(int64_t dim) {
  std::vector<std::string> names = {"x", "y", "z"};
  if (dim <= 3) return {names.begin(), names.begin() + dim};
  std::vector<std::string> out;
  for (int64_t i = 1; i <= dim; ++i) out.push_back(fmt::format("x{}", i));
  return out;
}

std::string trim(const std::string& text) {
  std::size_t begin = text.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  std::size_t end = text.find_last_not_of(" \t\r");
  return text.substr(begin, end - begin + 1);
}

std::vector<std::string> split_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) {
    cell = trim(cell);
    // A quoted cell ("1.5", as spreadsheets write them) is read without its quotes.
    if (cell.size() >= 2 && cell.front() == '"' && cell.back() == '"')
      cell = trim(cell.substr(1, cell.size() - 2));
    cells.push_back(cell);
  }
  if (!line.empty() && line.back() == ',') cells.push_back("");
  return cells;
}

bool parse_number(const std::string& text, double& out) {
  // Decimal only: strtod would also take hexadecimal ("0x10") and "nan".
  if (text.empty() || text.find_first_of("xXpP") != std::string::npos) return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (*end != '\0' || errno == ERANGE || !std::isfinite(v)) return false;
  out = v;
  return true;
}

}  // namespace

Cloud make_cloud(const DataConfig& c) {
  Cloud cloud;
  cloud.dim = c.dim;
  cloud.count = c.points;
  cloud.columns = default_columns(c.dim);
  cloud.points.reserve(static_cast<std::size_t>(c.points * c.dim));
  cloud.parameter.reserve(static_cast<std::size_t>(c.points));
  Random random(static_cast<uint64_t>(c.seed));
  auto [low, high] = parameter_range(c);
  for (int64_t i = 0; i < c.points; ++i) {
    double t = c.shape == "ellipse" ? random.normal() : random.uniform(low, high);
    double s = c.shape == "ellipse" ? random.normal() : 0.0;
    append_rotated(c, shape_point(c, t, s), cloud.points);
    cloud.parameter.push_back(t);
  }
  for (double& v : cloud.points) v += c.noise * random.normal();
  for (int64_t i = 0; i < kCurveSamples; ++i) {
    double t = low + (high - low) * static_cast<double>(i) / (kCurveSamples - 1);
    append_rotated(c, shape_point(c, t), cloud.curve);
  }
  // Within ten degrees of a full circle the gap is narrower than the noise
  // of any useful fit: treated as closed.
  cloud.closed = c.shape == "arc" && c.angle >= 350.0;
  std::string what = c.shape;
  if (c.shape == "arc") what = fmt::format("arc of {:g} degrees", c.angle);
  if (c.shape == "spiral" || c.shape == "helix")
    what = fmt::format("{} of {:g} turns", c.shape, c.turns);
  if (c.shape == "ellipse") what = fmt::format("ellipse of axis ratio {:g}", c.ratio);
  cloud.description = fmt::format("{}, {} points in {}-D, noise {:g}, seed {}", what, c.points,
                                  c.dim, c.noise, c.seed);
  cloud.key = hash_text(fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", kGenerator, c.shape, c.points,
                                    c.noise, c.seed, c.dim, c.angle, c.turns, c.rotation, c.ratio));
  return cloud;
}

Cloud parse_csv_cloud(const std::string& text, const std::string& name) {
  Cloud cloud;
  std::istringstream in(text);
  std::string line;
  int64_t row = 0;
  bool first = true;
  while (std::getline(in, line)) {
    ++row;
    if (row == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 mark
    std::string content = trim(line);
    if (content.empty() || content[0] == '#') continue;
    std::vector<std::string> cells = split_cells(content);
    if (first) {
      first = false;
      int numeric = 0;
      double ignored = 0;
      for (const std::string& cell : cells) numeric += parse_number(cell, ignored);
      if (numeric == 0) {  // a header
        cloud.columns = cells;
        cloud.dim = static_cast<int64_t>(cells.size());
        continue;
      }
      cloud.dim = static_cast<int64_t>(cells.size());
      cloud.columns = default_columns(cloud.dim);
    }
    if (static_cast<int64_t>(cells.size()) != cloud.dim) {
      throw DataError(fmt::format(
          "{}: row {} has {} cells but the first row has {}; every row needs the same columns",
          name, row, cells.size(), cloud.dim));
    }
    for (std::size_t j = 0; j < cells.size(); ++j) {
      double v = 0;
      if (!parse_number(cells[j], v)) {
        std::string what = cells[j].empty() ? "the cell is empty"
                                            : fmt::format("'{}' is not a finite number", cells[j]);
        std::string hint = "fix the cell or remove the row";
        if (cells[j].find_first_of(";\t") != std::string::npos) {
          hint = "the file seems to separate cells with ';' or tabs; pipeline reads commas";
        }
        throw DataError(fmt::format("{}: row {}, column {} ('{}'): {}; {}", name, row, j + 1,
                                    cloud.columns[j], what, hint));
      }
      cloud.points.push_back(v);
    }
    ++cloud.count;
  }
  if (cloud.count == 0) {
    throw DataError(
        fmt::format("{}: no rows of numbers; a CSV file of points needs at least 10 "
                    "rows of two or more numeric columns",
                    name));
  }
  if (cloud.dim < 2) {
    throw DataError(
        fmt::format("{}: {} column; principal components need at least 2", name, cloud.dim));
  }
  if (cloud.count < 10) {
    throw DataError(fmt::format("{}: only {} row{} of points; give at least 10", name, cloud.count,
                                cloud.count == 1 ? "" : "s"));
  }
  cloud.description =
      fmt::format("{}: {} points, {} columns ({})", std::filesystem::path(name).filename().string(),
                  cloud.count, cloud.dim, fmt::join(cloud.columns, ", "));
  cloud.key = hash_text("csv-1|" + text);
  return cloud;
}

Cloud read_csv_cloud(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw DataError(fmt::format("{}: is a folder; data.file needs a CSV file", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw DataError(fmt::format(
        "{}: cannot be read ({}); check data.file (a relative path is taken from the folder the "
        "command runs in)",
        path, std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_csv_cloud(text.str(), path);
}

Cloud ingest_cloud(const DataConfig& config) {
  if (config.source == "csv") return read_csv_cloud(config.file);
  return make_cloud(config);
}

std::string float32_problem(const Cloud& cloud, const std::string& standardize) {
  constexpr double kLargest = 1e30, kSmallest = 1e-30;
  const int64_t d = cloud.dim;
  for (int64_t j = 0; j < d; ++j) {
    double sum = 0, largest = 0;
    for (int64_t i = 0; i < cloud.count; ++i) {
      sum += cloud.point(i)[j];
      largest = std::max(largest, std::abs(cloud.point(i)[j]));
    }
    double mean = sum / static_cast<double>(cloud.count);
    double squares = 0;
    for (int64_t i = 0; i < cloud.count; ++i)
      squares += (cloud.point(i)[j] - mean) * (cloud.point(i)[j] - mean);
    double sd = std::sqrt(squares / static_cast<double>(cloud.count));
    const std::string& name = cloud.columns[static_cast<std::size_t>(j)];
    if (largest > 1e150) {  // squares overflow even in float64
      return fmt::format(
          "column {} ('{}') holds values up to {:.3g}, too large to compute a variance of; "
          "rescale the column",
          j + 1, name, largest);
    }
    if (standardize == "scale") continue;  // z-scores in float64 first: any spread fits
    double reach = standardize == "center" ? sd : largest;
    if (reach > kLargest || (sd > 0 && sd < kSmallest)) {
      return fmt::format(
          "column {} ('{}') varies on a scale of {:.3g}, beyond what the net's 32-bit floats "
          "hold; set model.standardize: scale (or rescale the column)",
          j + 1, name, sd);
    }
    if (standardize == "none" && sd > 0 && sd < largest * 1e-6) {
      return fmt::format(
          "column {} ('{}') varies by {:.3g} around {:.3g}, below 32-bit float precision; set "
          "model.standardize: center or scale",
          j + 1, name, sd, mean);
    }
  }
  return "";
}

double curve_fve(const Cloud& cloud) {
  if (cloud.curve.empty() || cloud.count == 0) return std::numeric_limits<double>::quiet_NaN();
  const int64_t d = cloud.dim;
  const int64_t n = std::min(cloud.count, kCurveFitPoints);
  const int64_t m = static_cast<int64_t>(cloud.curve.size()) / d;
  std::vector<double> mean(static_cast<std::size_t>(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mean[j] += cloud.point(i)[j] / static_cast<double>(n);
  double residual = 0, total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double* x = cloud.point(i);
    double best = std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < m; ++c) {
      double dist = 0;
      for (int64_t j = 0; j < d; ++j) {
        double diff = x[j] - cloud.curve[c * d + j];
        dist += diff * diff;
      }
      best = std::min(best, dist);
    }
    residual += best;
    for (int64_t j = 0; j < d; ++j) total += (x[j] - mean[j]) * (x[j] - mean[j]);
  }
  return 1.0 - residual / total;
}

std::string cloud_svg(const CloudFigure& f) {
  constexpr double kWidth = 420, kHeight = 420, kMargin = 44;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  auto extend = [&](const std::array<double, 2>& p) {
    if (!std::isfinite(p[0]) || !std::isfinite(p[1])) return;
    x0 = std::min(x0, p[0]);
    x1 = std::max(x1, p[0]);
    y0 = std::min(y0, p[1]);
    y1 = std::max(y1, p[1]);
  };
  for (const auto& p : f.points) extend(p);
  for (const auto& p : f.fitted) extend(p);
  if (x0 > x1) x0 = -1, x1 = 1, y0 = -1, y1 = 1;
  // Equal scales on both axes, so angles and shapes look as they are.
  double span = std::max({x1 - x0, y1 - y0, 1e-12}) * 1.08;
  double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  double scale = (kWidth - 2 * kMargin) / span;
  auto sx = [&](double x) { return kWidth / 2 + (x - cx) * scale; };
  auto sy = [&](double y) { return kHeight / 2 - (y - cy) * scale; };
  const double top = 18.0 * static_cast<double>(1 + f.notes.size());

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 {:.0f} {:.0f} {:.0f}\" "
      "width=\"{:.0f}\" height=\"{:.0f}\" font-family=\"sans-serif\" font-size=\"12\">\n",
      -top, kWidth, kHeight + top, kWidth, kHeight + top);
  svg += fmt::format("<text x=\"6\" y=\"{:.0f}\" font-weight=\"bold\">{}</text>\n", 14 - top,
                     html_escape(f.title));
  for (std::size_t i = 0; i < f.notes.size(); ++i) {
    svg += fmt::format("<text x=\"6\" y=\"{:.0f}\">{}</text>\n",
                       14 - top + 18.0 * static_cast<double>(i + 1), html_escape(f.notes[i]));
  }
  svg += fmt::format(
      "<rect x=\"{0}\" y=\"{0}\" width=\"{1:.0f}\" height=\"{2:.0f}\" fill=\"none\" "
      "stroke=\"#999\"/>\n",
      kMargin / 2, kWidth - kMargin, kHeight - kMargin);
  svg += fmt::format("<text x=\"{:.0f}\" y=\"{:.0f}\" text-anchor=\"middle\">{}</text>\n",
                     kWidth / 2, kHeight - 6, html_escape(f.x_label));
  svg += fmt::format(
      "<text x=\"12\" y=\"{:.0f}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {:.0f})\">{}"
      "</text>\n",
      kHeight / 2, kHeight / 2, html_escape(f.y_label));
  auto dots = [&](const std::vector<std::array<double, 2>>& points, const char* colour,
                  double radius) {
    svg += fmt::format("<g fill=\"{}\">\n", colour);
    for (const auto& p : points)
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\"/>\n", sx(p[0]), sy(p[1]),
                         radius);
    svg += "</g>\n";
  };
  dots(f.points, "#9aa7b4", 1.6);
  svg += fmt::format(
      "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#1f77b4\" "
      "stroke-width=\"2\" stroke-dasharray=\"6 4\"><title>PC1</title></line>\n",
      sx(f.pc_from[0]), sy(f.pc_from[1]), sx(f.pc_to[0]), sy(f.pc_to[1]));
  if (f.fitted_is_curve && f.fitted.size() > 1) {
    svg += "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"";
    for (const auto& p : f.fitted) svg += fmt::format("{:.1f},{:.1f} ", sx(p[0]), sy(p[1]));
    svg += "\"><title>the net's curve</title></polyline>\n";
  } else {
    dots(f.fitted, "#d62728", 1.2);
  }
  svg += fmt::format(
      "<g font-size=\"11\"><line x1=\"{0:.0f}\" y1=\"{1:.0f}\" x2=\"{2:.0f}\" y2=\"{1:.0f}\" "
      "stroke=\"#1f77b4\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/><text x=\"{3:.0f}\" "
      "y=\"{4:.0f}\">PC1</text><line x1=\"{5:.0f}\" y1=\"{1:.0f}\" x2=\"{6:.0f}\" y2=\"{1:.0f}\" "
      "stroke=\"#d62728\" stroke-width=\"2\"/><text x=\"{7:.0f}\" y=\"{4:.0f}\">net</text></g>\n",
      kMargin / 2 + 6, kMargin / 2 + 12, kMargin / 2 + 26, kMargin / 2 + 30, kMargin / 2 + 16,
      kMargin / 2 + 64, kMargin / 2 + 84, kMargin / 2 + 88);
  svg += "</svg>\n";
  return svg;
}

}  // namespace pl
