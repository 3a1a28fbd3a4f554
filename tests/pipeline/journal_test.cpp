#include "pipeline/journal.h"

#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "../test_util.h"
#include "pipeline/paths.h"
#include "pipeline/slurm.h"
#include "pipeline/store.h"

namespace pl {
namespace {

// The database as the tests compare it: every row that ingesting writes.
std::string dump(Store& store) {
  std::string text;
  for (const char* sql :
       {"SELECT run, stage, name, step, printf('%.17g', value) FROM metrics ORDER BY 1, 2, 3, 4",
        "SELECT run, name, stage, step, printf('%.17g', value) FROM final ORDER BY 1, 2",
        "SELECT run, path, kind, checksum, bytes FROM artifacts ORDER BY 1, 2",
        "SELECT run, stage, key, status, seconds, error FROM stages ORDER BY 1, 2",
        "SELECT id, status, error, seconds FROM runs ORDER BY 1"}) {
    for (const auto& row : store.query(sql).rows) {
      for (const std::string& cell : row) text += cell + "|";
      text += "\n";
    }
  }
  return text;
}

TEST_CASE("a journal line keeps text and numbers exactly") {
  std::string line = journal_line({{"op", "metric"},
                                   {"name", "quote \" back \\ tab \t newline \n ü"},
                                   {"value", "0.10000000000000001"},
                                   {"empty", ""}},
                                  {"value", "empty"});
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);  // one line, whatever the text holds
  JournalEntry entry;
  REQUIRE(parse_journal_line(line.substr(0, line.size() - 1), entry));
  CHECK(entry.get("name") == "quote \" back \\ tab \t newline \n ü");
  CHECK(entry.number("value") == 0.1);
  CHECK(entry.get("empty").empty());
  CHECK(entry.get("absent").empty());

