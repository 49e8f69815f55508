// Compiling and running expressions. An Environment declares the variables an expression
// may use; compile() parses and checks once; Program::evaluate() runs the checked tree
// against an Activation (the variables' values) within a step budget.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/cel/ast.h"
#include "core/cel/diagnostic.h"
#include "core/cel/parser.h"
#include "core/cel/value.h"

namespace switchboard::cel {

class Environment {
 public:
  // Declares a variable and returns its slot. Names may be qualified ("a.b.c"); a
  // reference resolves to the longest declared prefix, as in CEL.
  int declare(std::string name);
  int slot(std::string_view name) const;  // -1 when undeclared
  const std::vector<std::string>& names() const { return names_; }

  // The environment routes use: event, subject, headers.
  static const Environment& routing();

 private:
  std::vector<std::string> names_;
};

struct Limits {
  ParseLimits parse;
  uint64_t max_steps = 100'000;        // evaluation steps per evaluation
  size_t max_regex_program = 2000;     // RE2 program size of a `matches` pattern
  size_t max_regex_memory = 1 << 20;   // RE2 max_mem of a pattern: its program and DFA cache
  size_t max_string_bytes = 1 << 20;   // strings, bytes and lists built by an expression
  bool operator==(const Limits&) const = default;
};

class Activation {
 public:
  explicit Activation(const Environment& env) : values_(env.names().size()) {}
  void set(int slot, Value v) { values_[static_cast<size_t>(slot)] = std::move(v); }
  Value& at(int slot) { return values_[static_cast<size_t>(slot)]; }
  const Value* data() const { return values_.data(); }

 private:
  std::vector<Value> values_;
};

class Program {
 public:
  // Parses and checks `source`. Unknown variables and functions are compile errors with
  // a suggestion where one is close.
  static std::variant<Program, Diagnostic> compile(std::string_view source, const Environment& env,
                                                   const Limits& limits = {});
  // Without the checker: unknown names and functions become errors at evaluation time
  // instead of compile errors. Only for running conformance vectors that ask for it.
  static std::variant<Program, Diagnostic> compile_unchecked(std::string_view source,
                                                             const Environment& env,
                                                             const Limits& limits = {});

  // Never throws: failures (no such key, overflow, budget exhausted...) come back as an
  // error Value.
  Value evaluate(const Activation& activation) const;

  const std::string& source() const { return *source_; }
  // True when the expression reads the variable in `slot`.
  bool references(int slot) const;

 private:
  static std::variant<Program, Diagnostic> build(std::string_view source, const Environment& env,
                                                 const Limits& limits, bool strict);

  std::shared_ptr<const std::string> source_;
  std::shared_ptr<const std::string> literals_;  // text of the string literals, or null
  std::shared_ptr<const Expr> root_;
  uint32_t locals_ = 0;
  uint32_t globals_ = 0;
  uint64_t max_steps_ = 0;
  size_t max_string_bytes_ = 0;
  size_t max_regex_program_ = 0;
  size_t max_regex_memory_ = 0;
};

}  // namespace switchboard::cel
