// Command-line tests: the real binary on the real data and on bad inputs.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <stb/stb_image.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <sstream>

#include "../test_util.h"
#include "pipeline/paths.h"
#include "pipeline/store.h"
#include "stages/image.h"

namespace pl {
namespace {
namespace fs = std::filesystem;

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr together
};

Result run(const std::string& args) {
  std::string command = std::string(PIPELINE_BINARY) + " " + args + " 2>&1";
  Result result;
  std::FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, got);
  int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string source(const std::string& path) {
  return std::string(PIPELINE_SOURCE_DIR) + "/" + path;
}

// The real data must be there in CI; elsewhere its tests are skipped with a note.
bool have_data() {
  std::string dir = testing::cifar_dir();
  if (!dir.empty()) {
    setenv("PIPELINE_CIFAR10", dir.c_str(), 1);  // for the commands this test starts
    return true;
  }
  if (std::getenv("CI") != nullptr)
    FAIL("CI must set PIPELINE_CIFAR10 to the CIFAR-10 binary folder");
  MESSAGE("PIPELINE_CIFAR10 not set: skipping the real-data command-line test");
  return false;
}

int64_t count_rows(const std::string& root, const std::string& sql) {
  std::string command = "sqlite3 '" + root + "/pipeline.db' \"" + sql + "\"";
  std::FILE* pipe = popen(command.c_str(), "r");
  char buffer[64] = {0};
  std::fgets(buffer, sizeof buffer, pipe);
  pclose(pipe);
  return std::atoll(buffer);
}

// Splits one CSV line, honouring quoted fields.
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      cells.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      cells.emplace_back();
    } else {
      cells.back() += c;
    }
  }
  return cells;
}

// Opens a report in headless Chromium: no console message, every picture
// decodes, and the screenshot is not blank. Chromium is required in CI.
void check_in_browser(const std::string& html, const std::string& scratch) {
  if (!fs::exists("/usr/bin/chromium")) {
    if (std::getenv("CI") != nullptr)
      FAIL("CI must install chromium (tools/install_deps.sh --dev)");
    MESSAGE("chromium not installed: the report's browser check is skipped");
    return;
  }
  std::string flags =
      "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--enable-logging=stderr --v=0 --virtual-time-budget=5000 --user-data-dir=" +
      scratch + "/chromium";
  std::string dom = scratch + "/dom.html", log = scratch + "/console.log";
  std::string shot = scratch + "/shot.png";
  std::system(
      ("/usr/bin/chromium " + flags + " --dump-dom file://" + html + " > " + dom + " 2> " + log)
          .c_str());
  std::system(("/usr/bin/chromium " + flags + " --window-size=1200,1600 --screenshot=" + shot +
               " file://" + html + " 2>> " + log)
                  .c_str());
  std::string page = read_file(dom);
  std::smatch images;
  REQUIRE(
      std::regex_search(page, images, std::regex("data-images=\"(\\d+) images, (\\d+) broken\"")));
  CHECK(std::stoi(images[1]) >= 4);
  CHECK(std::stoi(images[2]) == 0);
  std::string console = read_file(log);
  CHECK(console.find("CONSOLE") == std::string::npos);

  int w = 0, h = 0, c = 0;
  unsigned char* pixels = stbi_load(shot.c_str(), &w, &h, &c, 1);
  REQUIRE(pixels != nullptr);
  double sum = 0, squares = 0;
  for (int i = 0; i < w * h; ++i) {
    sum += pixels[i];
    squares += double(pixels[i]) * pixels[i];
  }
  stbi_image_free(pixels);
  double mean = sum / (w * h);
  CHECK(std::sqrt(squares / (w * h) - mean * mean) > 10.0);  // text, plots and pictures, not blank
}

