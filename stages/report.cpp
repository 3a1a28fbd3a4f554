#include "stages/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include "pipeline/fault.h"
#include "pipeline/paths.h"
#include "stages/analysis.h"
#include "stages/image.h"

namespace pl {

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}
namespace fs = std::filesystem;
namespace {

// Metrics shown in the table, in this order, when present.
const std::vector<std::string> kTableMetrics = {
    "copy.psnr",    "copy.pca_psnr", "copy.efficiency",   "copy.psnr_train", "modify.change",
    "modify.pull",  "pca.angle",     "pca.fve",           "pca.fve_pc1",     "pca.fve_curve",
    "pca.spearman", "train.loss",    "train.images_per_s"};

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string number(double v) {
  if (std::abs(v) >= 1000) return fmt::format("{:.0f}", v);
  if (std::abs(v) >= 10) return fmt::format("{:.2f}", v);
  return fmt::format("{:.4f}", v);
}

// Parameters that differ between the sweep's runs: what the sweep is about.
std::vector<std::string> varied_params(const std::vector<RunRow>& runs) {
  std::vector<std::string> keys;
  if (runs.empty()) return keys;
  for (const auto& [key, value] : runs.front().params) {
    if (key == "data.dir" || key == "train.threads") continue;
    for (const RunRow& run : runs) {
      auto found = run.params.find(key);
      if (found == run.params.end() || found->second != value) {
        keys.push_back(key);
        break;
      }
    }
  }
  return keys;
}

std::string run_label(const RunRow& run) {
  auto arch = run.params.find("model.architecture");
  return arch != run.params.end() ? arch->second : run.id;
}

// Runs gnuplot on `script` (written to `work`) and returns its SVG, or a
// note when gnuplot is missing or fails.
std::string gnuplot_svg(const std::string& script, const std::string& work, const std::string& name,
                        const std::string& size = "860,440") {
  std::string path = work + "/" + name + ".gp";
  write_file_atomic(path, "set terminal svg size " + size +
                              " dynamic noenhanced font 'sans,11' background rgb 'white'\n" +
                              script + "\n");
  std::string svg;
  std::FILE* pipe = popen(fmt::format("gnuplot '{}' 2>/dev/null", path).c_str(), "r");
  if (pipe != nullptr) {
    char buffer[4096];
    std::size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) svg.append(buffer, got);
    if (pclose(pipe) != 0) svg.clear();
  }
  if (svg.find("<svg") == std::string::npos) {
    return "<p>Plots need gnuplot (apt-get install gnuplot-nox); the numbers are in runs.csv and "
           "the run database.</p>";
  }
  return svg.substr(svg.find("<svg"));
}

// Every run's loss per epoch on a log scale.
std::string loss_plot(Store& store, const std::vector<RunRow>& runs, const std::string& work) {
  std::string script =
      "set logscale y\nset format y '%.3g'\nset xlabel 'epoch'\nset ylabel 'training loss (MSE)'\n"
      "set key outside right\nset grid\nplot ";
  int lines = 0;
  for (const RunRow& run : runs) {
    auto series = store.series(run.id, "train.loss");
    if (series.empty()) continue;
    std::string data = work + "/" + run.id + ".dat";
    std::string text;
    for (const auto& [step, value] : series) text += fmt::format("{} {}\n", step, value);
    write_file_atomic(data, text);
    script += fmt::format("{}'{}' using 1:2 with linespoints title '{} {}'", lines ? ", " : "",
                          data, run_label(run), run.id.substr(0, 6));
    ++lines;
  }
  if (lines == 0) return "<p>No training losses recorded yet.</p>";
  return gnuplot_svg(script, work, "loss");
}

