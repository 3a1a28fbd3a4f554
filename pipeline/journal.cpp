#include "pipeline/journal.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "pipeline/log.h"
#include "pipeline/store.h"

namespace pl {
namespace {

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void append_utf8(std::string& out, unsigned code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

// A reader of one flat JSON object: {"key": "text" | number | null, ...}.
class LineParser {
 public:
  explicit LineParser(const std::string& text) : text_(text) {}

  bool parse(JournalEntry& entry) {
    skip_space();
    if (!eat('{')) return false;
    skip_space();
    if (eat('}')) return at_end();
    while (true) {
      std::string key, value;
      skip_space();
      if (!string(key)) return false;
      skip_space();
      if (!eat(':')) return false;
      skip_space();
      if (peek() == '"') {
        if (!string(value)) return false;
      } else {
        std::size_t start = pos_;
        while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '}' &&
               !std::isspace(static_cast<unsigned char>(text_[pos_])))
          ++pos_;
        value = text_.substr(start, pos_ - start);
        if (value.empty()) return false;
        if (value == "null") value.clear();
      }
      entry.fields[key] = value;
      skip_space();
      if (eat(',')) continue;
      if (eat('}')) return at_end();
      return false;
    }
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool at_end() {
    skip_space();
    return pos_ == text_.size();
  }
  bool string(std::string& out) {
    if (!eat('"')) return false;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) return false;
      char e = text_[pos_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (pos_ + 4 > text_.size()) return false;
          char* end = nullptr;
          std::string hex = text_.substr(pos_, 4);
          unsigned code = static_cast<unsigned>(std::strtoul(hex.c_str(), &end, 16));
          if (end != hex.c_str() + 4) return false;
          pos_ += 4;
          append_utf8(out, code);
          break;
        }
        default:
          out += e;
      }
    }
    return false;
  }

  const std::string& text_;
  std::size_t pos_ = 0;
};

std::string number_text(double value) { return fmt::format("{:.17g}", value); }

}  // namespace

std::string JournalEntry::get(const std::string& key) const {
  auto found = fields.find(key);
  return found != fields.end() ? found->second : "";
}

double JournalEntry::number(const std::string& key) const {
  return std::strtod(get(key).c_str(), nullptr);
}

std::string journal_line(const std::vector<std::pair<std::string, std::string>>& fields,
                         const std::vector<std::string>& numbers) {
  std::string line = "{";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const auto& [key, value] = fields[i];
    bool number = false;
    for (const std::string& n : numbers) number = number || n == key;
    if (number && value.empty()) number = false;
    line += (i ? ", " : "") + quoted(key) + ": " + (number ? value : quoted(value));
  }
  return line + "}\n";
}

bool parse_journal_line(const std::string& line, JournalEntry& entry) {
  entry.fields.clear();
  return LineParser(line).parse(entry);
}

std::vector<JournalRecord> read_journal(const std::string& path) {
  std::vector<JournalRecord> records;
  std::ifstream in(path, std::ios::binary);
  if (!in) return records;
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) break;  // no line, or a torn one
    JournalRecord record;
    record.end = static_cast<int64_t>(end + 1);
    std::string line = text.substr(start, end - start);
    if (!line.empty()) {
      if (parse_journal_line(line, record.entry))
        records.push_back(std::move(record));
      else
        warn("{}: a line at byte {} is not a journal entry; skipped", path, start);
    }
    start = end + 1;
  }
  return records;
}

JournalSummary summarize_journal(const std::vector<JournalRecord>& records) {
  JournalSummary summary;
  for (const JournalRecord& record : records) {
    const JournalEntry& e = record.entry;
    std::string op = e.get("op");
    if (op == "attempt") {
      ++summary.attempts;
      summary.job = e.get("job");
      summary.task = e.get("task");
      summary.host = e.get("host");
      summary.pid = static_cast<int64_t>(e.number("pid"));
      summary.checkpoint_epoch = static_cast<int64_t>(e.number("checkpoint_epoch"));
      summary.final_status.clear();
      summary.final_error.clear();
    } else if (op == "finish") {
      summary.final_status = e.get("status");
      summary.final_error = e.get("error");
    } else if (op == "metric" || op == "artifact") {
      ++summary.progress;
    }
  }
  return summary;
}

