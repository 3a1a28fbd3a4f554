#include "pipeline/h5file.h"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>

#include "../test_util.h"

namespace pl {
namespace {

// Writes and commits a file holding one dataset "a" of `values`.
void write_committed(const std::string& path, const std::vector<float>& values) {
  H5Writer out(path);
  out.put("a", {static_cast<int64_t>(values.size())}, values.data());
  out.commit();
}

TEST_CASE("datasets and attributes read back as written") {
  testing::ScratchDir dir;
  std::vector<float> weights = {1.5f, -2.0f, 3.25f, 0.0f, 5.0f, -6.5f};
  std::vector<double> losses = {0.5, 0.25};
  {
    H5Writer out(dir / "f.h5");
    out.put("model/encoder.0.weight", {2, 3}, weights.data());
    out.put("history/loss", {2}, losses.data());
    out.attr("epoch", int64_t{7});
    out.attr("config", std::string("train.lr: 0.001\n"));
    out.attr("partial", 0.125);
    out.commit();
  }
  H5Reader in(dir / "f.h5");
  Array<float> w = in.read_float("model/encoder.0.weight");
  CHECK(w.shape == std::vector<int64_t>{2, 3});
  CHECK(w.data == weights);
  CHECK(in.read_double("history/loss").data == losses);
  CHECK(in.list("model") == std::vector<std::string>{"encoder.0.weight"});
  CHECK(in.attr_int("epoch") == 7);
  CHECK(in.attr_text("config") == "train.lr: 0.001\n");
  CHECK(in.attr_double("partial") == 0.125);
  CHECK_FALSE(in.has("optimizer/x"));
}

TEST_CASE("an uncommitted writer leaves no file and keeps the old one") {
  testing::ScratchDir dir;
  std::vector<float> one = {1.0f};
  write_committed(dir / "c.h5", one);
  {
    H5Writer out(dir / "c.h5");
    std::vector<float> two = {2.0f};
    out.put("a", {1}, two.data());
  }  // destroyed without commit, as when a write fails half-way
  CHECK_FALSE(std::filesystem::exists(dir / "c.h5.tmp"));
  CHECK(H5Reader(dir / "c.h5").read_float("a").data == one);
}

// A full disk, as a file-size limit: the write fails with the reason, the
// previous file stays, and the process ends normally (it used to crash in
// HDF5's exit handler, which closed the failed file a second time).
TEST_CASE("a write that hits a file-size limit is a clear error, and the process exits cleanly") {
  testing::ScratchDir dir;
  std::vector<float> one = {1.0f};
  write_committed(dir / "full.h5", one);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{64 * 1024, 64 * 1024};
    setrlimit(RLIMIT_FSIZE, &limit);
    std::vector<float> big(1 << 20, 2.0f);
    int code = 3;
    try {
      H5Writer out(dir / "full.h5");
      out.put("a", {static_cast<int64_t>(big.size())}, big.data());
      out.commit();
    } catch (const std::runtime_error& e) {
      code = std::string(e.what()).find(
                 "File too large (the disk is full or a file-size "
                 "limit was reached)") != std::string::npos
                 ? 0
                 : 4;
    }
    std::exit(code);  // runs the exit handlers, as the program does
  }
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(H5Reader(dir / "full.h5").read_float("a").data == one);
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    CHECK(entry.path().filename() == "full.h5");  // no temporary file left
  }
}

TEST_CASE("a truncated or foreign file is a clear error") {
  testing::ScratchDir dir;
  std::vector<float> data(100000, 1.0f);
  {
    H5Writer out(dir / "t.h5");
    out.put("a", {100000}, data.data());
    out.commit();
  }
  std::filesystem::resize_file(dir / "t.h5", 5000);
  testing::write_text(dir / "text.h5", "not hdf5 at all");
  auto message = [](const std::string& path) {
    try {
      H5Reader in(path);
      in.read_float("a");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(message(dir / "t.h5").find("t.h5: ") != std::string::npos);
  CHECK(message(dir / "text.h5").find("not an HDF5 file") != std::string::npos);
  CHECK(message(dir / "absent.h5").find("no such file") != std::string::npos);
}

}  // namespace
}  // namespace pl