// copy.psnr against modify.fd_gain, each run labelled, with the Pareto front.
std::string tradeoff_plot(const std::vector<RunRow>& runs, const SweepAnalysis& analysis,
                          const std::string& work) {
  std::string points, front;
  std::vector<std::pair<double, double>> front_points;
  for (const RunRow& run : runs) {
    auto psnr = run.metrics.find("copy.psnr");
    auto gain = run.metrics.find("modify.fd_gain");
    if (run.status != "done" || psnr == run.metrics.end() || gain == run.metrics.end()) continue;
    points += fmt::format("{} {} \"{}\"\n", psnr->second, gain->second, run_label(run));
    if (std::find(analysis.front.begin(), analysis.front.end(), run.id) != analysis.front.end()) {
      front_points.emplace_back(psnr->second, gain->second);
    }
  }
  if (points.empty()) return "<p>No run has both copy.psnr and modify.fd_gain yet.</p>";
  std::sort(front_points.begin(), front_points.end());
  for (const auto& [x, y] : front_points) front += fmt::format("{} {}\n", x, y);
  write_file_atomic(work + "/tradeoff.dat", points);
  write_file_atomic(work + "/front.dat", front);
  std::string script = fmt::format(
      "set xlabel 'copy.psnr (dB): copies its class better ->'\n"
      "set ylabel 'modify.fd_gain: pulls foreign pictures toward the class ->'\n"
      "set grid\nset key bottom left\nset offsets graph 0.08, graph 0.25, graph 0.1, graph 0.1\n"
      "plot '{0}/front.dat' using 1:2 with lines lw 2 lc rgb '#cc6600' title 'Pareto front', "
      "'{0}/tradeoff.dat' using 1:2 with points pt 7 ps 1.3 lc rgb '#1f5fa8' notitle, "
      "'' using 1:2:3 with labels offset char 1,0.8 left font 'sans,9' notitle",
      work);
  return gnuplot_svg(script, work, "tradeoff");
}

// Point-cloud sweeps: the angles and fve of each run beside the PCA
// references, and each run's figure (written by its evaluate stage).
std::string pca_section(const std::vector<RunRow>& runs, const std::vector<std::string>& varied,
                        const std::string& root) {
  const std::vector<std::pair<std::string, std::string>> all_columns = {
      {"pca.angle", "angle to PC1 (degrees)"},
      {"pca.fve", "fve of the net"},
      {"pca.fve_pc1", "fve of PC1"},
      {"pca.fve_pck", "fve of the top k PCs"},
      {"pca.fve_curve", "fve of the true curve"},
      {"pca.spearman", "|Spearman| code vs t"}};
  // Columns no run has are left out, and the top-k share when every k is 1.
  std::vector<std::pair<std::string, std::string>> columns;
  for (const auto& column : all_columns) {
    bool shown = std::any_of(runs.begin(), runs.end(), [&](const RunRow& run) {
      auto found = run.metrics.find(column.first);
      if (found == run.metrics.end()) return false;
      if (column.first != "pca.fve_pck") return true;
      auto pc1 = run.metrics.find("pca.fve_pc1");
      return pc1 == run.metrics.end() || pc1->second != found->second;
    });
    if (shown) columns.push_back(column);
  }
  std::string html =
      "<h2>Principal components</h2>\n<p>Measured in the net's input space (after "
      "<code>model.standardize</code>). A linear net's angle is the largest principal angle "
      "between its decoder's span and the top components; the ideal curve moves each point to "
      "the nearest point of the noiseless shape.</p>\n<div class=\"wide\"><table "
      "class=\"sortable\"><thead><tr><th>run</th>";
  for (const std::string& key : varied) html += "<th>" + html_escape(key) + "</th>";
  for (const auto& column : columns) html += "<th>" + html_escape(column.second) + "</th>";
  html += "<th>note</th></tr></thead><tbody>\n";
  std::string figures;
  for (const RunRow& run : runs) {
    html += fmt::format("<tr><td><a href=\"#run-{0}\">{0}</a></td>", run.id);
    for (const std::string& key : varied) {
      auto found = run.params.find(key);
      html += "<td>" + html_escape(found != run.params.end() ? found->second : "") + "</td>";
    }
    for (const auto& column : columns) {
      auto found = run.metrics.find(column.first);
      html += found != run.metrics.end()
                  ? fmt::format("<td data-v=\"{}\">{}</td>", found->second, number(found->second))
                  : std::string("<td></td>");
    }
    std::string note = run.status != "done" ? run.status : "";
    auto closed = run.metrics.find("pca.closed");
    if (closed != run.metrics.end() && closed->second > 0) {
      note = "closed curve: a one-unit bottleneck must tear it; not a principal curve";
    }
    html += "<td>" + html_escape(note) + "</td></tr>\n";
    std::string svg = root + "/" + run.id + "/images/cloud.svg";
    if (fs::exists(svg)) figures += "<figure>" + read_file(svg) + "</figure>";
  }
  html += "</tbody></table></div>\n";
  if (!figures.empty()) {
    html +=
        "<p>Each run: the points (grey), the first principal component (dashed blue) and the "
        "net's reconstruction of every point in the order of its bottleneck value (red).</p>\n"
        "<div class=\"grids\">" +
        figures + "</div>\n";
  }
  return html;
}

