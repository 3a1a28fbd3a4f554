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

// Found by fuzz_filter: deep nesting overflowed the stack, and long chains
// gave SQL deeper than SQLite accepts.
TEST_CASE("nesting and length are bounded, with the column where the limit was passed") {
  std::string fifty = std::string(50, '(') + "a = 1" + std::string(50, ')');
  CHECK(compile(fifty).binds.size() == 1);
  std::string deep = std::string(100000, '(') + "a = 1" + std::string(100000, ')');
  CHECK(error_of(deep).find("column 51: nested too deeply") != std::string::npos);
  std::string nots;
  for (int i = 0; i < 100000; ++i) nots += "not ";
  CHECK(error_of(nots + "a = 1").find("nested too deeply") != std::string::npos);
  std::string chain = "a = 1";
  for (int i = 0; i < 1000; ++i) chain += " or a = 1";
  CHECK(error_of(chain).find("the expression is too long") != std::string::npos);
}

}  // namespace
}  // namespace pl