TEST_CASE("quick.yaml runs end to end on the real data, and a rerun skips it") {
  if (!have_data()) return;
  testing::ScratchDir dir;
  std::string root = dir / "runs";
  Result first = run("--root " + root + " run " + source("experiments/quick.yaml"));
  INFO(first.output);
  REQUIRE(first.status == 0);

  auto store = Store::open(root, true);
  std::vector<RunRow> runs = store->runs("quick");
  REQUIRE(runs.size() == 2);
  for (const RunRow& r : runs) {
    CHECK(r.status == "done");
    CHECK(store->series(r.id, "train.loss").size() == 2);
    CHECK(r.metrics.count("copy.psnr") == 1);
    CHECK(r.metrics.at("copy.psnr") > 10.0);
    CHECK(r.metrics.count("copy.pca_mse") == 1);
    CHECK(r.metrics.count("copy.efficiency") == 1);
    CHECK(r.metrics.at("modify.change") > 0.0);
    CHECK(r.metrics.at("modify.pull") > 0.0);
    CHECK(r.params.at("model.bottleneck") == "16");
    CHECK(fs::file_size(root + "/" + r.id + "/checkpoint.h5") > 100000);
    CHECK(fs::exists(root + "/" + r.id + "/images/copy.png"));
    CHECK(fs::exists(root + "/" + r.id + "/images/modify.png"));
    CHECK(store->artifacts(r.id).size() == 3);
  }
  std::string html = read_file(root + "/sweeps/quick/report.html");
  CHECK(html.find("data:image/png;base64,") != std::string::npos);
  CHECK(html.find("<svg") != std::string::npos);
  std::string csv = read_file(root + "/sweeps/quick/runs.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);

  check_in_browser(root + "/sweeps/quick/report.html", dir.path());

  int64_t rows = count_rows(root, "SELECT count(*) FROM metrics");
  Result again = run("--root " + root + " run " + source("experiments/quick.yaml"));
  CHECK(again.status == 0);
  CHECK(again.output.find("done earlier, skipped") != std::string::npos);
  CHECK(count_rows(root, "SELECT count(*) FROM metrics") == rows);

  Result listed = run("--root " + root + " runs --sweep quick --format csv");
  CHECK(listed.status == 0);
  CHECK(listed.output.find(runs[0].id + ",done") != std::string::npos);
  // CSV read back equals the database's values; JSON holds every run.
  std::istringstream lines(listed.output);
  std::string header, line;
  std::getline(lines, header);
  std::vector<std::string> columns = split_csv(header);
  auto psnr_column = std::find(columns.begin(), columns.end(), "copy.psnr") - columns.begin();
  REQUIRE(psnr_column < static_cast<long>(columns.size()));
  int csv_rows = 0;
  while (std::getline(lines, line)) {
    std::vector<std::string> cells = split_csv(line);
    const RunRow& r = cells[0] == runs[0].id ? runs[0] : runs[1];
    CHECK(std::stod(cells[psnr_column]) ==
          doctest::Approx(r.metrics.at("copy.psnr")).epsilon(1e-12));
    ++csv_rows;
  }
  CHECK(csv_rows == 2);
  Result json = run("--root " + root + " runs --sweep quick --format json");
  CHECK(std::regex_search(json.output,
                          std::regex("\"run\": \"" + runs[1].id + "\", \"status\": \"done\"")));
  CHECK(std::count(json.output.begin(), json.output.end(), '{') ==
        2 * 3 + 0);  // run, params, metrics

  // Filters, sorting and the read-only query.
  Result filtered =
      run("--root " + root + " runs --where \"model.width >= 100 and copy.psnr > 0\" --format csv");
  CHECK(filtered.output.find(",3072-128-16,") != std::string::npos);
  CHECK(filtered.output.find(",3072-64-16,") == std::string::npos);
  Result bad_filter = run("--root " + root + " runs --where \"copy.psnr >\"");
  CHECK(bad_filter.status == 2);
  CHECK(bad_filter.output.find("column 12") != std::string::npos);
  std::string before = read_file(root + "/pipeline.db");
  Result write = run("--root " + root + " query \"DELETE FROM runs\"");
  CHECK(write.status == 2);
  CHECK(write.output.find("read-only") != std::string::npos);
  CHECK(count_rows(root, "SELECT count(*) FROM runs") == 2);
  Result ambiguous = run("--root " + root + " show \"\"");
  CHECK(ambiguous.status == 2);
  CHECK(ambiguous.output.find("ambiguous") != std::string::npos);

  Result status = run("--root " + root + " status quick");
  CHECK(status.output.find("2 runs, 2 done") != std::string::npos);
  Result shown = run("--root " + root + " show " + runs[0].id.substr(0, 5));
  CHECK(shown.status == 0);
  CHECK(shown.output.find("copy.psnr") != std::string::npos);
  Result report = run("--root " + root + " report quick");
  CHECK(report.status == 0);

  // A picture of the user's own through a trained net: a strip of 4 tiles.
  write_grid_png(dir / "mine.png", {Tile(3072, 0.5f)}, 1, 3);
  Result strip =
      run("--root " + root + " modify " + runs[0].id.substr(0, 6) + " --image " +
          (dir / "mine.png") + " --steps 3 --fit letterbox --out " + (dir / "strip.png"));
  INFO(strip.output);
  CHECK(strip.status == 0);
  std::string png = read_file(dir / "strip.png");
  REQUIRE(png.size() > 24);
  auto be32 = [&](std::size_t at) {
    return (uint8_t(png[at]) << 24) | (uint8_t(png[at + 1]) << 16) | (uint8_t(png[at + 2]) << 8) |
           uint8_t(png[at + 3]);
  };
  CHECK(be32(16) == 2 + 4 * (32 * 4 + 2));  // width: 4 tiles magnified 4 times
  Result bad = run("--root " + root + " modify " + runs[0].id + " --image " + (dir / "none.png") +
                   " --out " + (dir / "x.png"));
  CHECK(bad.status == 2);
  CHECK(bad.output.find("none.png: no such picture") != std::string::npos);
}

TEST_CASE("two runs of one sweep at once share the work and corrupt nothing") {
  if (!have_data()) return;
  testing::ScratchDir dir;
  std::string command = std::string(PIPELINE_BINARY) + " --root " + (dir / "runs") + " run " +
                        source("experiments/quick.yaml") + " 2>&1";
  std::FILE* first = popen(command.c_str(), "r");
  std::FILE* second = popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  for (std::FILE* pipe : {first, second}) {
    std::size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, got);
  }
  int status_first = pclose(first);
  int status_second = pclose(second);
  INFO(output);
  CHECK(WEXITSTATUS(status_first) == 0);
  CHECK(WEXITSTATUS(status_second) == 0);
  auto store = Store::open(dir / "runs", true);
  for (const RunRow& r : store->runs("quick")) CHECK(r.status == "done");
  CHECK(count_rows(dir / "runs", "SELECT count(*) FROM metrics WHERE name = 'train.loss'") == 4);
  CHECK(count_rows(dir / "runs", "SELECT count(*) FROM stages WHERE stage = 'train'") == 2);
}

