// The function library: operators, conversions, string functions (with CEL's strings
// extension) and time accessors. The checker resolves a call to a FunctionDef once; the
// evaluator calls it with already evaluated, error-free arguments.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/cel/ast.h"
#include "core/cel/value.h"

namespace switchboard::cel {

struct EvalState {
  uint64_t steps = 0;
  uint64_t max_steps = 0;
  size_t max_string_bytes = 0;
  bool exhausted = false;
  size_t max_regex_program = 0;  // for patterns computed at evaluation time
  size_t max_regex_memory = 0;
};

using Function = Value (*)(const Expr& call, Value* args, size_t n, EvalState& state);

struct FunctionDef {
  std::string_view name;
  bool global;      // callable as name(args)
  bool receiver;    // callable as args[0].name(args[1..])
  uint8_t min_args;  // including the receiver
  uint8_t max_args;
  Function impl;
};

// Looks a function up by name; nullptr when there is none.
const FunctionDef* find_function(std::string_view name);
// Every function name, for suggestions.
std::vector<std::string> function_names();

// Helpers shared with the evaluator.
Value no_overload(std::string_view fn, const Value* args, size_t n);
Value index_value(const Value& container, const Value& key);

}  // namespace switchboard::cel