int64_t ingest_journal(Store& store, const std::string& run,
                       const std::vector<JournalRecord>& records, int64_t offset) {
  std::vector<Metric> metrics;  // consecutive metric lines of one stage, written together
  std::string metrics_stage;
  auto flush = [&] {
    if (!metrics.empty()) store.put_metrics(run, metrics_stage, metrics);
    metrics.clear();
  };
  int64_t applied = offset;
  for (const JournalRecord& record : records) {
    if (record.end <= offset) continue;
    const JournalEntry& e = record.entry;
    std::string op = e.get("op");
    if (op == "metric") {
      if (e.get("stage") != metrics_stage) flush();
      metrics_stage = e.get("stage");
      metrics.push_back({e.get("name"), static_cast<int64_t>(e.number("step")), e.number("value")});
      applied = record.end;
      continue;
    }
    flush();
    if (op == "attempt") {
      store.query(
          "UPDATE runs SET status='running', started=coalesce(started, ?), heartbeat=?, host=?, "
          "pid=?, error=NULL WHERE id=?",
          {{false, utc_now_text()},
           {false, utc_now_text()},
           {false, e.get("host")},
           {true, e.get("pid")},
           {false, run}});
    } else if (op == "clear") {
      store.clear_metrics(run, e.get("stage"));
    } else if (op == "artifact") {
      store.put_artifact(run, {e.get("path"), e.get("kind"), e.get("checksum"),
                               static_cast<int64_t>(e.number("bytes"))});
    } else if (op == "remove") {
      store.remove_artifact(run, e.get("path"));
    } else if (op == "stage_started") {
      store.stage_started(run, e.get("stage"), e.get("key"));
    } else if (op == "stage_finished") {
      store.stage_finished(run, e.get("stage"), e.get("status"), 0, e.get("error"));
      store.query("UPDATE stages SET seconds=? WHERE run=? AND stage=?",
                  {{true, e.get("seconds")}, {false, run}, {false, e.get("stage")}});
    } else if (op == "finish") {
      store.mark_finished(run, e.get("status"), e.get("error"));
    }
    applied = record.end;
  }
  flush();
  return applied;
}

JournalRecorder::JournalRecorder(std::string path, std::map<std::string, std::string> done)
    : path_(std::move(path)), done_(std::move(done)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw std::runtime_error(
        fmt::format("{}: cannot open the journal: {}", path_, std::strerror(errno)));
  }
  // A task killed in the middle of a write leaves a torn line: cut it, so
  // the next line starts clean.
  std::vector<JournalRecord> records = read_journal(path_);
  int64_t size = ::lseek(fd_, 0, SEEK_END);
  int64_t complete = records.empty() ? 0 : records.back().end;
  if (size > complete) {
    std::string text;
    std::ifstream in(path_, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
    std::size_t last = text.rfind('\n');
    int64_t keep = last == std::string::npos ? 0 : static_cast<int64_t>(last + 1);
    if (keep < size) {
      warn("{}: cut a torn last line ({} bytes) left by a killed task", path_, size - keep);
      if (::ftruncate(fd_, keep) != 0) {
        throw std::runtime_error(fmt::format("{}: {}", path_, std::strerror(errno)));
      }
    }
  }
  ::lseek(fd_, 0, SEEK_END);
  for (const JournalRecord& record : records) {
    const JournalEntry& e = record.entry;
    std::string op = e.get("op");
    if (op == "artifact") {
      artifacts_[e.get("path")] = {e.get("path"), e.get("kind"), e.get("checksum"),
                                   static_cast<int64_t>(e.number("bytes"))};
    } else if (op == "remove") {
      artifacts_.erase(e.get("path"));
    } else if (op == "stage_started") {
      if (stage_key_[e.get("stage")] != e.get("key")) stage_seconds_[e.get("stage")] = 0;
      stage_key_[e.get("stage")] = e.get("key");
    } else if (op == "stage_finished") {
      stage_seconds_[e.get("stage")] = e.number("seconds");
      if (e.get("status") == "done")
        done_[e.get("stage")] = e.get("key");
      else if (done_[e.get("stage")] == e.get("key"))
        done_.erase(e.get("stage"));
    }
  }
}

