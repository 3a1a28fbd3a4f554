// The read-only commands: status, runs, show, report. Each returns the
// process exit status (0 ok, 2 bad input) and prints to stdout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pl {

struct RunsOptions {
  std::string sweep;  // empty: every run
  std::string where;  // filter expression (filter.h)
  std::string sort;   // a param, metric or run column
  bool descending = false;
  int64_t limit = 0;             // 0: no limit
  std::string format = "table";  // table, csv, json
};

int status_command(const std::string& root, const std::string& sweep);
int runs_command(const std::string& root, const RunsOptions& options);
int compare_command(const std::string& root, const std::vector<std::string>& runs);
int query_command(const std::string& root, const std::string& sql, const std::string& format);
int show_command(const std::string& root, const std::string& run);
// The experiment's stage graph as Graphviz DOT; stages are coloured by their
// state when the run database at `root` knows them.
int graph_command(const std::string& root, const std::string& file);

int report_command(const std::string& root, const std::string& sweep);

}  // namespace pl
