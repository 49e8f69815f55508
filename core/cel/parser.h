// Parses CEL source text into a syntax tree. Macros (has, all, exists, exists_one, map,
// filter) are recognised here, as CEL's grammar defines them.
#pragma once

#include <cstdint>
#include <string_view>
#include <variant>

#include "core/cel/ast.h"
#include "core/cel/diagnostic.h"

namespace switchboard::cel {

struct ParseLimits {
  size_t max_bytes = 16 * 1024;   // longer sources are refused
  uint32_t max_depth = 128;       // nesting of the resulting tree
  bool operator==(const ParseLimits&) const = default;
};

// Returns the tree, or a diagnostic for the first error.
std::variant<ExprPtr, Diagnostic> parse(std::string_view source, const ParseLimits& limits = {});

}  // namespace switchboard::cel
