#include "core/route/spec_reader.h"

#include <set>

#include "core/cel/time.h"

namespace switchboard::route {

std::string SpecError::render() const {
  std::string out;
  if (!at.file.empty()) out += at.file + ":";
  if (at.line > 0) out += std::to_string(at.line) + ":" + std::to_string(at.column) + ":";
  if (!out.empty()) out += " ";
  if (!object.empty()) out += object + (field.empty() ? ": " : ", ");
  if (!field.empty()) out += field + ": ";
  out += message;
  if (!snippet.empty()) out += "\n" + snippet;
  return out;
}

bool parse_duration_ms(std::string_view text, int64_t& ms) {
  auto d = cel::time::parse_duration(text);
  if (!d || d->seconds < 0 || d->nanos < 0) return false;
  ms = d->seconds * 1000 + d->nanos / 1'000'000;
  return true;
}

namespace detail {

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find('\n', i);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(text.substr(i, end - i));
    i = end + 1;
  }
  return lines;
}

Location location_of(const std::string& file, const std::vector<std::string>& lines, Mark m) {
  Location l;
  l.file = file;
  if (m.line < 0) return l;
  l.line = m.line + 1;
  l.column = m.column + 1;
  if (static_cast<size_t>(m.line) >= lines.size()) return l;
  const std::string& src = lines[static_cast<size_t>(m.line)];
  char c = static_cast<size_t>(m.column) < src.size() ? src[static_cast<size_t>(m.column)] : ' ';
  if (c == '\'' || c == '"') {
    // An expression's positions count from its first character, inside the quotes.
    l.column += 1;
  } else if (c == '|' || c == '>') {
    // A block scalar starts on the next line, at that line's indentation.
    l.block = true;
    l.line += 1;
    if (static_cast<size_t>(m.line + 1) < lines.size()) {
      const std::string& next = lines[static_cast<size_t>(m.line + 1)];
      size_t indent = next.find_first_not_of(' ');
      l.block_indent = indent == std::string::npos ? 0 : static_cast<int>(indent);
    }
    l.column = l.block_indent + 1;
  }
  return l;
}

// Names, keys and expressions end up in JSON (the canonical table, payloads): the input
// must be UTF-8.
int invalid_utf8_line(std::string_view text) {
  if (json::valid_utf8(text)) return 0;
  int line = 1;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find('\n', i);
    if (end == std::string_view::npos) end = text.size();
    if (!json::valid_utf8(text.substr(i, end - i))) return line;
    i = end + 1;
    ++line;
  }
  return line;
}

bool check_unique_names(const RouteSet& set, std::vector<SpecError>& errors) {
  bool ok = true;
  std::set<std::string_view> seen;
  for (const auto& r : set.routes) {
    if (!r.name.empty() && !seen.insert(r.name).second) {
      errors.push_back(SpecError{r.at, "route '" + r.name + "'", "name", "is used by another route", ""});
      ok = false;
    }
  }
  seen.clear();
  for (const auto& t : set.transforms) {
    if (!t.name.empty() && !seen.insert(t.name).second) {
      errors.push_back(SpecError{t.at, "transform '" + t.name + "'", "name", "is used by another transform", ""});
      ok = false;
    }
  }
  return ok;
}

}  // namespace detail
}  // namespace switchboard::route
