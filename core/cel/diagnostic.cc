#include "core/cel/diagnostic.h"

#include <algorithm>

namespace switchboard::cel {

Diagnostic make_diagnostic(std::string_view source, uint32_t offset, std::string message) {
  Diagnostic d;
  d.message = std::move(message);
  d.offset = std::min<uint32_t>(offset, static_cast<uint32_t>(source.size()));
  for (uint32_t i = 0; i < d.offset; ++i) {
    if (source[i] == '\n') {
      ++d.line;
      d.column = 1;
    } else if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) {
      ++d.column;
    }
  }
  return d;
}

std::string Diagnostic::render(std::string_view source) const {
  return std::to_string(line) + ":" + std::to_string(column) + ": " + message + "\n" + excerpt(source);
}

std::string Diagnostic::excerpt(std::string_view source) const {
  size_t start = source.rfind('\n', offset == 0 ? 0 : offset - 1);
  start = (start == std::string_view::npos || offset == 0) ? 0 : start + 1;
  if (offset > 0 && offset <= source.size() && source[offset - 1] == '\n') start = offset;
  size_t end = source.find('\n', start);
  if (end == std::string_view::npos) end = source.size();
  std::string out = " | ";
  out += source.substr(start, end - start);
  out += "\n | ";
  out.append(column - 1, ' ');
  out += '^';
  return out;
}

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(1, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

}  // namespace switchboard::cel