JournalRecorder::~JournalRecorder() {
  if (fd_ >= 0) ::close(fd_);
}

void JournalRecorder::append(const std::string& lines) {
  std::size_t written = 0;
  while (written < lines.size()) {
    ssize_t n = ::write(fd_, lines.data() + written, lines.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(
          fmt::format("{}: cannot write the journal: {}", path_, std::strerror(errno)));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd_) != 0) {
    throw std::runtime_error(
        fmt::format("{}: cannot sync the journal: {}", path_, std::strerror(errno)));
  }
}

void JournalRecorder::attempt(const std::vector<std::pair<std::string, std::string>>& fields,
                              const std::vector<std::string>& numbers) {
  std::vector<std::pair<std::string, std::string>> all = {{"op", "attempt"},
                                                          {"time", utc_now_text()}};
  all.insert(all.end(), fields.begin(), fields.end());
  append(journal_line(all, numbers));
}

void JournalRecorder::put_metrics(const std::string&, const std::string& stage,
                                  const std::vector<Metric>& metrics) {
  std::string lines;
  for (const Metric& m : metrics) {
    lines += journal_line({{"op", "metric"},
                           {"stage", stage},
                           {"name", m.name},
                           {"step", std::to_string(m.step)},
                           {"value", number_text(m.value)}},
                          {"step", "value"});
  }
  append(lines);
}

void JournalRecorder::clear_metrics(const std::string&, const std::string& stage) {
  append(journal_line({{"op", "clear"}, {"stage", stage}}));
}

void JournalRecorder::put_artifact(const std::string&, const ArtifactRow& a) {
  artifacts_[a.path] = a;
  append(journal_line({{"op", "artifact"},
                       {"path", a.path},
                       {"kind", a.kind},
                       {"checksum", a.checksum},
                       {"bytes", std::to_string(a.bytes)}},
                      {"bytes"}));
}

// A rename is written as the facts it leaves: the file at `to`, none at
// `from` (so reading the lines twice changes nothing).
void JournalRecorder::move_artifact(const std::string& run, const std::string& from,
                                    const std::string& to) {
  auto found = artifacts_.find(from);
  if (found == artifacts_.end()) {
    remove_artifact(run, to);
    return;
  }
  ArtifactRow moved = found->second;
  moved.path = to;
  artifacts_.erase(found);
  artifacts_[to] = moved;
  append(journal_line({{"op", "artifact"},
                       {"path", to},
                       {"kind", moved.kind},
                       {"checksum", moved.checksum},
                       {"bytes", std::to_string(moved.bytes)}},
                      {"bytes"}) +
         journal_line({{"op", "remove"}, {"path", from}}));
}

void JournalRecorder::remove_artifact(const std::string&, const std::string& path) {
  artifacts_.erase(path);
  append(journal_line({{"op", "remove"}, {"path", path}}));
}

std::string JournalRecorder::artifact_checksum(const std::string&, const std::string& path) {
  auto found = artifacts_.find(path);
  return found != artifacts_.end() ? found->second.checksum : "";
}

bool JournalRecorder::stage_done(const std::string&, const std::string& stage,
                                 const std::string& key) {
  auto found = done_.find(stage);
  return found != done_.end() && found->second == key;
}

void JournalRecorder::stage_started(const std::string&, const std::string& stage,
                                    const std::string& key) {
  if (stage_key_[stage] != key) stage_seconds_[stage] = 0;
  stage_key_[stage] = key;
  append(journal_line({{"op", "stage_started"}, {"stage", stage}, {"key", key}}));
}

void JournalRecorder::stage_finished(const std::string&, const std::string& stage,
                                     const std::string& status, double seconds,
                                     const std::string& error) {
  stage_seconds_[stage] += seconds;
  if (status == "done") done_[stage] = stage_key_[stage];
  append(journal_line({{"op", "stage_finished"},
                       {"stage", stage},
                       {"key", stage_key_[stage]},
                       {"status", status},
                       {"seconds", number_text(stage_seconds_[stage])},
                       {"error", error}},
                      {"seconds"}));
}

void JournalRecorder::mark_finished(const std::string&, const std::string& status,
                                    const std::string& error) {
  append(journal_line({{"op", "finish"}, {"status", status}, {"error", error}}));
}

}  // namespace pl
