// Point clouds for the principal-component experiments: synthetic shapes
// declared in the experiment file, or the numeric columns of a CSV file.
//
// Synthetic shapes (data.source: cloud), before rotation by data.rotation
// degrees in the x-y plane and Gaussian noise of data.noise per coordinate:
//   line     t ~ U[-1, 1],               (t, 0)
//   ellipse  t, s ~ N(0, 1),             (t, ratio s): a filled Gaussian cloud
//   arc      t ~ U[-angle/2, angle/2],   (cos t, sin t): radius 1, angle in degrees
//   spiral   t ~ U[0, 2 pi turns],       r(t) (cos t, sin t), r from 0.2 to 1
//   helix    t ~ U[0, 2 pi turns],       (cos t, sin t, height from -1 to 1); 3-D only
// A 2-D shape in 3 dimensions lies in the z = 0 plane (plus noise). `t` is the
// curve parameter a one-unit bottleneck should recover.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/config.h"

namespace pl {

struct Cloud {
  int64_t count = 0;
  int64_t dim = 0;
  std::vector<double> points;        // count x dim, row-major, in the data's units
  std::vector<std::string> columns;  // column names ("x", "y", ... or a CSV header)
  // Synthetic shapes only (empty for CSV data):
  std::vector<double> parameter;  // the true curve parameter of each point
  std::vector<double> curve;      // the noiseless shape, densely sampled: m x dim
  bool closed = false;            // a closed curve (an arc of 360 degrees)
  std::string key;                // identifies the points (config and generator, or file content)
  std::string description;        // "arc of 180 degrees, 1000 points, noise 0.2"

  const double* point(int64_t i) const { return points.data() + i * dim; }
};

// The cloud of a data config whose source is "cloud" or "csv". Throws
// DataError (stages/ingest.h) naming the file, row and column of a bad cell.
Cloud ingest_cloud(const DataConfig& config);

// Generates a synthetic cloud; the same config gives the same points on every
// machine (the generator is the project's own, not the standard library's).
Cloud make_cloud(const DataConfig& config);

// Reads the numeric columns of a CSV file. The first row is a header when none
// of its cells is a number; blank lines and lines starting with '#' are skipped.
Cloud read_csv_cloud(const std::string& path);
Cloud parse_csv_cloud(const std::string& text, const std::string& name);

// Why the net cannot be trained on these points with `standardize` (none,
// center or scale): a column beyond 32-bit float range or precision; "" when
// it can.
std::string float32_problem(const Cloud& cloud, const std::string& standardize);

// Fraction of variance explained by the ideal one-dimensional fit, each point
// replaced by its nearest point on the noiseless shape (at most the first
// 20,000 points are used). NaN when the cloud has no known shape.
double curve_fve(const Cloud& cloud);

// A cloud's figure: the points, the first principal component's line and a
// net's reconstructions, in two plotted coordinates.
struct CloudFigure {
  std::string title;
  std::string x_label, y_label;
  std::vector<std::array<double, 2>> points;
  std::vector<std::array<double, 2>> fitted;  // in order of the bottleneck value
  bool fitted_is_curve = false;               // join the fitted points into a line
  std::array<double, 2> pc_from{}, pc_to{};   // the PC1 segment
  std::vector<std::string> notes;             // lines under the title
};

// The figure as a self-contained SVG document.
std::string cloud_svg(const CloudFigure& figure);

}  // namespace pl
