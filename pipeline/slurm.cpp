#include "pipeline/slurm.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "pipeline/journal.h"
#include "pipeline/log.h"
#include "pipeline/paths.h"
#include "pipeline/store.h"

namespace pl {
namespace {

const char* kStages[] = {"train", "evaluate", "modify"};

// A run that ends without finishing is submitted again; after this many
// such ends in a row without any progress it fails instead.
constexpr int kMaxLostInARow = 3;

// Runs a program (no shell) and returns its exit status (-1 when it could
// not start); stdout and stderr go to `output`.
int run_program(const std::vector<std::string>& args, std::string& output) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(pipe_fds[1], 1);
    dup2(pipe_fds[1], 2);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    std::string why = fmt::format("cannot run {}: {}\n", args[0], std::strerror(errno));
    ssize_t ignored = write(2, why.data(), why.size());
    (void)ignored;
    _exit(127);
  }
  close(pipe_fds[1]);
  output.clear();
  char buffer[4096];
  while (true) {
    ssize_t n = read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buffer, static_cast<std::size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string trimmed(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  std::size_t start = 0;
  while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
  return text.substr(start);
}

std::string shell_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string this_host() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

double poll_seconds() {
  const char* env = std::getenv("PIPELINE_SLURM_POLL");
  double seconds = env != nullptr ? std::atof(env) : 0;
  return seconds > 0 ? seconds : 5;
}

// One followed run.
struct Follow {
  const SlurmRun* run = nullptr;
  std::string dir;
  std::string job, task, state, reason;
  int64_t offset = 0;              // journal bytes read into the database
  int64_t progress_at_submit = 0;  // journal work lines when last submitted
  int64_t submissions = 0;
  int64_t lost = 0;  // ends without finishing in a row, without progress
  int absent = 0;    // polls in a row the task was not alive
  bool finished = false;
};

class Coordinator {
 public:
  Coordinator(Store& store, std::string root, std::string sweep, const SlurmOptions& options,
              std::string program)
      : store_(store),
        root_(std::move(root)),
        sweep_(std::move(sweep)),
        options_(options),
        program_(std::move(program)) {}

  SlurmResult run(const std::vector<SlurmRun>& runs, bool retry_failed,
                  const std::atomic<bool>& stop) {
    ensure_slurm_table(store_);
    std::map<std::string, SlurmTaskState> states;
    if (!squeue(states)) {
      throw std::runtime_error(
          "squeue did not answer; is Slurm installed here and SLURM_CONF set? (run without "
          "--executor slurm to train on this machine)");
    }
    follows_.reserve(runs.size());
    std::vector<Follow*> submit_now;
    for (const SlurmRun& run : runs) {
      follows_.push_back(load(run));
      Follow& f = follows_.back();
      read_journal_into_store(f);  // a task may have ended while no coordinator ran
      std::string status = store_.run_status(run.id);
      if (status == "done" && up_to_date(run)) {
        info("{}: done earlier, skipped", run.label);
        f.finished = true;
        continue;
      }
      if (status == "failed" && !retry_failed) {
        warn("{}: failed earlier, skipped (rerun with --retry-failed to try again)", run.label);
        ++result_.failed;
        f.finished = true;
        continue;
      }
      auto found = f.job.empty() ? states.end() : states.find(f.job + "_" + f.task);
      bool queued = found != states.end() && slurm_state_alive(found->second.state);
      if (queued || (!f.job.empty() && still_running_here(f))) {
        f.state = queued ? found->second.state : "COMPLETING";
        f.reason = queued ? found->second.reason : "";
        info("{}: following Slurm job {}_{} ({}), submitted earlier", run.label, f.job, f.task,
             f.state);
        save(f);
        continue;
      }
      if (!f.job.empty()) release(f);
      if (!store_.claim_run(run.id)) {
        info("{}: being run by another process, skipped", run.label);
        f.finished = true;
        continue;
      }
      submit_now.push_back(&f);
    }
    if (!submit_now.empty()) submit(submit_now);
    follow(stop);
    return result_;
  }

 private:
  Follow load(const SlurmRun& run) {
    Follow f;
    f.run = &run;
    f.dir = root_ + "/" + run.id;
    QueryResult row = store_.query(
        "SELECT job, task, state, journal_offset, progress_at_submit, submissions, lost "
        "FROM slurm_tasks WHERE run = ?",
        {{false, run.id}});
    if (!row.rows.empty()) {
      const auto& r = row.rows[0];
      f.job = r[0];
      f.task = r[1];
      f.state = r[2];
      f.offset = std::atoll(r[3].c_str());
      f.progress_at_submit = std::atoll(r[4].c_str());
      f.submissions = std::atoll(r[5].c_str());
      f.lost = std::atoll(r[6].c_str());
    }
    return f;
  }

  void save(const Follow& f) {
    store_.query(
        "INSERT INTO slurm_tasks (run, sweep, job, task, state, reason, journal_offset, "
        "progress_at_submit, submissions, lost, updated) VALUES (?,?,?,?,?,?,?,?,?,?,"
        "strftime('%Y-%m-%dT%H:%M:%SZ','now')) ON CONFLICT(run) DO UPDATE SET "
        "sweep=excluded.sweep, job=excluded.job, task=excluded.task, state=excluded.state, "
        "reason=excluded.reason, journal_offset=excluded.journal_offset, "
        "progress_at_submit=excluded.progress_at_submit, submissions=excluded.submissions, "
        "lost=excluded.lost, updated=excluded.updated",
        {{false, f.run->id},
         {false, sweep_},
         {false, f.job},
         {false, f.task},
         {false, f.state},
         {false, f.reason},
         {true, std::to_string(f.offset)},
         {true, std::to_string(f.progress_at_submit)},
         {true, std::to_string(f.submissions)},
         {true, std::to_string(f.lost)}});
  }

  bool up_to_date(const SlurmRun& run) {
    for (const char* stage : kStages) {
      auto key = run.keys.find(stage);
      if (key == run.keys.end() || !store_.stage_done(run.id, stage, key->second)) return false;
    }
    return true;
  }

  // A run left 'running' by its own Slurm task, which is gone, is free to be
  // submitted again (on another node its pid cannot be checked from here).
  void release(const Follow& f) {
    JournalSummary summary = summarize_journal(read_journal(f.dir + "/journal.jsonl"));
    if (summary.host.empty()) return;
    store_.query(
        "UPDATE runs SET status='interrupted' WHERE id=? AND status='running' AND host=? AND "
        "pid=?",
        {{false, f.run->id}, {false, summary.host}, {true, std::to_string(summary.pid)}});
  }

  // True when the last task of this submission is still a process on this
  // host (Slurm may list it as ended while it writes its checkpoint).
  bool still_running_here(const Follow& f) {
    JournalSummary summary = summarize_journal(read_journal(f.dir + "/journal.jsonl"));
    return summary.job == f.job && summary.task == f.task && summary.final_status.empty() &&
           summary.host == this_host() && summary.pid > 0 &&
           kill(static_cast<pid_t>(summary.pid), 0) == 0;
  }

  JournalSummary read_journal_into_store(Follow& f) {
    std::vector<JournalRecord> records = read_journal(f.dir + "/journal.jsonl");
    int64_t offset = ingest_journal(store_, f.run->id, records, f.offset);
    if (offset != f.offset) {
      f.offset = offset;
      save(f);
    }
    return summarize_journal(records);
  }

  // Every array task of this user that Slurm still knows, by "job_task".
  bool squeue(std::map<std::string, SlurmTaskState>& states) {
    std::string output;
    int status =
        run_program({"squeue", "--me", "-h", "-r", "-t", "all", "-o", "%F|%K|%T|%r"}, output);
    if (status != 0) {
      debug("squeue failed ({}): {}", status, trimmed(output));
      return false;
    }
    states.clear();
    for (SlurmTaskState& s : parse_squeue(output)) states[s.job + "_" + s.task] = s;
    return true;
  }

  // Slurm refuses arrays larger than its MaxArraySize (1001 by default):
  // longer lists go as several arrays.
  void submit(const std::vector<Follow*>& all) {
    constexpr std::size_t kMaxArray = 1000;
    for (std::size_t start = 0; start < all.size(); start += kMaxArray) {
      std::size_t end = std::min(all.size(), start + kMaxArray);
      submit_array(std::vector<Follow*>(all.begin() + static_cast<std::ptrdiff_t>(start),
                                        all.begin() + static_cast<std::ptrdiff_t>(end)));
    }
  }

  void submit_array(const std::vector<Follow*>& batch) {
    std::error_code ec;
    std::string cwd = std::filesystem::current_path().string();
    std::string abs_root = std::filesystem::absolute(root_).lexically_normal().string();
    std::string slurm_dir = abs_root + "/slurm";
    make_dirs(slurm_dir);
    std::string script_text =
        "#!/bin/bash\n"
        "# Written by `pipeline run --executor slurm`: array task i trains run i of the list.\n"
        "runs=(\n";
    for (Follow* f : batch) {
      const SlurmRun& run = *f->run;
      make_dirs(f->dir + "/images");
      TaskSpec spec;
      spec.run = run.id;
      spec.root = root_;
      spec.label = run.label;
      std::istringstream lines(run.config);
      for (std::string line; std::getline(lines, line);)
        if (!line.empty()) spec.config.push_back(line);
      for (const char* stage : kStages) {
        auto key = run.keys.find(stage);
        if (key != run.keys.end() && store_.stage_done(run.id, stage, key->second))
          spec.done[stage] = key->second;
      }
      write_file_atomic(f->dir + "/task.spec", format_task_spec(spec));
      script_text += "  " + shell_quoted(abs_root + "/" + run.id) + "\n";
    }
    script_text +=
        ")\nexec " + shell_quoted(program_) + " task \"${runs[$SLURM_ARRAY_TASK_ID]}\"\n";
    std::string script;
    for (int n = 1;; ++n) {
      script = fmt::format("{}/{}-{}.sh", slurm_dir, sweep_, n);
      if (!std::filesystem::exists(script, ec)) break;
    }
    write_file_atomic(script, script_text);

    std::vector<std::string> args = {"sbatch",
                                     "--parsable",
                                     "--job-name=pipeline-" + sweep_,
                                     fmt::format("--array=0-{}", batch.size() - 1),
                                     "--requeue",
                                     "--open-mode=append",
                                     "--output=" + slurm_dir + "/%A_%a.out",
                                     "--chdir=" + cwd};
    if (!options_.partition.empty()) args.push_back("--partition=" + options_.partition);
    if (!options_.time.empty()) args.push_back("--time=" + options_.time);
    if (options_.cpus_per_task > 0)
      args.push_back(fmt::format("--cpus-per-task={}", options_.cpus_per_task));
    if (options_.gpus_per_task > 0)
      args.push_back(fmt::format("--gpus-per-task={}", options_.gpus_per_task));
    args.push_back(script);
    std::string output;
    int status = run_program(args, output);
    std::string job = trimmed(output.substr(0, output.find(';')));
    bool numeric = !job.empty() && job.find_first_not_of("0123456789") == std::string::npos;
    if (status != 0 || !numeric) {
      std::string why = fmt::format("sbatch failed (exit status {}): {}", status, trimmed(output));
      for (Follow* f : batch) {
        store_.mark_finished(f->run->id, "interrupted", why);
        f->finished = true;
        ++result_.failed;
      }
      throw std::runtime_error(why);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      Follow& f = *batch[i];
      JournalSummary summary = summarize_journal(read_journal(f.dir + "/journal.jsonl"));
      f.job = job;
      f.task = std::to_string(i);
      f.state = "PENDING";
      f.reason.clear();
      f.absent = 0;
      f.progress_at_submit = summary.progress;
      ++f.submissions;
      save(f);
    }
    info("submitted {} run{} as Slurm job array {} ({}); output in {}/", batch.size(),
         batch.size() == 1 ? "" : "s", job, script, slurm_dir);
  }

  void follow(const std::atomic<bool>& stop) {
    double poll = poll_seconds();
    while (true) {
      int open = 0;
      for (const Follow& f : follows_) open += !f.finished;
      if (open == 0) return;
      for (int i = 0; i < static_cast<int>(poll * 10) && !stop.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (stop.load()) {
        std::set<std::string> jobs;
        for (const Follow& f : follows_)
          if (!f.finished && !f.job.empty()) jobs.insert(f.job);
        std::string list;
        for (const std::string& j : jobs) list += (list.empty() ? "" : " ") + j;
        warn(
            "stopped following; {} run{} queued or running on Slurm (job {}); run the same "
            "command again to follow them, or `scancel {}` to stop them",
            open, open == 1 ? " stays" : "s stay", list, list);
        result_.interrupted = true;
        return;
      }
      std::map<std::string, SlurmTaskState> states;
      if (!squeue(states)) {
        warn("squeue did not answer; trying again in {:.0f} s", poll);
        continue;
      }
      std::vector<Follow*> again;
      for (Follow& f : follows_) {
        if (f.finished) continue;
        if (check(f, states)) again.push_back(&f);
        save(f);
      }
      if (!again.empty()) submit(again);
    }
  }

  // Reads the run's journal and its task's state; true when the task ended
  // without finishing and the run is to be submitted again.
  bool check(Follow& f, const std::map<std::string, SlurmTaskState>& states) {
    const SlurmRun& run = *f.run;
    JournalSummary summary = read_journal_into_store(f);
    bool started = summary.attempts > 0 && summary.job == f.job && summary.task == f.task;
    auto found = states.find(f.job + "_" + f.task);
    bool alive = found != states.end() && slurm_state_alive(found->second.state);
    std::string state = found != states.end() ? found->second.state : "GONE";
    if (state != f.state) info("{}: Slurm job {}_{} {}", run.label, f.job, f.task, state);
    f.state = state;
    f.reason = found != states.end() ? found->second.reason : "";

    // The task's last line is its outcome: it only exits after writing it.
    if (started && (summary.final_status == "done" || summary.final_status == "failed")) {
      f.finished = true;
      if (summary.final_status == "done") {
        info("{}: done on Slurm (job {}_{})", run.label, f.job, f.task);
        f.state = "COMPLETED";
      } else {
        error("{}: failed on Slurm (job {}_{}): {}", run.label, f.job, f.task, summary.final_error);
        f.state = "FAILED";
        ++result_.failed;
      }
      return false;
    }
    if (alive) {
      f.absent = 0;
      store_.query(
          "UPDATE runs SET heartbeat=strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id=? AND "
          "status='running'",
          {{false, run.id}});
      return false;
    }
    // Gone from the queue without an outcome. On this host a task process
    // may still be writing its checkpoint: wait for it.
    if (started && still_running_here(f)) return false;
    if (++f.absent < 2) return false;  // seen twice, so a slow squeue is no reason
    f.lost = summary.progress > f.progress_at_submit ? 0 : f.lost + 1;
    if (f.lost >= kMaxLostInARow) {
      std::string why = fmt::format(
          "the Slurm task ended {} times in a row without progress (last job {}_{}, {}); see {} "
          "and {}",
          f.lost, f.job, f.task, state, f.dir + "/log.txt",
          fmt::format("{}/slurm/{}_{}.out", root_, f.job, f.task));
      error("{}: failed: {}", run.label, why);
      store_.mark_finished(run.id, "failed", why);
      f.finished = true;
      ++result_.failed;
      return false;
    }
    std::error_code ec;
    bool checkpoint = std::filesystem::exists(f.dir + "/checkpoint.h5", ec) ||
                      std::filesystem::exists(f.dir + "/checkpoint.h5.prev", ec);
    warn("{}: Slurm job {}_{} ended ({}{}) before the run finished; submitting it again{}",
         run.label, f.job, f.task, state,
         started ? (summary.final_status.empty() ? ", killed" : ", " + summary.final_status)
                 : ", never started",
         checkpoint ? ", to resume from its checkpoint" : "");
    release(f);
    store_.claim_run(run.id);
    return true;
  }

  Store& store_;
  std::string root_;
  std::string sweep_;
  SlurmOptions options_;
  std::string program_;
  std::vector<Follow> follows_;
  SlurmResult result_;
};

}  // namespace

void ensure_slurm_table(Store& store) {
  store.query(
      "CREATE TABLE IF NOT EXISTS slurm_tasks (run TEXT PRIMARY KEY, sweep TEXT, job TEXT, "
      "task TEXT, state TEXT, reason TEXT, journal_offset INTEGER DEFAULT 0, "
      "progress_at_submit INTEGER DEFAULT 0, submissions INTEGER DEFAULT 0, "
      "lost INTEGER DEFAULT 0, updated TEXT)");
}

std::vector<SlurmTaskState> parse_squeue(const std::string& text) {
  std::vector<SlurmTaskState> tasks;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    line = trimmed(line);
    if (line.empty()) continue;
    std::vector<std::string> cells;
    std::size_t start = 0;
    for (int i = 0; i < 3; ++i) {
      std::size_t bar = line.find('|', start);
      if (bar == std::string::npos) break;
      cells.push_back(line.substr(start, bar - start));
      start = bar + 1;
    }
    if (cells.size() != 3) continue;
    cells.push_back(line.substr(start));
    tasks.push_back({cells[0], cells[1], cells[2], cells[3]});
  }
  return tasks;
}

bool slurm_state_alive(const std::string& state) {
  static const std::set<std::string> ended = {
      "COMPLETED", "CANCELLED",     "FAILED",   "TIMEOUT", "PREEMPTED",   "NODE_FAIL",
      "BOOT_FAIL", "OUT_OF_MEMORY", "DEADLINE", "REVOKED", "SPECIAL_EXIT"};
  return !state.empty() && ended.count(state) == 0;
}

std::string format_task_spec(const TaskSpec& spec) {
  std::string text =
      "# The spec of one Slurm task, written by the coordinator (`pipeline run --executor "
      "slurm`)\n"
      "# and read by `pipeline-run task`: everything the task needs, without the run "
      "database.\n";
  text += "run: " + spec.run + "\n";
  text += "root: " + spec.root + "\n";
  text += "label: " + spec.label + "\n";
  for (const auto& [stage, key] : spec.done) text += "done: " + stage + " " + key + "\n";
  for (const std::string& line : spec.config) text += "config: " + line + "\n";
  return text;
}

TaskSpec parse_task_spec(const std::string& text, const std::string& file) {
  TaskSpec spec;
  std::istringstream lines(text);
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::size_t colon = line.find(": ");
    if (colon == std::string::npos) {
      throw std::runtime_error(fmt::format("{}:{}: not a task spec line: {}", file, number, line));
    }
    std::string key = line.substr(0, colon);
    std::string value = line.substr(colon + 2);
    if (key == "run") {
      spec.run = value;
    } else if (key == "root") {
      spec.root = value;
    } else if (key == "label") {
      spec.label = value;
    } else if (key == "done") {
      std::size_t space = value.find(' ');
      if (space == std::string::npos)
        throw std::runtime_error(fmt::format("{}:{}: expected 'done: STAGE KEY'", file, number));
      spec.done[value.substr(0, space)] = value.substr(space + 1);
    } else if (key == "config") {
      spec.config.push_back(value);
    } else {
      throw std::runtime_error(fmt::format("{}:{}: unknown key '{}'", file, number, key));
    }
  }
  if (spec.run.empty() || spec.root.empty() || spec.config.empty()) {
    throw std::runtime_error(
        fmt::format("{}: not a task spec (run, root or config missing)", file));
  }
  return spec;
}

SlurmResult run_on_slurm(Store& store, const std::string& root, const std::string& sweep,
                         const std::vector<SlurmRun>& runs, const SlurmOptions& options,
                         bool retry_failed, const std::string& program,
                         const std::atomic<bool>& stop) {
  Coordinator coordinator(store, root, sweep, options, program);
  return coordinator.run(runs, retry_failed, stop);
}

}  // namespace pl
