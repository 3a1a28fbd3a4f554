#include "pipeline/filter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "pipeline/schema.h"

namespace pl {
namespace {

enum class Kind { kName, kNumber, kString, kOperator, kOpen, kClose, kComma, kEnd };

struct Token {
  Kind kind;
  std::string text;
  std::size_t column;  // 1-based
};

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), ::tolower);
  return text;
}

std::vector<Token> tokenize(const std::string& text) {
  std::vector<Token> tokens;
  std::size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    std::size_t start = i;
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) ||
                                 text[i] == '_' || text[i] == '.')) {
        ++i;
      }
      tokens.push_back({Kind::kName, text.substr(start, i - start), start + 1});
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '.' ||
               (c == '-' && i + 1 < text.size() &&
                (std::isdigit(static_cast<unsigned char>(text[i + 1])) || text[i + 1] == '.'))) {
      char* end = nullptr;
      std::strtod(text.c_str() + i, &end);
      std::size_t length = static_cast<std::size_t>(end - (text.c_str() + i));
      if (length == 0) throw FilterError(text, start + 1, "not a number");
      i += length;
      tokens.push_back({Kind::kNumber, text.substr(start, i - start), start + 1});
    } else if (c == '\'' || c == '"') {
      std::string value;
      ++i;
      while (true) {
        if (i >= text.size()) throw FilterError(text, start + 1, "this string is never closed");
        if (text[i] == c && i + 1 < text.size() && text[i + 1] == c) {
          value += c;  // a doubled quote stands for itself
          i += 2;
        } else if (text[i] == c) {
          ++i;
          break;
        } else {
          value += text[i++];
        }
      }
      tokens.push_back({Kind::kString, value, start + 1});
    } else if (c == '(' || c == ')' || c == ',') {
      tokens.push_back({c == '('   ? Kind::kOpen
                        : c == ')' ? Kind::kClose
                                   : Kind::kComma,
                        std::string(1, c), start + 1});
      ++i;
    } else {
      static const char* kOperators[] = {"<=", ">=", "!=", "<>", "==", "=", "<", ">"};
      std::string op;
      for (const char* candidate : kOperators) {
        if (text.compare(i, std::strlen(candidate), candidate) == 0) {
          op = candidate;
          break;
        }
      }
      if (op.empty()) throw FilterError(text, start + 1, fmt::format("unexpected '{}'", c));
      i += op.size();
      tokens.push_back({Kind::kOperator, op, start + 1});
    }
  }
  tokens.push_back({Kind::kEnd, "", text.size() + 1});
  return tokens;
}

class Parser {
 public:
  Parser(const std::string& text, const NameResolver& resolve,
         const std::vector<std::string>& known)
      : text_(text), tokens_(tokenize(text)), resolve_(resolve), known_(known) {}

  CompiledFilter parse() {
    CompiledFilter out;
    out.sql = disjunction(out.binds);
    if (peek().kind != Kind::kEnd) fail(peek(), "expected 'and', 'or' or the end");
    return out;
  }

 private:
  const Token& peek() const { return tokens_[position_]; }
  const Token& next() { return tokens_[position_++]; }
  bool keyword(const char* word) const {
    return peek().kind == Kind::kName && lower(peek().text) == word;
  }

  [[noreturn]] void fail(const Token& at, const std::string& expected) const {
    std::string found = at.kind == Kind::kEnd ? "the end" : "'" + at.text + "'";
    throw FilterError(text_, at.column, fmt::format("{}, found {}", expected, found));
  }

  // The parser recurses on parentheses and 'not', and SQLite refuses
  // expressions deeper than 1000: a person's filter is far below these.
  static constexpr int kMaxNesting = 50;
  static constexpr int kMaxTerms = 500;  // values, names, 'and' and 'or'

  void count_term(const Token& at) {
    if (++terms_ > kMaxTerms) {
      throw FilterError(text_, at.column,
                        fmt::format("the expression is too long: more than {} names, values, "
                                    "'and' and 'or'",
                                    kMaxTerms));
    }
  }

  std::string disjunction(std::vector<SqlValue>& binds) {
    std::string sql = conjunction(binds);
    while (keyword("or")) {
      count_term(next());
      sql = "(" + sql + " OR " + conjunction(binds) + ")";
    }
    return sql;
  }

  std::string conjunction(std::vector<SqlValue>& binds) {
    std::string sql = negation(binds);
    while (keyword("and")) {
      count_term(next());
      sql = "(" + sql + " AND " + negation(binds) + ")";
    }
    return sql;
  }

