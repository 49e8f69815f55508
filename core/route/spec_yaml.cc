#include "core/route/spec_yaml.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "core/json/document.h"
#include "core/route/spec_reader.h"

namespace switchboard::route {
namespace {

// A yaml-cpp node as the spec reader walks it.
class YamlNode {
 public:
  explicit YamlNode(YAML::Node n) : n_(std::move(n)) {}
  YamlNode(const YamlNode&) = default;
  // Assigning a YAML::Node merges the memory of both documents (O(document) each time),
  // not what a handle should do: the reader never assigns, and this keeps it so.
  YamlNode& operator=(const YamlNode&) = delete;

  explicit operator bool() const { return n_.IsDefined(); }
  bool is_map() const { return n_.IsMap(); }
  bool is_list() const { return n_.IsSequence(); }
  bool is_scalar() const { return n_.IsScalar(); }
  bool is_null() const { return n_.IsNull(); }
  const std::string& scalar() const { return n_.Scalar(); }
  YamlNode get(std::string_view key) const { return YamlNode(n_[std::string(key)]); }
  size_t size() const { return n_.size(); }
  detail::Mark mark() const {
    YAML::Mark m = n_.Mark();
    return m.line < 0 ? detail::Mark{} : detail::Mark{m.line, m.column};
  }
  bool to_integer(long long& v) const { return YAML::convert<long long>::decode(n_, v); }
  bool to_boolean(bool& v) const { return YAML::convert<bool>::decode(n_, v); }
  // Plain scalars are typed as YAML 1.2's core schema types them; quoted ones are strings.
  void append_scalar_json(std::string& out) const {
    const std::string& s = n_.Scalar();
    if (n_.Tag() != "!" && n_.Tag() != "tag:yaml.org,2002:str") {
      if (s == "null" || s == "~" || s.empty()) {
        out += "null";
        return;
      }
      if (s == "true" || s == "false") {
        out += s;
        return;
      }
      json::Document d;
      if (d.parse(s) && d.node(0).type == json::Type::Number) {
        out += s;
        return;
      }
    }
    json::append_quoted(out, s);
  }
  template <typename F>
  void for_each_member(F&& f) const {
    for (const auto& kv : n_) f(YamlNode(kv.first), YamlNode(kv.second));
  }
  template <typename F>
  void for_each_element(F&& f) const {
    for (size_t i = 0; i < n_.size(); ++i) f(i, YamlNode(n_[i]));
  }

 private:
  YAML::Node n_;
};

static_assert(detail::SpecNode<YamlNode>);
using Reader = detail::SpecReader<YamlNode>;

// yaml-cpp 0.7's LoadAll never returns on some inputs (a file holding just "," allocates
// until memory runs out), while Load on one document does. So documents are split here, at
// "---" and "..." lines, and each is loaded alone. Returns (first line, text) pairs.
std::vector<std::pair<int, std::string>> split_documents(std::string_view text) {
  std::vector<std::pair<int, std::string>> docs;
  std::string current;
  int start = 0, line_no = 0;
  size_t i = 0;
  while (i <= text.size()) {
    size_t end = text.find('\n', i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(i, end - i);
    bool marker = line.substr(0, 3) == "---" || line.substr(0, 3) == "...";
    marker = marker && (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
    if (marker) {
      if (current.find_first_not_of(" \t\r\n") != std::string::npos) docs.emplace_back(start, current);
      current.clear();
      start = line_no + 1;
      if (line.substr(0, 3) == "---" && line.size() > 4) {
        // Content after "--- " belongs to the new document, on its first line.
        current.assign(line.size(), ' ');
        current.replace(4, std::string::npos, line.substr(4));
        start = line_no;
        current += '\n';
      }
    } else {
      current += line;
      // The last segment has no newline of its own; adding one would move end-of-file
      // errors down a line.
      if (end != text.size()) current += '\n';
    }
    if (end == text.size()) break;
    i = end + 1;
    ++line_no;
  }
  if (current.find_first_not_of(" \t\r\n") != std::string::npos) docs.emplace_back(start, current);
  return docs;
}

}  // namespace

bool load_yaml(std::string_view text, const std::string& file, RouteSet& out,
               std::vector<SpecError>& errors) {
  size_t before = errors.size();
  if (int bad = detail::invalid_utf8_line(text)) {
    errors.push_back(SpecError{Location{file, bad, 1}, "", "", "the file is not valid UTF-8", ""});
    return false;
  }
  Reader reader(text, file, errors);
  bool ok = true;
  for (const auto& [first_line, doc_text] : split_documents(text)) {
    YAML::Node doc;
    try {
      doc = YAML::Load(doc_text);
    } catch (const YAML::Exception& e) {
      Location l{file, e.mark.line + first_line + 1, e.mark.column + 1};
      errors.push_back(SpecError{l, "", "", "invalid YAML: " + e.msg, ""});
      ok = false;
      continue;
    }
    reader.set_line_offset(first_line);
    ok &= reader.document(YamlNode(doc), out);
  }
  ok &= detail::check_unique_names(out, errors);
  return ok && errors.size() == before;
}

bool load_yaml_file(const std::string& path, RouteSet& out, std::vector<SpecError>& errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(SpecError{Location{path}, "", "", "cannot read the file", ""});
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load_yaml(ss.str(), path, out, errors);
}

bool load_route_spec_yaml(std::string_view text, const std::string& name, RouteSpec& out,
                          std::vector<SpecError>& errors) {
  size_t before = errors.size();
  if (int bad = detail::invalid_utf8_line(text)) {
    errors.push_back(SpecError{Location{"", bad, 1}, "route '" + name + "'", "spec",
                               "the spec is not valid UTF-8", ""});
    return false;
  }
  Reader reader(text, "", errors);
  YAML::Node spec;
  try {
    spec = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    errors.push_back(SpecError{Location{"", e.mark.line + 1, e.mark.column + 1},
                               "route '" + name + "'", "spec", "invalid YAML: " + e.msg, ""});
    return false;
  }
  return reader.route(YamlNode(spec), name, "spec", out) && errors.size() == before;
}

}  // namespace switchboard::route
