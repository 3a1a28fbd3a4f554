#include "pipeline/store.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "../test_util.h"

namespace pl {
namespace {

TEST_CASE("a run's metrics are stored once per step and the last step is final") {
  testing::ScratchDir dir;
  auto store = Store::open(dir.path());
  store->put_run("r1", "config", {{"model.width", "1024"}, {"model.activation", "tanh"}});
  store->put_sweep({"s", "s.yaml", "", ""}, {"r1"});
  CHECK(store->run_status("r1") == "pending");

  store->put_metrics("r1", "train", {{"train.loss", 1, 0.5}, {"train.loss", 2, 0.25}});
  store->put_metrics("r1", "train", {{"train.loss", 2, 0.2}});  // a resumed epoch rewrites its row
  auto series = store->series("r1", "train.loss");
  REQUIRE(series.size() == 2);
  CHECK(series[1].second == doctest::Approx(0.2));

  std::vector<RunRow> runs = store->runs("s");
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].metrics.at("train.loss") == doctest::Approx(0.2));
  CHECK(runs[0].params.at("model.width") == "1024");
}

TEST_CASE("run and stage states move as the runner reports them") {
  testing::ScratchDir dir;
  auto store = Store::open(dir.path());
  store->put_run("r", "c", {});
  CHECK(store->claim_run("r"));
  CHECK(store->run_status("r") == "running");
  CHECK_FALSE(store->stage_done("r", "train", "k1"));
  store->stage_started("r", "train", "k1");
  store->stage_finished("r", "train", "done", 2.5, "");
  CHECK(store->stage_done("r", "train", "k1"));
  CHECK_FALSE(store->stage_done("r", "train", "k2"));  // another key: the stage must run again
  store->mark_finished("r", "failed", "loss became nan");
  std::vector<RunRow> runs = store->runs("");
  CHECK(runs[0].status == "failed");
  CHECK(runs[0].error == "loss became nan");
  CHECK(runs[0].seconds == doctest::Approx(2.5));
}

// Sets the process that holds run `id`, as another `pipeline run` would.
void set_holder(const std::string& db_path, const std::string& id, int64_t pid) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  std::string sql = "UPDATE runs SET status='running', pid=" + std::to_string(pid) +
                    ", heartbeat=strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id='" + id + "'";
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}

TEST_CASE("a run held by a live process is not claimed; one left by a dead process is") {
  testing::ScratchDir dir;
  auto store = Store::open(dir.path());
  store->put_run("r", "c", {});
  CHECK(store->claim_run("r"));
  set_holder(store->path(), "r", getppid());  // alive: the test's parent
  CHECK_FALSE(store->claim_run("r"));
  CHECK(shown_status(store->runs("")[0]) == "running");

  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);  // a pid that no longer runs
  set_holder(store->path(), "r", child);
  CHECK(shown_status(store->runs("")[0]) == "interrupted");
  CHECK(store->claim_run("r"));
  CHECK(store->runs("")[0].pid == getpid());
}

TEST_CASE("a sweep's run list is replaced when the experiment changes") {
  testing::ScratchDir dir;
  auto store = Store::open(dir.path());
  store->put_sweep({"s", "f", "", ""}, {"a", "b"});
  store->put_sweep({"s", "f", "", ""}, {"b", "c"});
  CHECK(store->sweep_run_ids("s") == std::vector<std::string>{"b", "c"});
}

TEST_CASE("opening a missing database read-only is an error that says what to do") {
  testing::ScratchDir dir;
  try {
    Store::open(dir / "nothing", true);
    FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("no run database here") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(dir / "nothing"));
}

}  // namespace
}  // namespace pl
