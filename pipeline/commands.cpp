#include "pipeline/commands.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "pipeline/config.h"
#include "pipeline/filter.h"
#include "pipeline/log.h"
#include "pipeline/runner.h"
#include "pipeline/schema.h"
#include "pipeline/store.h"
#include "stages/report.h"

namespace pl {
namespace {

const std::vector<std::string> kListedMetrics = {"copy.psnr", "copy.efficiency", "modify.fd_gain",
                                                 "modify.change", "modify.pull"};
// The same for runs on point clouds.
const std::vector<std::string> kListedPcaMetrics = {"pca.angle", "pca.fve", "pca.fve_pc1",
                                                    "pca.fve_curve", "pca.spearman"};

// Point-cloud columns when the listed runs are mostly point-cloud runs.
const std::vector<std::string>& listed_metrics(Store& store, const std::string& sweep) {
  std::string runs =
      sweep.empty() ? "SELECT id FROM runs" : "SELECT run FROM sweep_runs WHERE sweep = ?";
  std::vector<std::pair<bool, std::string>> binds;
  if (!sweep.empty()) binds.push_back({false, sweep});
  QueryResult counts = store.query(
      "SELECT (SELECT count(*) FROM final WHERE name = 'pca.fve' AND run IN (" + runs +
          ")), (SELECT count(*) FROM final WHERE name = 'copy.psnr' AND run IN (" + runs + "))",
      sweep.empty() ? binds : std::vector<std::pair<bool, std::string>>{binds[0], binds[0]});
  bool clouds = !counts.rows.empty() &&
                std::atoll(counts.rows[0][0].c_str()) > std::atoll(counts.rows[0][1].c_str());
  return clouds ? kListedPcaMetrics : kListedMetrics;
}

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

// Throws unless `sweep` is empty or a sweep of the store.
void require_sweep(Store& store, const std::string& sweep) {
  if (sweep.empty()) return;
  std::vector<std::string> names;
  for (const SweepRow& s : store.sweeps()) names.push_back(s.name);
  if (std::find(names.begin(), names.end(), sweep) != names.end()) return;
  std::string hint = suggest(sweep, names);
  throw std::runtime_error(
      fmt::format("no sweep named '{}' in {}{}; `pipeline status` lists the sweeps", sweep,
                  store.path(), hint.empty() ? "" : "; did you mean '" + hint + "'?"));
}

// The run whose id starts with `prefix`; an error lists the candidates when
// more than one does.
const RunRow& find_run(const std::vector<RunRow>& runs, const std::string& prefix) {
  std::vector<const RunRow*> matches;
  for (const RunRow& run : runs) {
    if (run.id.rfind(prefix, 0) == 0) matches.push_back(&run);
  }
  if (matches.empty()) {
    throw std::runtime_error(
        fmt::format("no run id starts with '{}'; `pipeline runs` lists them", prefix));
  }
  if (matches.size() > 1) {
    std::string ids;
    for (const RunRow* run : matches) ids += " " + run->id;
    throw std::runtime_error(
        fmt::format("run id prefix '{}' is ambiguous; give more of one of:{}", prefix, ids));
  }
  return *matches.front();
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

void print_dry_run(const Experiment& experiment) {
  fmt::print("sweep '{}' from {}: {} run{}\n", experiment.name, experiment.file,
             experiment.runs.size(), experiment.runs.size() == 1 ? "" : "s");
  for (const RunConfig& run : experiment.runs) {
    std::string varied;
    for (const std::string& key : experiment.varied) {
      varied += fmt::format("  {}={}", key, value_text(run.values().at(key)));
    }
    fmt::print("  {}  {}{}\n", run.id(), run.architecture(), varied);
  }
}

}  // namespace

int status_command(const std::string& root, const std::string& sweep) {
  return guarded([&] {
    auto store = open_store(root);
    std::vector<std::string> sweeps;
    for (const SweepRow& s : store->sweeps()) {
      if (sweep.empty() || s.name == sweep) sweeps.push_back(s.name);
    }
    if (!sweep.empty() && sweeps.empty()) {
      throw std::runtime_error(fmt::format(
          "no sweep named '{}' in {}; `pipeline status` lists them", sweep, store->path()));
    }
    // One query per sweep: this stays fast with thousands of runs.
    const std::string sql =
        "SELECT r.id, (SELECT value FROM params WHERE run = r.id AND key = 'model.architecture'), "
        "r.status, coalesce(r.host, ''), coalesce(r.pid, 0), "
        "coalesce((julianday('now') - julianday(r.heartbeat)) * 86400, 0), "
        "coalesce((SELECT stage || ' ' || status FROM stages WHERE run = r.id ORDER BY CASE stage "
        "WHEN 'train' THEN 1 WHEN 'evaluate' THEN 2 WHEN 'modify' THEN 3 ELSE 4 END DESC "
        "LIMIT 1), '-'), "
        "coalesce((SELECT step FROM final WHERE run = r.id AND name = 'train.loss'), 0), "
        "(SELECT value FROM params WHERE run = r.id AND key = 'train.epochs'), r.seconds "
        "FROM runs r JOIN sweep_runs s ON s.run = r.id WHERE s.sweep = ? ORDER BY s.position";
    bool has_slurm =
        !store->query("SELECT 1 FROM sqlite_master WHERE name = 'slurm_tasks'").rows.empty();
    for (const std::string& name : sweeps) {
      QueryResult result = store->query(sql, {{false, name}});
      // Runs sent to Slurm (--executor slurm): their job, task and its last state seen.
      std::map<std::string, std::string> slurm;
      if (has_slurm) {
        for (const auto& cell :
             store
                 ->query("SELECT run, job || '_' || task, state, reason FROM slurm_tasks WHERE run "
                         "IN (SELECT run FROM sweep_runs WHERE sweep = ?)",
                         {{false, name}})
                 .rows) {
          bool reason = !cell[3].empty() && cell[3] != "None";
          slurm[cell[0]] = cell[1] + " " + cell[2] + (reason ? " (" + cell[3] + ")" : "");
        }
      }
      std::vector<std::vector<std::string>> rows = {
          {"run", "model", "status", "stage", "epoch", "seconds"}};
      if (!slurm.empty()) rows[0].push_back("slurm");
      std::map<std::string, int> counts;
      for (const auto& cell : result.rows) {
        RunRow run;
        run.status = cell[2];
        run.host = cell[3];
        run.pid = std::atoll(cell[4].c_str());
        run.heartbeat_age = std::atof(cell[5].c_str());
        std::string status = shown_status(run);
        ++counts[status];
        rows.push_back({cell[0], cell[1], status, cell[6], cell[7] + "/" + cell[8],
                        fmt::format("{:.0f}", std::atof(cell[9].c_str()))});
        if (!slurm.empty()) rows.back().push_back(slurm.count(cell[0]) ? slurm[cell[0]] : "-");
      }
      fmt::print("sweep {}:\n", name);
      print_table(rows);
      std::string summary;
      for (const auto& [status, count] : counts) summary += fmt::format(", {} {}", count, status);
      fmt::print("{} runs{}\n\n", result.rows.size(), summary);
    }
    return 0;
  });
}

namespace {

const std::vector<std::string> kRunColumns = {"id",      "run",      "status", "seconds",
                                              "started", "finished", "error",  "host"};

// Resolves a name of the --where and --sort languages to SQL over `runs r`.
std::optional<std::string> resolve_name(Store& store, const std::string& name,
                                        std::vector<SqlValue>& binds) {
  if (std::find(kRunColumns.begin(), kRunColumns.end(), name) != kRunColumns.end()) {
    return "r." + std::string(name == "run" ? "id" : name);
  }
  auto exists = [&](const char* sql) { return !store.query(sql, {{false, name}}).rows.empty(); };
  if (exists("SELECT 1 FROM final WHERE name = ? LIMIT 1")) {
    binds.push_back({false, 0, name});
    return "(SELECT value FROM final f WHERE f.run = r.id AND f.name = ?)";
  }
  if (exists("SELECT 1 FROM params WHERE key = ? LIMIT 1")) {
    binds.push_back({false, 0, name});
    return "(SELECT coalesce(num, value) FROM params p WHERE p.run = r.id AND p.key = ?)";
  }
  return std::nullopt;
}

std::vector<std::pair<bool, std::string>> to_binds(const std::vector<SqlValue>& values) {
  std::vector<std::pair<bool, std::string>> binds;
  for (const SqlValue& v : values) binds.emplace_back(v.is_number, v.text);
  return binds;
}

std::string query_json(const QueryResult& result) {
  std::string out = "[";
  for (std::size_t r = 0; r < result.rows.size(); ++r) {
    out += r ? ",\n  {" : "\n  {";
    for (std::size_t c = 0; c < result.columns.size(); ++c) {
      char kind = result.kinds[r][c];
      std::string value = kind == '0'   ? "null"
                          : kind == 'n' ? result.rows[r][c]
                                        : json_string(result.rows[r][c]);
      out += (c ? ", " : "") + json_string(result.columns[c]) + ": " + value;
    }
    out += "}";
  }
  return out + "\n]\n";
}

std::string query_csv(const QueryResult& result) {
  auto field = [](const std::string& text) {
    if (text.find_first_of(",\"\n") == std::string::npos) return text;
    std::string out = "\"";
    for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  std::string out;
  for (std::size_t c = 0; c < result.columns.size(); ++c)
    out += (c ? "," : "") + field(result.columns[c]);
  out += "\n";
  for (const auto& row : result.rows) {
    for (std::size_t c = 0; c < row.size(); ++c) out += (c ? "," : "") + field(row[c]);
    out += "\n";
  }
  return out;
}

void print_result(const QueryResult& result, const std::string& format) {
  if (format == "csv") {
    fmt::print("{}", query_csv(result));
  } else if (format == "json") {
    fmt::print("{}", query_json(result));
  } else {
    std::vector<std::vector<std::string>> rows = {result.columns};
    for (const auto& row : result.rows) rows.push_back(row);
    print_table(rows);
  }
}

// Every known name, for suggestions after a typo.
std::vector<std::string> known_names(Store& store) {
  std::vector<std::string> names = kRunColumns;
  for (const std::string& n : store.metric_names()) names.push_back(n);
  for (const std::string& k : store.param_keys()) names.push_back(k);
  return names;
}

}  // namespace

int runs_command(const std::string& root, const RunsOptions& options) {
  return guarded([&] {
    auto store = open_store(root);
    require_sweep(*store, options.sweep);
    std::vector<SqlValue> binds;
    std::string from = "FROM runs r";
    if (!options.sweep.empty()) {
      from += " JOIN sweep_runs s ON s.run = r.id AND s.sweep = ?";
      binds.push_back({false, 0, options.sweep});
    }
    auto resolver = [&](const std::string& name, std::vector<SqlValue>& b) {
      return resolve_name(*store, name, b);
    };
    std::string where = "1";
    if (!options.where.empty()) {
      try {
        CompiledFilter filter = compile_filter(options.where, resolver);
        where = filter.sql;
        binds.insert(binds.end(), filter.binds.begin(), filter.binds.end());
      } catch (const FilterError& e) {
        // Suggestions need every name; gathered only when something is wrong.
        compile_filter(options.where, resolver, known_names(*store));
        throw;
      }
    }
    std::string order = options.sweep.empty() ? "r.created, r.id" : "s.position";
    if (!options.sort.empty()) {
      std::optional<std::string> key = resolve_name(*store, options.sort, binds);
      if (!key) {
        std::string hint = suggest(options.sort, known_names(*store));
        throw std::runtime_error(fmt::format("--sort: unknown name '{}'{}", options.sort,
                                             hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      }
      order = *key + (options.descending ? " DESC" : "") + ", r.id";
    }
    std::string select = "SELECT r.id AS run, r.status";
    if (options.format == "table") {
      // The columns a person scans; csv and json carry everything.
      select +=
          ", (SELECT value FROM params p WHERE p.run = r.id AND p.key = 'model.architecture') "
          "AS model, (SELECT value FROM params p WHERE p.run = r.id AND p.key = "
          "'train.epochs') AS epochs";
      for (const std::string& m : listed_metrics(*store, options.sweep)) {
        select += fmt::format(
            ", (SELECT printf('%.4g', value) FROM final f WHERE f.run = r.id AND f.name = '{0}') "
            "AS \"{0}\"",
            m);
      }
    }
    std::string sql = fmt::format("{} {} WHERE {} ORDER BY {}{}", select, from, where, order,
                                  options.limit > 0 ? fmt::format(" LIMIT {}", options.limit) : "");
    QueryResult result = store->query(sql, to_binds(binds));
    if (options.format == "table") {
      print_result(result, "table");
      return 0;
    }
    std::vector<RunRow> all = store->runs(options.sweep), chosen;
    for (const auto& row : result.rows) {
      auto found =
          std::find_if(all.begin(), all.end(), [&](const RunRow& r) { return r.id == row[0]; });
      if (found != all.end()) chosen.push_back(*found);
    }
    fmt::print("{}", options.format == "csv" ? runs_csv(chosen) : runs_json(chosen));
    return 0;
  });
}

int compare_command(const std::string& root, const std::vector<std::string>& prefixes) {
  return guarded([&] {
    auto store = open_store(root);
    std::vector<RunRow> all = store->runs(""), chosen;
    for (const std::string& prefix : prefixes) chosen.push_back(find_run(all, prefix));
    std::set<std::string> params, metrics;
    for (const RunRow& run : chosen) {
      for (const auto& p : run.params) params.insert(p.first);
      for (const auto& m : run.metrics) metrics.insert(m.first);
    }
    std::vector<std::vector<std::string>> rows = {{""}};
    for (const RunRow& run : chosen) rows[0].push_back(run.id);
    for (const std::string& key : params) {
      std::vector<std::string> row = {key};
      for (const RunRow& run : chosen) row.push_back(param(run, key));
      if (std::adjacent_find(row.begin() + 1, row.end(), std::not_equal_to<>()) != row.end()) {
        rows.push_back(row);  // only the params that differ
      }
    }
    rows.push_back({"status"});
    for (const RunRow& run : chosen) rows.back().push_back(run.status);
    for (const std::string& key : metrics) {
      std::vector<std::string> row = {key};
      for (const RunRow& run : chosen) row.push_back(metric(run, key));
      rows.push_back(row);
    }
    print_table(rows);
    return 0;
  });
}

int query_command(const std::string& root, const std::string& sql, const std::string& format) {
  return guarded([&] {
    auto store = open_store(root);
    print_result(store->query(sql), format);
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

int dry_run(const RunOptions& options) {
  LoadOptions load;
  load.overrides = options.overrides;
  if (options.force) load.max_points = kMaxForcedPoints;
  try {
    print_dry_run(load_experiment(options.file, load));
    return 0;
  } catch (const ConfigError& e) {
    error("{}", e.what());
    return 2;
  }
}

int exec_runner(char** argv) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::string runner = (self.parent_path() / "pipeline-run").string();
  execv(runner.c_str(), argv);
  error("cannot start {}: {}; it is built beside `pipeline` (tools/build.sh)", runner,
        std::strerror(errno));
  return 2;
}

int graph_command(const std::string& root, const std::string& file) {
  Experiment experiment;
  try {
    experiment = load_experiment(file);
  } catch (const ConfigError& e) {
    error("{}", e.what());
    return 2;
  }
  std::unique_ptr<Store> store;
  try {
    store = Store::open(root, true);
  } catch (const std::exception&) {
    // No database yet: the graph is drawn without states.
  }
  auto colour = [&](const std::string& run, const std::string& stage) {
    if (!store) return std::string("white");
    for (const StageRow& s : store->stages(run)) {
      if (s.stage != stage) continue;
      if (s.status == "done") return std::string("palegreen");
      if (s.status == "failed") return std::string("salmon");
      return std::string("khaki");
    }
    return std::string("white");
  };
  fmt::print(
      "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=filled, "
      "fontname=\"sans\"];\n",
      experiment.name);
  fmt::print("  report [label=\"report\\n{}\", fillcolor=lightblue];\n", experiment.name);
  std::set<std::string> data_nodes;
  for (const RunConfig& run : experiment.runs) {
    DataConfig data = run.data();
    std::string ingest = "ingest " + data.class_name + " " + std::to_string(data.train_limit);
    if (data_nodes.insert(ingest).second) {
      fmt::print("  \"{}\" [label=\"ingest\\n{} (class {})\", fillcolor=lightblue];\n", ingest,
                 data.source, data.class_name);
    }
    const std::string& id = run.id();
    fmt::print("  \"train {0}\" [label=\"train {0}\\n{1}\", fillcolor={2}];\n", id,
               run.architecture(), colour(id, "train"));
    for (const char* stage : {"evaluate", "modify"}) {
      fmt::print("  \"{0} {1}\" [label=\"{0}\\n{1}\", fillcolor={2}];\n", stage, id,
                 colour(id, stage));
      fmt::print("  \"train {0}\" -> \"{1} {0}\";\n  \"{1} {0}\" -> report;\n", id, stage);
    }
    fmt::print("  \"{}\" -> \"train {}\";\n", ingest, id);
  }
  fmt::print("}}\n");
  return 0;
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