TEST_CASE("usage mistakes and unknown sweeps exit with status 2") {
  testing::ScratchDir dir;
  CHECK(run("bogus").status == 2);
  CHECK(run("runs --limit abc").status == 2);
  CHECK(run("--help").status == 0);
  if (!have_data()) return;
  REQUIRE(run("--root " + (dir / "runs") + " run " + source("experiments/quick.yaml") +
              " --set train.epochs=1 --set modify.attractor_sample=0")
              .status == 0);
  Result missing = run("--root " + (dir / "runs") + " runs --sweep quik");
  CHECK(missing.status == 2);
  CHECK(missing.output.find("did you mean 'quick'?") != std::string::npos);
  CHECK(run("--root " + (dir / "runs") + " export nosuch").status == 2);

  // A measurement setting changed: the same runs, only their modify stage again.
  Result again = run("--root " + (dir / "runs") + " run " + source("experiments/quick.yaml") +
                     " --set train.epochs=1 --set modify.attractor_sample=0 --set modify.steps=3");
  INFO(again.output);
  CHECK(again.status == 0);
  CHECK(again.output.find("train: done earlier, skipped") != std::string::npos);
  CHECK(again.output.find("modify: started") != std::string::npos);
  CHECK(count_rows(dir / "runs",
                   "SELECT count(*) FROM final WHERE name = 'modify.change' AND step = 3") == 2);
}

TEST_CASE("--dry-run lists the points with their run ids and writes nothing") {
  testing::ScratchDir dir;
  Result result = run("--root " + (dir / "runs") + " run " +
                      source("experiments/width_sweep.yaml") + " --dry-run");
  CHECK(result.status == 0);
  CHECK(result.output.find("5 runs") != std::string::npos);
  CHECK(std::regex_search(result.output, std::regex("[0-9a-f]{12}  3072-4096-96")));
  CHECK_FALSE(fs::exists(dir / "runs"));

  Result graph =
      run("--root " + (dir / "runs") + " graph " + source("experiments/width_sweep.yaml"));
  CHECK(graph.status == 0);
  CHECK(graph.output.rfind("digraph \"width_sweep\"", 0) == 0);
  CHECK(std::count(graph.output.begin(), graph.output.end(), '>') == 5 * 5);  // 5 edges a run
}