// Each headline metric against the first hidden width (log scale), one line
// per depth; or against depth when the width does not vary.
std::string metric_plots(const std::vector<RunRow>& runs, const std::string& work) {
  // Only metrics some run has: gnuplot stops at a panel with no points.
  std::vector<std::string> metrics;
  for (const char* name : {"copy.psnr", "copy.efficiency", "modify.fd_gain", "modify.change",
                           "modify.pull", "modify.selectivity"}) {
    bool present = std::any_of(runs.begin(), runs.end(), [&](const RunRow& run) {
      return run.status == "done" && run.metrics.count(name) != 0;
    });
    if (present) metrics.push_back(name);
  }
  std::set<std::string> widths, depths;
  for (const RunRow& run : runs) {
    if (run.status != "done") continue;
    widths.insert(run.params.count("model.width") ? run.params.at("model.width") : "");
    depths.insert(run.params.count("model.depth") ? run.params.at("model.depth") : "");
  }
  bool by_width = widths.size() > 1;
  if ((!by_width && depths.size() < 2) || metrics.empty()) return "";
  std::string x_key = by_width ? "model.width" : "model.depth";
  std::string group_key = by_width ? "model.depth" : "model.width";

  // One data file per group, rows sorted by x: x then every metric.
  std::map<std::string, std::map<double, std::string>> groups;
  for (const RunRow& run : runs) {
    if (run.status != "done" || run.params.count(x_key) == 0) continue;
    std::string row;
    for (const std::string& m : metrics) {
      auto found = run.metrics.find(m);
      row += found != run.metrics.end() ? fmt::format(" {}", found->second) : " NaN";
    }
    double x = std::atof(run.params.at(x_key).c_str());
    groups[run.params.count(group_key) ? run.params.at(group_key) : ""][x] = row;
  }
  std::string script = fmt::format(
      "set multiplot layout 2,3\nset grid\nset key top left font 'sans,8'\nset xlabel '{}'\n{}",
      x_key, by_width ? "set logscale x 2\n" : "set xtics 1\n");
  for (std::size_t m = 0; m < metrics.size(); ++m) {
    script += fmt::format("set title '{}'\nplot ", metrics[m]);
    std::size_t g = 0;
    for (const auto& [group, rows] : groups) {
      std::string data = fmt::format("{}/group-{}.dat", work, g);
      if (m == 0) {
        std::string text;
        for (const auto& [x, row] : rows) text += fmt::format("{}{}\n", x, row);
        write_file_atomic(data, text);
      }
      script += fmt::format("{}'{}' using 1:{} with linespoints pt 7 title '{} {}'", g ? ", " : "",
                            data, m + 2, group_key, group);
      ++g;
    }
    script += "\n";
  }
  std::string svg = gnuplot_svg(script + "unset multiplot", work, "metrics", "900,560");
  if (svg.rfind("<svg", 0) != 0) return "";  // the plots above already said what is missing
  return "<h2>Metrics against " + x_key + "</h2>\n" + svg;
}

std::string correlation_text(const SweepAnalysis& analysis) {
  if (analysis.correlations.empty()) {
    return "<p>Rank correlations need at least three finished runs.</p>";
  }
  std::string html =
      "<table><thead><tr><th>Spearman "
      "correlation</th><th>rho</th><th>runs</th></tr></thead><tbody>";
  for (const Metric& m : analysis.correlations) {
    std::string pair = m.name.substr(std::string("spearman.").size());
    std::size_t split = pair.find(".", pair.find('.') + 1);
    html += fmt::format("<tr><td>{} vs {}</td><td>{:+.3f}</td><td>{}</td></tr>",
                        html_escape(pair.substr(0, split)), html_escape(pair.substr(split + 1)),
                        m.value, m.step);
  }
  return html + "</tbody></table>\n";
}

// A PNG inline, shown at twice its size with sharp pixels.
std::string embedded_image(const std::string& path, const std::string& alt) {
  if (!fs::exists(path)) return "";
  std::string png = read_file(path);
  unsigned width = 0;
  if (png.size() >= 24) {
    width = (uint8_t(png[16]) << 24) | (uint8_t(png[17]) << 16) | (uint8_t(png[18]) << 8) |
            uint8_t(png[19]);
  }
  return fmt::format("<img alt=\"{}\" width=\"{}\" src=\"data:image/png;base64,{}\">",
                     html_escape(alt), 2 * width, base64(png));
}

std::string status_summary(const std::vector<RunRow>& runs) {
  std::map<std::string, int> counts;
  for (const RunRow& run : runs) ++counts[run.status];
  std::string text;
  for (const auto& [status, count] : counts) {
    text += fmt::format("{}{} {}", text.empty() ? "" : ", ", count, status);
  }
  return text;
}