  std::string negation(std::vector<SqlValue>& binds) {
    bool is_not = keyword("not");
    if (!is_not && peek().kind != Kind::kOpen) return comparison(binds);
    if (++nesting_ > kMaxNesting) {
      throw FilterError(text_, peek().column,
                        fmt::format("nested too deeply: more than {} levels of parentheses and "
                                    "'not'",
                                    kMaxNesting));
    }
    next();
    std::string sql;
    if (is_not) {
      sql = "(NOT " + negation(binds) + ")";
    } else {
      sql = disjunction(binds);  // already parenthesised
      if (peek().kind != Kind::kClose) fail(peek(), "expected ')'");
      next();
    }
    --nesting_;
    return sql;
  }

  std::string comparison(std::vector<SqlValue>& binds) {
    std::string left = operand(binds);
    if (keyword("is")) {
      next();
      bool negated = keyword("not");
      if (negated) next();
      if (!keyword("null")) fail(peek(), "expected 'null'");
      next();
      return "(" + left + (negated ? " IS NOT NULL)" : " IS NULL)");
    }
    bool negated = keyword("not");
    if (negated) {
      next();
      if (!keyword("in") && !keyword("between")) fail(peek(), "expected 'in' or 'between'");
    }
    std::string prefix = negated ? "NOT " : "";
    if (keyword("in")) {
      next();
      if (peek().kind != Kind::kOpen) fail(peek(), "expected '(' after 'in'");
      next();
      std::string list = operand(binds);
      while (peek().kind == Kind::kComma) {
        next();
        list += ", " + operand(binds);
      }
      if (peek().kind != Kind::kClose) fail(peek(), "expected ',' or ')'");
      next();
      return "(" + left + " " + prefix + "IN (" + list + "))";
    }
    if (keyword("between")) {
      next();
      std::string low = operand(binds);
      if (!keyword("and")) fail(peek(), "expected 'and' in 'between ... and ...'");
      next();
      std::string high = operand(binds);
      return "(" + left + " " + prefix + "BETWEEN " + low + " AND " + high + ")";
    }
    if (peek().kind != Kind::kOperator) {
      fail(peek(), "expected a comparison (=, !=, <, <=, >, >=, in, between, is null)");
    }
    std::string op = next().text;
    if (op == "==") op = "=";
    if (op == "<>") op = "!=";
    return "(" + left + " " + op + " " + operand(binds) + ")";
  }

  std::string operand(std::vector<SqlValue>& binds) {
    const Token& token = peek();
    if (token.kind != Kind::kEnd) count_term(token);
    if (token.kind == Kind::kNumber) {
      next();
      binds.push_back({true, std::strtod(token.text.c_str(), nullptr), token.text});
      return "?";
    }
    if (token.kind == Kind::kString) {
      next();
      binds.push_back({false, 0, token.text});
      return "?";
    }
    if (token.kind == Kind::kName && !is_keyword(token.text)) {
      next();
      std::optional<std::string> sql = resolve_(token.text, binds);
      if (!sql) {
        std::string hint = suggest(token.text, known_);
        throw FilterError(
            text_, token.column,
            hint.empty() ? fmt::format("unknown name '{}'", token.text)
                         : fmt::format("unknown name '{}'; did you mean '{}'?", token.text, hint));
      }
      return *sql;
    }
    fail(token, "expected a name, a number or a quoted string");
  }

  static bool is_keyword(const std::string& word) {
    static const char* kKeywords[] = {"and", "or", "not", "in", "between", "is", "null"};
    std::string w = lower(word);
    return std::any_of(std::begin(kKeywords), std::end(kKeywords),
                       [&](const char* k) { return w == k; });
  }

  const std::string& text_;
  std::vector<Token> tokens_;
  const NameResolver& resolve_;
  const std::vector<std::string>& known_;
  std::size_t position_ = 0;
  int nesting_ = 0;
  int terms_ = 0;
};

}  // namespace

FilterError::FilterError(const std::string& expression, std::size_t column,
                         const std::string& message)
    : std::runtime_error(fmt::format("--where, column {}: {}\n  {}\n  {}^", column, message,
                                     expression, std::string(column - 1, ' '))),
      column_(column) {}

CompiledFilter compile_filter(const std::string& expression, const NameResolver& resolve,
                              const std::vector<std::string>& known) {
  return Parser(expression, resolve, known).parse();
}

}  // namespace pl
