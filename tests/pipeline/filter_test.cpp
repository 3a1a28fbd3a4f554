#include "pipeline/filter.h"

#include <doctest/doctest.h>

namespace pl {
namespace {

// Names resolve to themselves in brackets, so the SQL shows the structure.
CompiledFilter compile(const std::string& text) {
  return compile_filter(
      text,
      [](const std::string& name, std::vector<SqlValue>&) -> std::optional<std::string> {
        if (name == "unknown") return std::nullopt;
        return "[" + name + "]";
      },
      {"model.width", "copy.psnr"});
}

std::string error_of(const std::string& text) {
  try {
    compile(text);
  } catch (const FilterError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_CASE("and binds tighter than or, not tighter than and") {
  CompiledFilter f = compile("a = 1 or b = 2 and not c = 3");
  CHECK(f.sql == "(([a] = ?) OR (([b] = ?) AND (NOT ([c] = ?))))");
  REQUIRE(f.binds.size() == 3);
  CHECK(f.binds[0].is_number);
  CHECK(f.binds[2].number == 3.0);
}

TEST_CASE("parentheses, in, between and is null compile to their SQL forms") {
  CHECK(compile("(a = 1 or b = 2) and c > 0").sql == "((([a] = ?) OR ([b] = ?)) AND ([c] > ?))");
  CHECK(compile("status in ('done', 'failed')").sql == "([status] IN (?, ?))");
  CHECK(compile("x not in (1)").sql == "([x] NOT IN (?))");
  CHECK(compile("lr between 1e-4 and 1e-3").sql == "([lr] BETWEEN ? AND ?)");
  CHECK(compile("copy.psnr is not null").sql == "([copy.psnr] IS NOT NULL)");
  CHECK(compile("a == 1 AND b <> 2").sql == "(([a] = ?) AND ([b] != ?))");
}

TEST_CASE("values are bound, never pasted, quotes included") {
  CompiledFilter f = compile("name = 'it''s' or other = \"x; DROP TABLE runs\"");
  CHECK(f.sql.find("DROP") == std::string::npos);
  REQUIRE(f.binds.size() == 2);
  CHECK(f.binds[0].text == "it's");
  CHECK_FALSE(f.binds[0].is_number);
  CHECK(f.binds[1].text == "x; DROP TABLE runs");
  CHECK(compile("x > -0.5").binds[0].number == -0.5);
}

TEST_CASE("errors point at the column where the expression went wrong") {
  std::string message = error_of("model.width >= ");
  CHECK(message.find("column 16: expected a name, a number or a quoted string, found the end") !=
        std::string::npos);
  CHECK(message.find("\n  model.width >= \n                 ^") != std::string::npos);
  CHECK(error_of("a = 1 and").find("column 10") != std::string::npos);
  CHECK(error_of("a = 'open").find("column 5: this string is never closed") != std::string::npos);
  CHECK(error_of("(a = 1").find("expected ')'") != std::string::npos);
  CHECK(error_of("a ~ 1").find("column 3: unexpected '~'") != std::string::npos);
  CHECK(error_of("a = 1 b = 2").find("column 7: expected 'and', 'or' or the end, found 'b'") !=
        std::string::npos);
  CHECK(error_of("a between 1 or 2").find("expected 'and'") != std::string::npos);
}

TEST_CASE("an unknown name is an error with a suggestion") {
  try {
    compile_filter(
        "model.widht > 1",
        [](const std::string&, std::vector<SqlValue>&) { return std::optional<std::string>(); },
        {"model.width", "copy.psnr"});
    FAIL("expected an error");
  } catch (const FilterError& e) {
    CHECK(e.column() == 1);
    CHECK(std::string(e.what()).find("did you mean 'model.width'?") != std::string::npos);
  }
}

}  // namespace
}  // namespace pl
