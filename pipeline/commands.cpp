#include "pipeline/commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "pipeline/log.h"
#include "pipeline/store.h"
#include "stages/report.h"

namespace pl {
namespace {

const std::vector<std::string> kListedMetrics = {"copy.psnr", "copy.pca_psnr", "copy.efficiency",
                                                 "modify.change", "modify.pull"};

std::unique_ptr<Store> open_store(const std::string& root) { return Store::open(root, true); }

std::string param(const RunRow& run, const std::string& key) {
  auto found = run.params.find(key);
  return found != run.params.end() ? found->second : "";
}

std::string metric(const RunRow& run, const std::string& key) {
  auto found = run.metrics.find(key);
  return found != run.metrics.end() ? fmt::format("{:.4g}", found->second) : "-";
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) line += fmt::format("{:<{}}  ", row[i], widths[i]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  }
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", c);
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string runs_json(const std::vector<RunRow>& runs) {
  std::string out = "[";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const RunRow& run = runs[i];
    out += fmt::format(
        "{}\n  {{\"run\": {}, \"status\": {}, \"seconds\": {}, \"error\": {}, \"params\": {{",
        i ? "," : "", json_string(run.id), json_string(run.status), run.seconds,
        run.error.empty() ? "null" : json_string(run.error));
    std::string sep;
    for (const auto& [key, value] : run.params) {
      out += sep + json_string(key) + ": " + json_string(value);
      sep = ", ";
    }
    out += "}, \"metrics\": {";
    sep.clear();
    for (const auto& [key, value] : run.metrics) {
      out += sep + json_string(key) + ": " + fmt::format("{}", value);
      sep = ", ";
    }
    out += "}}";
  }
  return out + "\n]\n";
}

template <typename F>
int guarded(F body) {
  try {
    return body();
  } catch (const std::exception& e) {
    error("{}", e.what());
    return 2;
  }
}

}  // namespace

int status_command(const std::string& root, const std::string& sweep) {
  return guarded([&] {
    auto store = open_store(root);
    std::vector<std::string> sweeps;
    if (!sweep.empty()) sweeps.push_back(sweep);
    for (const SweepRow& s : store->sweeps()) {
      if (sweep.empty()) sweeps.push_back(s.name);
    }
    for (const std::string& name : sweeps) {
      std::vector<RunRow> runs = store->runs(name);
      if (runs.empty())
        throw std::runtime_error(fmt::format("no sweep named '{}' in {}", name, store->path()));
      std::vector<std::vector<std::string>> rows = {
          {"run", "model", "status", "stage", "epoch", "seconds"}};
      std::map<std::string, int> counts;
      for (const RunRow& run : runs) {
        std::string status = shown_status(run);
        ++counts[status];
        std::string stage = "-";
        for (const StageRow& s : store->stages(run.id)) stage = s.stage + " " + s.status;
        auto losses = store->series(run.id, "train.loss");
        rows.push_back({run.id, param(run, "model.architecture"), status, stage,
                        fmt::format("{}/{}", losses.empty() ? 0 : losses.back().first,
                                    param(run, "train.epochs")),
                        fmt::format("{:.0f}", run.seconds)});
      }
      fmt::print("sweep {}:\n", name);
      print_table(rows);
      std::string summary;
      for (const auto& [status, count] : counts) summary += fmt::format(", {} {}", count, status);
      fmt::print("{} runs{}\n\n", runs.size(), summary);
    }
    return 0;
  });
}

int runs_command(const std::string& root, const std::string& sweep, const std::string& format) {
  return guarded([&] {
    auto store = open_store(root);
    std::vector<RunRow> runs = store->runs(sweep);
    if (!sweep.empty() && runs.empty()) {
      throw std::runtime_error(fmt::format("no sweep named '{}' in {}", sweep, store->path()));
    }
    if (format == "csv") {
      fmt::print("{}", runs_csv(runs));
      return 0;
    }
    if (format == "json") {
      fmt::print("{}", runs_json(runs));
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {{"run", "status", "model", "epochs", "lr"}};
    rows[0].insert(rows[0].end(), kListedMetrics.begin(), kListedMetrics.end());
    for (const RunRow& run : runs) {
      std::vector<std::string> row = {run.id, shown_status(run), param(run, "model.architecture"),
                                      param(run, "train.epochs"), param(run, "train.lr")};
      for (const std::string& key : kListedMetrics) row.push_back(metric(run, key));
      rows.push_back(row);
    }
    print_table(rows);
    return 0;
  });
}

int show_command(const std::string& root, const std::string& prefix) {
  return guarded([&] {
    auto store = open_store(root);
    std::vector<RunRow> matches;
    for (RunRow& run : store->runs("")) {
      if (run.id.rfind(prefix, 0) == 0) matches.push_back(std::move(run));
    }
    if (matches.empty())
      throw std::runtime_error(fmt::format("no run id starts with '{}'", prefix));
    if (matches.size() > 1) {
      std::string ids;
      for (const RunRow& run : matches) ids += " " + run.id;
      throw std::runtime_error(fmt::format("'{}' is ambiguous; it starts:{}", prefix, ids));
    }
    const RunRow& run = matches.front();
    fmt::print("run {}: {}{}\n\nconfig:\n", run.id, run.status,
               run.error.empty() ? "" : " (" + run.error + ")");
    fmt::print("{}\nstages:\n", store->run_config(run.id));
    for (const StageRow& s : store->stages(run.id)) {
      fmt::print("  {:<9} {:<12} {:8.1f} s  {}\n", s.stage, s.status, s.seconds, s.error);
    }
    fmt::print("\nfinal metrics:\n");
    for (const auto& [name, value] : run.metrics) fmt::print("  {:<22} {:.6g}\n", name, value);
    fmt::print("\nartifacts:\n");
    for (const ArtifactRow& a : store->artifacts(run.id)) {
      fmt::print("  {:<10} {}  ({} bytes, xxh3 {})\n", a.kind, a.path, a.bytes, a.checksum);
    }
    return 0;
  });
}

int report_command(const std::string& root, const std::string& sweep) {
  return guarded([&] {
    auto store = Store::open(root);
    ReportFiles files = write_report(*store, root, sweep);
    fmt::print("{}\n{}\n", files.html, files.csv);
    return 0;
  });
}

}  // namespace pl
