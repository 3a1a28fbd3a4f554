// The `pipeline` command line.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <limits>

#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "pipeline/paths.h"
#include "pipeline/runner.h"
#include "pipeline/task.h"

int main(int argc, char** argv) {
  // Keep freed large blocks in the process: otherwise glibc returns every
  // step's activations to the kernel and faults them back in on the next.
  // No block is mapped on its own, and the heap is trimmed only when 2 GiB
  // lie free at its top: a 64 MiB threshold still trimmed the train stage of
  // 3072-4096-96 every step, a third of its speed lost to page faults.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());

  CLI::App app{"pipeline: tracked experiments on bottleneck autoencoders"};
  app.require_subcommand(1);
  std::string root;
  bool verbose = false;
  app.add_option("--root", root, "output root (default $PIPELINE_HOME, else ./runs)");
  app.add_flag("-v,--verbose", verbose, "log DEBUG detail");

  pl::RunOptions run;
  CLI::App* run_cmd = app.add_subcommand("run", "run (or resume) the sweep of an experiment file");
  run_cmd->add_option("file", run.file, "experiment YAML file")->required();
  run_cmd->add_option("--set", run.overrides, "override a config key: --set train.epochs=5");
  run_cmd->add_flag("--dry-run", run.dry_run, "print the runs and their ids, then exit");
  run_cmd->add_flag("--retry-failed", run.retry_failed, "run failed runs again");
  run_cmd->add_flag("--force", run.force, "allow a sweep larger than the size cap");
  run_cmd
      ->add_option("-j,--jobs", run.jobs,
                   "run up to N points side by side, the cores split between them")
      ->check(CLI::Range(1, 256));
  run_cmd->add_option("--executor", run.executor, "local (default) or slurm: a Slurm job array")
      ->check(CLI::IsMember({"local", "slurm"}));
  auto* partition = run_cmd->add_option("--partition", run.slurm.partition, "Slurm partition");
  auto* time = run_cmd->add_option("--time", run.slurm.time, "Slurm time limit per task");
  auto* cpus =
      run_cmd->add_option("--cpus-per-task", run.slurm.cpus_per_task, "Slurm CPUs per task")
          ->check(CLI::PositiveNumber);
  auto* gpus =
      run_cmd->add_option("--gpus-per-task", run.slurm.gpus_per_task, "Slurm GPUs per task")
          ->check(CLI::PositiveNumber);
  std::string task_dir;
  CLI::App* task_cmd =
      app.add_subcommand("task", "one Slurm array task (used by --executor slurm)");
  task_cmd->group("");  // hidden: the coordinator starts it
  task_cmd->add_option("run_dir", task_dir, "the run folder holding task.spec")->required();

  std::string sweep, format = "table", run_id, sql;
  std::vector<std::string> compared;
  pl::RunsOptions runs;
  CLI::App* status_cmd = app.add_subcommand("status", "progress of sweeps, per run and stage");
  status_cmd->add_option("sweep", sweep, "sweep name (default: every sweep)");
  CLI::App* runs_cmd = app.add_subcommand("runs", "list runs with params and final metrics");
  runs_cmd->add_option("--sweep", runs.sweep, "only this sweep's runs");
  runs_cmd->add_option("--where", runs.where,
                       "filter, e.g. \"model.width >= 1024 and copy.psnr > 20\"");
  runs_cmd->add_option("--sort", runs.sort, "a param, metric or run column to sort by");
  runs_cmd->add_flag("--desc", runs.descending, "sort in descending order");
  runs_cmd->add_option("--limit", runs.limit, "at most this many runs")
      ->check(CLI::NonNegativeNumber);
  runs_cmd->add_option("--format", runs.format, "table, csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  CLI::App* compare_cmd =
      app.add_subcommand("compare", "params that differ and metrics, side by side");
  compare_cmd->add_option("runs", compared, "run ids or unique prefixes")
      ->required()
      ->expected(2, -1);
  CLI::App* query_cmd = app.add_subcommand("query", "read-only SQL over the run database");
  query_cmd->add_option("sql", sql, "one SQL statement")->required();
  query_cmd->add_option("--format", format, "table, csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  CLI::App* export_cmd =
      app.add_subcommand("export", "every run of a sweep with params and metrics");
  export_cmd->add_option("sweep", sweep, "sweep name")->required();
  export_cmd->add_option("--format", format, "csv or json")->check(CLI::IsMember({"csv", "json"}));
  CLI::App* show_cmd = app.add_subcommand("show", "config, stages, metrics and files of one run");
  show_cmd->add_option("run", run_id, "run id or a unique prefix")->required();
  pl::ModifyOptions modify;
  CLI::App* modify_cmd = app.add_subcommand("modify", "iterate a trained net on your own picture");
  modify_cmd->add_option("run", modify.run, "run id or a unique prefix")->required();
  modify_cmd->add_option("--image", modify.image, "a PNG or JPEG picture")->required();
  modify_cmd->add_option("--steps", modify.steps, "iterations (default 20)")
      ->check(CLI::Range(1, 1000));
  modify_cmd->add_option("--fit", modify.fit, "crop (default) or letterbox")
      ->check(CLI::IsMember({"crop", "letterbox"}));
  modify_cmd->add_option("--out", modify.out, "the PNG strip to write")->required();
  std::string graph_file;
  CLI::App* graph_cmd = app.add_subcommand("graph", "the stage graph as Graphviz DOT");
  graph_cmd->add_option("file", graph_file, "experiment YAML file")->required();
  CLI::App* report_cmd = app.add_subcommand("report", "regenerate a sweep's report");
  report_cmd->add_option("sweep", sweep, "sweep name")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end well; any other usage mistake is status 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (verbose) pl::set_log_level(pl::Level::kDebug);
  run.root = root;
  std::string resolved = pl::resolve_root(root);

  if (*run_cmd && run.executor != "slurm" && (*partition || *time || *cpus || *gpus)) {
    pl::error("--partition, --time, --cpus-per-task and --gpus-per-task need --executor slurm");
    return 2;
  }
  if (*run_cmd && run.dry_run) return pl::dry_run(run);
  modify.root = root;
#ifdef PIPELINE_RUNNER
  if (*run_cmd) return pl::run_experiment(run);
  if (*modify_cmd) return pl::modify_command(modify);
  if (*task_cmd) return pl::task_command(task_dir);
#else
  if (*run_cmd || *modify_cmd || *task_cmd) return pl::exec_runner(argv);
#endif
  if (*status_cmd) return pl::status_command(resolved, sweep);
  if (*runs_cmd) return pl::runs_command(resolved, runs);
  if (*compare_cmd) return pl::compare_command(resolved, compared);
  if (*query_cmd) return pl::query_command(resolved, sql, format);
  if (*export_cmd) {
    pl::RunsOptions all;
    all.sweep = sweep;
    all.format = format == "table" ? "csv" : format;
    return pl::runs_command(resolved, all);
  }
  if (*show_cmd) return pl::show_command(resolved, run_id);
  if (*graph_cmd) return pl::graph_command(resolved, graph_file);
  if (*report_cmd) return pl::report_command(resolved, sweep);
  return 2;
}