// A folder of six CIFAR-10 files of the right size (sparse) but one.
std::string broken_data(const testing::ScratchDir& dir) {
  std::string data = dir / "data";
  fs::create_directories(data + "/truncated");
  fs::create_directories(data + "/python");
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
    testing::write_text(data + "/truncated/" + name, "");
    fs::resize_file(data + "/truncated/" + name, 30730000);
  }
  fs::copy(data + "/truncated", data + "/badlabel");
  fs::resize_file(data + "/truncated/data_batch_4.bin", 30000000);
  std::FILE* file = std::fopen((data + "/badlabel/data_batch_2.bin").c_str(), "r+b");
  std::fseek(file, 5 * 3073, SEEK_SET);
  std::fputc(12, file);
  std::fclose(file);
  testing::write_text(data + "/python/data_batch_1", "\x80\x02pickle");
  for (const char* name : {"sparse", "emptyfile", "toobig", "folderfile"}) {
    fs::create_directories(data + "/" + name);
    for (const char* file : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                             "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
      testing::write_text(data + "/" + name + "/" + file, "");
      fs::resize_file(data + "/" + name + "/" + file, 30730000);
    }
  }
  fs::resize_file(data + "/emptyfile/test_batch.bin", 0);
  fs::resize_file(data + "/toobig/data_batch_1.bin", 30733073);
  fs::remove(data + "/folderfile/data_batch_5.bin");
  fs::create_directories(data + "/folderfile/data_batch_5.bin");

  for (const char* name : {"pictures-empty", "pictures-gif", "pictures-huge"}) {
    fs::create_directories(data + "/" + name);
  }
  testing::write_text(data + "/pictures-empty/empty.png", "");
  testing::write_text(data + "/pictures-gif/a.png", "GIF89a......");
  testing::write_text(data + "/pictures-huge/huge.png",
                      std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16) +
                          std::string("\0\0\x2e\xe0\0\0\x2e\xe0\x08\x02\0\0\0", 13) +
                          std::string(4, '\0'));
  return data;
}

// Each file in tests/cases/ is a bad input: its "# exit:" and "# error:" lines
// say what the command must answer; nothing may be written to the store.
TEST_CASE("every bad-input case gives its error and exit status, and writes nothing") {
  testing::ScratchDir dir;
  std::string data = broken_data(dir);
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(source("tests/cases"))) {
    if (entry.path().extension() != ".yaml") continue;
    std::string text = read_file(entry.path().string());
    std::smatch exit_line, error_line;
    REQUIRE(std::regex_search(text, exit_line, std::regex("# exit: (\\d+)")));
    REQUIRE(std::regex_search(text, error_line, std::regex("# error: (.*)")));
    int expected_status = std::stoi(exit_line[1]);
    std::string expected_error = error_line[1];
    text = std::regex_replace(text, std::regex("@DATA@"), data);
    std::string file = dir / entry.path().filename().string();
    testing::write_text(file, text);

    std::string root = dir / ("runs-" + entry.path().stem().string());
    Result result = run("--root " + root + " run " + file);
    INFO(entry.path().filename().string() << ":\n" << result.output);
    CHECK(result.status == expected_status);
    CHECK(result.output.find(expected_error) != std::string::npos);
    CHECK_FALSE(fs::exists(root));
    ++cases;
  }
  CHECK(cases >= 25);
}

}  // namespace
}  // namespace pl

