// The read-only commands: status, runs, show, report. Each returns the
// process exit status (0 ok, 2 bad input) and prints to stdout.
#pragma once

#include <string>

namespace pl {

int status_command(const std::string& root, const std::string& sweep);
int runs_command(const std::string& root, const std::string& sweep, const std::string& format);
int show_command(const std::string& root, const std::string& run);
int report_command(const std::string& root, const std::string& sweep);

}  // namespace pl