  for (const char* bad :
       {"", "{", "{\"a\": }", "{\"a\" 1}", "[1]", "{\"a\": 1} x", "{\"a\": \"x}"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_journal_line(bad, entry));
  }
}

TEST_CASE("a torn last line is left out when read and cut when the task starts again") {
  testing::ScratchDir dir;
  std::string path = dir / "journal.jsonl";
  {
    JournalRecorder journal(path, {});
    journal.put_metrics("r", "train", {{"train.loss", 1, 0.5}});
  }
  {
    std::ofstream(path, std::ios::app) << "{\"op\": \"metric\", \"stage\": \"tr";  // killed here
  }
  CHECK(read_journal(path).size() == 1);
  {
    JournalRecorder journal(path, {});
    journal.put_metrics("r", "train", {{"train.loss", 2, 0.25}});
  }
  std::vector<JournalRecord> records = read_journal(path);
  REQUIRE(records.size() == 2);
  CHECK(records[1].entry.number("step") == 2);
  CHECK(records[1].end == static_cast<int64_t>(read_file(path).size()));
}

TEST_CASE("a journal read into the store gives what the store itself records, however often") {
  testing::ScratchDir dir;
  std::string path = dir / "journal.jsonl";
  auto direct = Store::open(dir / "direct");
  auto ingested = Store::open(dir / "ingested");
  for (Store* store : {direct.get(), ingested.get()}) store->put_run("r", "config", {});
  direct->claim_run("r");
  ingested->claim_run("r");

  // The same calls, as a run's stages make them, to the store and to a journal.
  double nan = std::numeric_limits<double>::quiet_NaN();
  {
    JournalRecorder journal(path, {});
    for (RunRecorder* recorder :
         {static_cast<RunRecorder*>(direct.get()), static_cast<RunRecorder*>(&journal)}) {
      recorder->stage_started("r", "train", "k1");
      recorder->put_metrics("r", "train", {{"train.loss", 1, 0.3}, {"train.odd", 1, nan}});
      recorder->put_artifact("r", {"r/checkpoint.h5", "checkpoint", "c1", 10});
      recorder->move_artifact("r", "r/checkpoint.h5", "r/checkpoint.h5.prev");
      recorder->put_artifact("r", {"r/checkpoint.h5", "checkpoint", "c2", 11});
      recorder->put_metrics("r", "train", {{"train.loss", 2, 1.0 / 3}});
      recorder->remove_artifact("r", "r/checkpoint.h5.prev");
      recorder->stage_finished("r", "train", "done", 0.5, "");
      recorder->stage_started("r", "evaluate", "k2");
      recorder->clear_metrics("r", "evaluate");
      recorder->put_metrics("r", "evaluate", {{"copy.psnr", 0, 17.25}});
      recorder->stage_finished("r", "evaluate", "done", 0.25, "");
      recorder->mark_finished("r", "done", "");
    }
    CHECK(journal.artifact_checksum("r", "r/checkpoint.h5") == "c2");
    CHECK(journal.stage_done("r", "train", "k1"));
    CHECK_FALSE(journal.stage_done("r", "train", "k0"));
  }
  std::vector<JournalRecord> records = read_journal(path);
  int64_t end = ingest_journal(*ingested, "r", records, 0);
  CHECK(end == records.back().end);
  CHECK(dump(*ingested) == dump(*direct));

  // A coordinator killed before it saved its offset reads any tail again.
  for (const JournalRecord& record : records) {
    ingest_journal(*ingested, "r", records, record.end - 1);
    CHECK(dump(*ingested) == dump(*direct));
  }
  CHECK(ingest_journal(*ingested, "r", records, end) == end);

  // A task started again knows what the journal holds.
  JournalRecorder again(path, {});
  CHECK(again.artifact_checksum("r", "r/checkpoint.h5") == "c2");
  CHECK(again.artifact_checksum("r", "r/checkpoint.h5.prev").empty());
  CHECK(again.stage_done("r", "evaluate", "k2"));
}

TEST_CASE("the summary tells the last attempt and its outcome") {
  testing::ScratchDir dir;
  std::string path = dir / "journal.jsonl";
  {
    JournalRecorder journal(path, {});
    journal.attempt({{"job", "7"}, {"task", "0"}, {"host", "n1"}, {"pid", "12"}}, {"pid"});
    journal.put_metrics("r", "train", {{"train.loss", 1, 0.5}});
    journal.mark_finished("r", "interrupted", "stopped");
    journal.attempt({{"job", "9"}, {"task", "2"}, {"checkpoint_epoch", "1"}}, {"checkpoint_epoch"});
  }
  JournalSummary summary = summarize_journal(read_journal(path));
  CHECK(summary.attempts == 2);
  CHECK(summary.job == "9");
  CHECK(summary.task == "2");
  CHECK(summary.checkpoint_epoch == 1);
  CHECK(summary.final_status.empty());  // the second attempt has not ended
  CHECK(summary.progress == 1);
}

TEST_CASE("a task spec reads back as written; a broken one is refused with its line") {
  TaskSpec spec;
  spec.run = "abc123";
  spec.root = "runs";
  spec.label = "run 1/2 abc123";
  spec.config = {"data.class: deer", "model.hidden: [64, 32]", "modify.images: a: b"};
  spec.done = {{"train", "k1"}};
  TaskSpec back = parse_task_spec(format_task_spec(spec), "task.spec");
  CHECK(back.run == spec.run);
  CHECK(back.root == spec.root);
  CHECK(back.label == spec.label);
  CHECK(back.config == spec.config);
  CHECK(back.done == spec.done);
  CHECK_THROWS_WITH(parse_task_spec("run: x\nbogus line\n", "t.spec"),
                    doctest::Contains("t.spec:2"));
  CHECK_THROWS_WITH(parse_task_spec("run: x\n", "t.spec"), doctest::Contains("not a task spec"));
}

TEST_CASE("squeue's lines give each array task's state") {
  std::vector<SlurmTaskState> tasks =
      parse_squeue("12|0|RUNNING|None\n12|1|PENDING|Resources\n\n13|N/A|COMPLETED|None\nbad\n");
  REQUIRE(tasks.size() == 3);
  CHECK(tasks[1].job == "12");
  CHECK(tasks[1].task == "1");
  CHECK(tasks[1].state == "PENDING");
  CHECK(tasks[1].reason == "Resources");
  for (const char* alive : {"PENDING", "RUNNING", "COMPLETING", "REQUEUED", "SUSPENDED"})
    CHECK(slurm_state_alive(alive));
  for (const char* ended : {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "PREEMPTED", "NODE_FAIL",
                            "OUT_OF_MEMORY", ""})
    CHECK_FALSE(slurm_state_alive(ended));
}

}  // namespace
}  // namespace pl
