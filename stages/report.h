// report: one self-contained HTML page and a CSV per sweep, rebuilt from the
// run database and the run folders alone (no training, no LibTorch).
#pragma once

#include <string>

#include "pipeline/store.h"

namespace pl {

struct ReportFiles {
  std::string html;  // <root>/sweeps/<sweep>/report.html
  std::string csv;   // <root>/sweeps/<sweep>/runs.csv
};

// Writes both files atomically. Throws std::runtime_error when the sweep is
// unknown; a sweep with runs still pending or failed gives a page that says so.
ReportFiles write_report(Store& store, const std::string& root, const std::string& sweep);

// `text` with &, <, > and " written as HTML entities.
std::string html_escape(const std::string& text);

// The CSV of a sweep's runs: id, status, params, final metrics.
std::string runs_csv(const std::vector<RunRow>& runs);

}  // namespace pl