std::string table(const std::vector<RunRow>& runs, const std::vector<std::string>& varied,
                  const std::vector<std::string>& metrics) {
  std::string html =
      "<div class=\"wide\"><table class=\"sortable\"><thead><tr><th>run</th><th>status</th>";
  for (const std::string& key : varied) html += "<th>" + html_escape(key) + "</th>";
  for (const std::string& key : metrics) html += "<th>" + html_escape(key) + "</th>";
  html += "<th>seconds</th></tr></thead><tbody>\n";
  for (const RunRow& run : runs) {
    html += fmt::format("<tr><td><a href=\"#run-{0}\">{0}</a></td><td class=\"{1}\">{1}</td>",
                        run.id, run.status);
    for (const std::string& key : varied) {
      auto found = run.params.find(key);
      html += "<td>" + html_escape(found != run.params.end() ? found->second : "") + "</td>";
    }
    for (const std::string& key : metrics) {
      auto found = run.metrics.find(key);
      html += found != run.metrics.end()
                  ? fmt::format("<td data-v=\"{}\">{}</td>", found->second, number(found->second))
                  : std::string("<td></td>");
    }
    html += fmt::format("<td data-v=\"{0}\">{0:.1f}</td></tr>\n", run.seconds);
  }
  return html + "</tbody></table></div>\n";
}

std::string run_section(Store& store, const RunRow& run, const std::string& root) {
  std::string html = fmt::format("<section id=\"run-{0}\"><h3>{1} <small>{0}, {2}</small></h3>\n",
                                 run.id, html_escape(run_label(run)), run.status);
  if (!run.error.empty()) html += "<p class=\"error\">" + html_escape(run.error) + "</p>\n";
  std::string stages;
  for (const StageRow& s : store.stages(run.id)) {
    stages +=
        fmt::format("{}{} {} ({:.1f} s)", stages.empty() ? "" : "; ", s.stage, s.status, s.seconds);
  }
  if (!stages.empty()) html += "<p>Stages: " + html_escape(stages) + "</p>\n";
  std::string copy = embedded_image(root + "/" + run.id + "/images/copy.png", "copies");
  std::string modify = embedded_image(root + "/" + run.id + "/images/modify.png", "modifications");
  std::string user = embedded_image(root + "/" + run.id + "/images/user.png", "your pictures");
  if (!copy.empty() || !modify.empty()) {
    html += "<div class=\"grids\">";
    if (!copy.empty()) {
      html += "<figure>" + copy +
              "<figcaption>Test pictures of the class (odd rows) and the net's copies "
              "(even rows)</figcaption></figure>";
    }
    if (!modify.empty()) {
      html += "<figure>" + modify +
              "<figcaption>Foreign pictures, then after 1 step, then after the last "
              "step</figcaption></figure>";
    }
    if (!user.empty()) {
      html += "<figure>" + user +
              "<figcaption>Your pictures, then after 1 step, then after the last "
              "step</figcaption></figure>";
    }
    html += "</div>\n";
  }
  html += "<details><summary>config</summary><pre>" + html_escape(store.run_config(run.id)) +
          "</pre></details></section>\n";
  return html;
}

