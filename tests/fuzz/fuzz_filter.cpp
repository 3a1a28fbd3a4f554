// Fuzzes the --where compiler: any expression must give SQL that SQLite
// accepts with one bound value per placeholder, or a FilterError whose caret
// lies within the expression.
#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/filter.h"

namespace {

sqlite3* database() {
  static sqlite3* db = [] {
    sqlite3* opened = nullptr;
    sqlite3_open(":memory:", &opened);
    sqlite3_exec(opened,
                 "CREATE TABLE runs (id TEXT, status TEXT); "
                 "CREATE TABLE params (run TEXT, key TEXT, value TEXT, num REAL);",
                 nullptr, nullptr, nullptr);
    return opened;
  }();
  return db;
}

// Resolves names the way `pipeline runs` does: run columns directly, params
// through a bound key.
std::optional<std::string> resolve(const std::string& name, std::vector<pl::SqlValue>& binds) {
  if (name == "status" || name == "id") return "r." + name;
  if (name == "model.width" || name == "train.lr" || name == "copy.psnr") {
    pl::SqlValue key;
    key.text = name;
    binds.push_back(key);
    return std::string("(SELECT num FROM params p WHERE p.run = r.id AND p.key = ?)");
  }
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string expression(reinterpret_cast<const char*>(data), size);
  try {
    pl::CompiledFilter filter = pl::compile_filter(expression, resolve, {"status", "model.width"});
    std::string sql = "SELECT r.id FROM runs r WHERE " + filter.sql;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(database(), sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      __builtin_trap();  // the compiler wrote SQL that SQLite refuses
    }
    if (sqlite3_bind_parameter_count(stmt) != static_cast<int>(filter.binds.size()))
      __builtin_trap();
    sqlite3_finalize(stmt);
  } catch (const pl::FilterError& e) {
    if (e.column() < 1 || e.column() > expression.size() + 1) __builtin_trap();
  }
  return 0;
}
