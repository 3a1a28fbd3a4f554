// The --where language of `pipeline runs`, compiled to parameterised SQL.
//
//   model.width >= 1024 and copy.psnr > 20
//   status in ('done', 'failed') or not (train.lr between 1e-4 and 1e-3)
//   model.activation = 'tanh' and copy.efficiency is not null
//
// Precedence, loosest first: or, and, not, comparison. Names are resolved by
// the caller (params, metrics, run columns); values are never pasted into the
// SQL text, only bound.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pl {

struct SqlValue {
  bool is_number = false;
  double number = 0;
  std::string text;
};

struct CompiledFilter {
  std::string sql;              // a boolean SQL expression with '?' placeholders
  std::vector<SqlValue> binds;  // in placeholder order
};

// A mistake in an expression; what() shows the expression with a caret
// under `column` (1-based).
class FilterError : public std::runtime_error {
 public:
  FilterError(const std::string& expression, std::size_t column, const std::string& message);
  std::size_t column() const { return column_; }

 private:
  std::size_t column_;
};

// Returns the SQL for a name, appending its binds, or nullopt when the name
// is unknown (the error then lists `known` suggestions).
using NameResolver = std::function<std::optional<std::string>(const std::string& name,
                                                              std::vector<SqlValue>& binds)>;

CompiledFilter compile_filter(const std::string& expression, const NameResolver& resolve,
                              const std::vector<std::string>& known = {});

}  // namespace pl