const char* kStyle = R"css(
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px}
th{background:#f2f2f2;cursor:pointer}td{text-align:right}td:first-child,td:nth-child(2){text-align:left}
.failed,.error{color:#b00}.interrupted,.running,.pending{color:#a60}.done{color:#070}
.banner{background:#fff4d6;border:1px solid #e0b44c;padding:.5em 1em}
.grids{display:flex;gap:1.5em;flex-wrap:wrap}figure{margin:0}img{image-rendering:pixelated}
section{border-top:1px solid #ddd;margin-top:1.5em}pre{background:#f7f7f7;padding:.5em}
.wide{overflow-x:auto}svg{max-width:100%;height:auto}
)css";

// Sorts a table by the clicked column (numbers by data-v, else text), and
// records on <body> how many pictures decoded (read by the browser test).
const char* kScript = R"js(
window.addEventListener('load', function () {
  var images = document.images, broken = 0;
  for (var i = 0; i < images.length; i++) {
    if (!images[i].complete || images[i].naturalWidth === 0) broken++;
  }
  document.body.setAttribute('data-images', images.length + ' images, ' + broken + ' broken');
  document.body.setAttribute('data-load-ms', Math.round(performance.now()));
});
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var up = th.dataset.dir !== 'up';
    th.dataset.dir = up ? 'up' : 'down';
    function key(r) { var c = r.cells[col]; return c.dataset.v !== undefined ? parseFloat(c.dataset.v) : c.textContent; }
    rows.sort(function (a, b) { var x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
)js";

}  // namespace

std::string runs_csv(const std::vector<RunRow>& runs) {
  std::set<std::string> params, metrics;
  for (const RunRow& run : runs) {
    for (const auto& item : run.params) params.insert(item.first);
    for (const auto& item : run.metrics) metrics.insert(item.first);
  }
  std::string csv = "run,status,seconds";
  for (const std::string& key : params) csv += "," + csv_field(key);
  for (const std::string& key : metrics) csv += "," + csv_field(key);
  csv += ",error\n";
  for (const RunRow& run : runs) {
    csv += fmt::format("{},{},{}", run.id, run.status, run.seconds);
    for (const std::string& key : params) {
      auto found = run.params.find(key);
      csv += "," + csv_field(found != run.params.end() ? found->second : "");
    }
    for (const std::string& key : metrics) {
      auto found = run.metrics.find(key);
      csv += found != run.metrics.end() ? fmt::format(",{}", found->second) : std::string(",");
    }
    csv += "," + csv_field(run.error) + "\n";
  }
  return csv;
}

ReportFiles write_report(Store& store, const std::string& root, const std::string& sweep) {
  std::vector<SweepRow> sweeps = store.sweeps();
  auto found = std::find_if(sweeps.begin(), sweeps.end(),
                            [&](const SweepRow& s) { return s.name == sweep; });
  if (found == sweeps.end()) {
    throw std::runtime_error(fmt::format(
        "no sweep named '{}' in {}; `pipeline status` lists the sweeps", sweep, store.path()));
  }
  std::vector<RunRow> runs = store.runs(sweep);
  std::string dir = root + "/sweeps/" + sweep;
  // Plot inputs go to a folder of this process's own, removed afterwards, so
  // two reports of one sweep at once do not trip over each other.
  std::string work = temporary_path(dir + "/plot");
  make_dirs(work);
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } cleanup{work};

  std::vector<std::string> metrics;
  for (const std::string& key : kTableMetrics) {
    for (const RunRow& run : runs) {
      if (run.metrics.count(key) != 0) {
        metrics.push_back(key);
        break;
      }
    }
  }
  int unfinished = 0;
  for (const RunRow& run : runs) unfinished += run.status != "done";

  std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::string html = fmt::format(
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}: pipeline "
      "report</title><style>{1}</style></head><body>\n<h1>Sweep {0}</h1>\n<p>{2}</p>\n"
      "<p>From <code>{3}</code>, {4} runs ({5}). Generated {6}.</p>\n",
      html_escape(sweep), kStyle, html_escape(found->description), html_escape(found->file),
      runs.size(), status_summary(runs), when);
  if (unfinished > 0) {
    html += fmt::format(
        "<p class=\"banner\">{} of {} runs are not done: this page shows the sweep as it stands. "
        "Run the experiment again to finish it, then <code>pipeline report {}</code>.</p>\n",
        unfinished, runs.size(), html_escape(sweep));
  }
  html += "<h2>Runs</h2>\n" + table(runs, varied_params(runs), metrics);
  html +=
      "<p>Click a column heading to sort. The metrics are defined in the README's Metrics "
      "section.</p>\n";
  SweepAnalysis analysis = analyse_sweep(runs);
  std::vector<std::tuple<std::string, std::string, double>> rows;
  for (const Metric& m : analysis.correlations) rows.emplace_back(m.name, "", m.value);
  for (const std::string& id : analysis.front) rows.emplace_back("pareto.copy_vs_fd_gain", id, 1.0);
  store.put_sweep_metrics(sweep, rows);
  auto any_has = [&](const std::string& metric) {
    return std::any_of(runs.begin(), runs.end(),
                       [&](const RunRow& run) { return run.metrics.count(metric) != 0; });
  };
  if (any_has("pca.fve")) html += pca_section(runs, varied_params(runs), root);
  if (any_has("copy.psnr")) {
    html += "<h2>Copy versus modify</h2>\n" + tradeoff_plot(runs, analysis, work) +
            correlation_text(analysis) +
            "<p>A negative correlation means the nets that copy their class best pull foreign "
            "pictures toward it least. Runs on the front are beaten by no other run on both.</p>\n";
    html += metric_plots(runs, work);
  }
  html += "<h2>Training loss</h2>\n" + loss_plot(store, runs, work) + "\n";
  html += "<h2>Each run</h2>\n";
  for (const RunRow& run : runs) html += run_section(store, run, root);
  html += fmt::format("<script>{}</script></body></html>\n", kScript);

  ReportFiles files{dir + "/report.html", dir + "/runs.csv"};
  fault_point("report");
  write_file_atomic(files.html, html);
  write_file_atomic(files.csv, runs_csv(runs));
  return files;
}

}  // namespace pl
