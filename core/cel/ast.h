// The syntax tree of one expression. The parser builds it, the checker resolves names in
// place (variable slots, functions, precompiled patterns), the evaluator walks it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/cel/value.h"

namespace re2 {
class RE2;
}

namespace switchboard::cel {

struct FunctionDef;

enum class ExprKind : uint8_t {
  Literal,
  Ident,        // name; resolved to slot
  Select,       // args[0].name ; test_only for has()
  Index,        // args[0][args[1]]
  Call,         // name(args...) or args[0].name(args[1..]) when receiver
  CreateList,   // [args...]
  CreateMap,    // {args[0]: args[1], ...}
  And,
  Or,
  Not,
  Negate,
  Conditional,  // args[0] ? args[1] : args[2]
  Comprehension,
};

enum class Macro : uint8_t { None, All, Exists, ExistsOne, Map, MapFilter, Filter };

struct Expr {
  ExprKind kind = ExprKind::Literal;
  uint32_t pos = 0;     // byte offset in the source, for error messages
  uint32_t height = 1;  // of the subtree: bounds the evaluator's recursion
  Value literal;
  std::string name;
  std::vector<std::unique_ptr<Expr>> args;
  bool receiver = false;   // Call: args[0] is the receiver
  bool test_only = false;  // Select inside has()
  bool root_scoped = false;  // Ident written with a leading dot
  // Comprehension: args[0] range, args[1] predicate or transform, args[2] transform (MapFilter)
  Macro macro = Macro::None;
  // Resolved by the checker.
  int slot = -1;  // Ident: variable slot; Comprehension: iteration variable slot
  const FunctionDef* fn = nullptr;
  std::shared_ptr<const re2::RE2> regex;  // `matches` with a literal pattern
};

using ExprPtr = std::unique_ptr<Expr>;

}  // namespace switchboard::cel
