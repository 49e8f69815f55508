// A compile error a person can act on: where it is (line:column), what is wrong, and the
// source line with a caret under the spot.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::cel {

struct Diagnostic {
  std::string message;
  uint32_t offset = 0;  // byte offset in the expression
  uint32_t line = 1;    // 1-based
  uint32_t column = 1;  // 1-based, in code points

  // "line:col: message\n | source line\n | ^"
  std::string render(std::string_view source) const;
  // Only the source line and the caret under the spot: " | source line\n | ^".
  std::string excerpt(std::string_view source) const;
};

// Fills line and column from offset.
Diagnostic make_diagnostic(std::string_view source, uint32_t offset, std::string message);

// The closest candidate by edit distance, or empty when none is close enough to suggest.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace switchboard::cel