namespace pl {

TEST_CASE("the principal-component sweeps run end to end without CIFAR-10") {
  testing::ScratchDir dir;
  std::string root = dir / "runs";
  Result linear = run("--root " + root + " run " + source("experiments/pca_linear.yaml") +
                      " --set train.epochs=40 --set data.noise=0.05");
  INFO(linear.output);
  REQUIRE(linear.status == 0);
  CHECK(linear.output.find("modify: nothing to modify in a point cloud") != std::string::npos);
  Result runs = run("--root " + root + " runs --sweep pca_linear --where \"pca.angle < 1\"");
  INFO(runs.output);
  CHECK(runs.status == 0);
  // Three hidden widths, each a line within a degree of PC1.
  CHECK(std::count(runs.output.begin(), runs.output.end(), '\n') == 4);
  std::string html = read_file(root + "/sweeps/pca_linear/report.html");
  CHECK(html.find("<h2>Principal components</h2>") != std::string::npos);
  CHECK(html.find("angle to PC1 (degrees)") != std::string::npos);
  CHECK(html.find("<h2>Copy versus modify</h2>") == std::string::npos);
  std::size_t figures = 0;
  for (std::size_t at = html.find("<figure><svg"); at != std::string::npos;
       at = html.find("<figure><svg", at + 1))
    ++figures;
  CHECK(figures == 3);

  // A point-cloud net cannot modify a picture; it says so.
  Result ids = run("--root " + root + " query \"SELECT id FROM runs LIMIT 1\" --format csv");
  std::string id = ids.output.substr(ids.output.find('\n') + 1, 12);
  Result modify = run("--root " + root + " modify " + id + " --image " + source("README.md") +
                      " --out " + (dir / "m.png"));
  CHECK(modify.status == 2);
  CHECK(modify.output.find("trained on a point cloud") != std::string::npos);
}

TEST_CASE("a CSV file of points trains, and a bad cell is named before anything is written") {
  testing::ScratchDir dir;
  std::string csv = "height,weight\n";
  for (int i = 0; i < 200; ++i)
    csv += fmt::format("{},{}\n", 150 + i % 40, 50 + (i % 40) * 0.8 + (i % 7) * 0.3);
  testing::write_text(dir / "people.csv", csv);
  std::string experiment = "name: people\ndata:\n  source: csv\n  file: " + (dir / "people.csv") +
                           "\nmodel:\n  hidden: [4]\n  bottleneck: 1\n  activation: identity\n"
                           "  output_activation: identity\n  standardize: scale\n"
                           "train:\n  epochs: 30\n  batch_size: 50\n  lr: 1e-2\n  threads: 1\n";
  testing::write_text(dir / "people.yaml", experiment);
  Result good = run("--root " + (dir / "runs") + " run " + (dir / "people.yaml"));
  INFO(good.output);
  CHECK(good.status == 0);
  CHECK(good.output.find("people.csv: 200 points, 2 columns (height, weight)") !=
        std::string::npos);
  CHECK(good.output.find("2-4-1") != std::string::npos);

  testing::write_text(dir / "people.csv", csv + "171,n/a\n");
  Result bad = run("--root " + (dir / "bad") + " run " + (dir / "people.yaml"));
  INFO(bad.output);
  CHECK(bad.status == 2);
  CHECK(bad.output.find("row 202, column 2 ('weight'): 'n/a' is not a finite number") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(dir / "bad/pipeline.db"));
}

}  // namespace pl

namespace pl {

TEST_CASE("--jobs 2 runs points side by side with the results of one job") {
  testing::ScratchDir dir;
  std::string base = "run " + source("experiments/pca_nonlinear.yaml") +
                     " --set train.epochs=20 --set model.hidden=[4]";
  Result one = run("--root " + (dir / "one") + " " + base);
  Result two = run("--root " + (dir / "two") + " " + base + " --jobs 2");
  INFO(two.output);
  REQUIRE(one.status == 0);
  REQUIRE(two.status == 0);
  CHECK(two.output.find("2 jobs side by side") != std::string::npos);
  CHECK(two.output.find("[job 2] run ") != std::string::npos);
  CHECK(two.output.find("[job 1] sweep 'pca_nonlinear': all 3 runs done") != std::string::npos);
  // Everything but the timings.
  std::string sql =
      "query \"SELECT run, name, printf('%.17g', value) FROM final WHERE name NOT LIKE "
      "'%seconds' AND name != 'train.images_per_s' ORDER BY 1, 2\"";
  Result a = run("--root " + (dir / "one") + " " + sql);
  Result b = run("--root " + (dir / "two") + " " + sql);
  CHECK(a.output.find("pca.fve") != std::string::npos);
  CHECK(a.output == b.output);
  CHECK(run("run " + source("experiments/pca_nonlinear.yaml") + " --jobs 0").status == 2);
}

}  // namespace pl
