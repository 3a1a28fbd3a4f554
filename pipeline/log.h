// The one logger of the command-line program.
//
// Library code returns data and throws typed errors; only the program and the
// stage runner log. Messages go to stderr and, while a run is active, to that
// run's log.txt as well. Thread-safe.
#pragma once

#include <fmt/format.h>

#include <string>

namespace pl {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Messages below `level` are dropped. Default: kInfo.
void set_log_level(Level level);

// Also appends every message to `path` (empty string: stop). The file is
// opened in append mode so a resumed run keeps its earlier lines.
void set_log_file(const std::string& path);

void log_message(Level level, const std::string& message);

// The current time in UTC as ISO 8601 ("2026-12-04T21:40:00Z"), as the run
// database and the Slurm journal record it.
std::string utc_now_text();

// Prepends `tag` to every message ("[job 2] "), and with `tag` not empty
// stops drawing progress lines: several processes share the terminal.
void set_log_tag(const std::string& tag);

// Clears a progress line drawn on a terminal before a log line is printed.
void set_progress_line(const std::string& line);
void clear_progress_line();

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  log_message(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  log_message(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  log_message(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  log_message(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace pl
