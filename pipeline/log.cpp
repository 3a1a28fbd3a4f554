#include "pipeline/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace pl {
namespace {

std::mutex g_mutex;
Level g_level = Level::kInfo;
std::FILE* g_file = nullptr;
std::string g_progress;
std::string g_tag;

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "DEBUG";
    case Level::kInfo:
      return "INFO ";
    case Level::kWarn:
      return "WARN ";
    case Level::kError:
      return "ERROR";
  }
  return "?";
}

// The time now in `format` (strftime), in UTC or local time.
std::string now_text(const char* format, bool utc) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (utc) {
    gmtime_r(&now, &tm);
  } else {
    localtime_r(&now, &tm);
  }
  char buffer[32];
  std::strftime(buffer, sizeof buffer, format, &tm);
  return buffer;
}

std::string timestamp() { return now_text("%H:%M:%S", false); }

bool stderr_is_terminal() {
  static const bool tty = isatty(STDERR_FILENO) != 0;
  return tty;
}

}  // namespace

std::string utc_now_text() { return now_text("%Y-%m-%dT%H:%M:%SZ", true); }

void set_log_level(Level level) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_level = level;
}

void set_log_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_file != nullptr) std::fclose(g_file);
  g_file = path.empty() ? nullptr : std::fopen(path.c_str(), "a");
}

void log_message(Level level, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (level < g_level) return;
  std::string line = fmt::format("{} {} {}{}\n", timestamp(), level_name(level), g_tag, message);

  // A progress line is redrawn after the message so it stays at the bottom.
  if (!g_progress.empty()) std::fputs("\r\033[K", stderr);
  std::fputs(line.c_str(), stderr);
  if (!g_progress.empty()) std::fputs(g_progress.c_str(), stderr);
  std::fflush(stderr);

  if (g_file != nullptr) {
    std::fputs(line.c_str(), g_file);
    std::fflush(g_file);
  }
}

void set_log_tag(const std::string& tag) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_tag = tag;
}

void set_progress_line(const std::string& line) {
  if (!stderr_is_terminal()) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_tag.empty()) return;
  g_progress = line;
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
}

void clear_progress_line() {
  if (!stderr_is_terminal()) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_progress.empty()) std::fputs("\r\033[K", stderr);
  g_progress.clear();
  std::fflush(stderr);
}

}  // namespace pl
