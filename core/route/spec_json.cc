#include "core/route/spec_json.h"

#include <algorithm>
#include <charconv>

#include "core/json/document.h"
#include "core/route/spec_reader.h"

namespace switchboard::route {
namespace {

// A parsed document with where each of its lines starts, for positions.
struct JsonTree {
  explicit JsonTree(const json::Document& d) : doc(d) {
    std::string_view text = d.source();
    line_starts.push_back(0);
    for (size_t i = text.find('\n'); i != std::string_view::npos; i = text.find('\n', i + 1)) {
      line_starts.push_back(static_cast<uint32_t>(i + 1));
    }
  }
  detail::Mark mark(uint32_t offset) const {
    auto after = std::upper_bound(line_starts.begin(), line_starts.end(), offset);
    size_t line = static_cast<size_t>(after - line_starts.begin()) - 1;
    return detail::Mark{static_cast<int>(line), static_cast<int>(offset - line_starts[line])};
  }

  const json::Document& doc;
  std::vector<uint32_t> line_starts;
};

// A core/json value as the spec reader walks it.
class JsonNode {
 public:
  JsonNode() = default;
  JsonNode(const JsonTree* tree, uint32_t index) : tree_(tree), index_(index) {}

  explicit operator bool() const { return tree_ != nullptr; }
  bool is_map() const { return tree_ && node().type == json::Type::Object; }
  bool is_list() const { return tree_ && node().type == json::Type::Array; }
  bool is_scalar() const {
    if (!tree_) return false;
    json::Type t = node().type;
    return t != json::Type::Null && t != json::Type::Array && t != json::Type::Object;
  }
  bool is_null() const { return tree_ && node().type == json::Type::Null; }
  // A string's decoded text; a number's or boolean's source text.
  std::string_view scalar() const {
    if (!is_scalar()) return {};
    return node().type == json::Type::String ? doc().text_of(node()) : doc().raw(index_);
  }
  // The first member with that key, as yaml-cpp answers when a key repeats (json::Document's
  // find_member answers the last). Spec objects have a handful of members.
  JsonNode get(std::string_view key) const {
    if (!is_map()) return {};
    uint32_t k = json::Document::first_child(index_);
    for (uint32_t m = 0; m < node().count; ++m) {
      const json::Node& key_node = doc().node(k);
      if (doc().text_of(key_node) == key) return JsonNode(tree_, key_node.next);
      k = doc().node(key_node.next).next;
    }
    return {};
  }
  size_t size() const { return is_map() || is_list() ? node().count : 0; }
  detail::Mark mark() const { return tree_ ? tree_->mark(node().begin) : detail::Mark{}; }
  bool to_integer(long long& v) const {
    if (node().type == json::Type::Number) {
      int64_t i = 0;
      if (!doc().int64_value(index_, i)) return false;
      v = i;
      return true;
    }
    std::string_view s = scalar();
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && end == s.data() + s.size() && !s.empty();
  }
  bool to_boolean(bool& v) const {
    std::string_view s = scalar();
    if (s != "true" && s != "false") return false;
    v = s == "true";
    return true;
  }
  void append_scalar_json(std::string& out) const {
    if (node().type == json::Type::String) {
      json::append_quoted(out, scalar());
    } else {
      out += scalar();
    }
  }
  template <typename F>
  void for_each_member(F&& f) const {
    if (!is_map()) return;
    uint32_t k = json::Document::first_child(index_);
    for (uint32_t m = 0; m < node().count; ++m) {
      uint32_t v = doc().node(k).next;
      f(JsonNode(tree_, k), JsonNode(tree_, v));
      k = doc().node(v).next;
    }
  }
  template <typename F>
  void for_each_element(F&& f) const {
    if (!is_list()) return;
    uint32_t e = json::Document::first_child(index_);
    for (uint32_t i = 0; i < node().count; ++i) {
      f(size_t{i}, JsonNode(tree_, e));
      e = doc().node(e).next;
    }
  }

 private:
  const json::Document& doc() const { return tree_->doc; }
  const json::Node& node() const { return tree_->doc.node(index_); }

  const JsonTree* tree_ = nullptr;
  uint32_t index_ = 0;
};

static_assert(detail::SpecNode<JsonNode>);

// The parser reports "... at byte N"; the byte becomes a line and column.
detail::Mark error_mark(const JsonTree& tree, const std::string& message) {
  size_t at = message.rfind(" at byte ");
  if (at == std::string::npos) return {};
  uint32_t offset = 0;
  const char* digits = message.data() + at + 9;
  if (std::from_chars(digits, message.data() + message.size(), offset).ec != std::errc() ||
      offset > tree.doc.source().size()) {
    return {};
  }
  return tree.mark(offset);
}

}  // namespace

bool load_json(std::string_view text, const std::string& file, RouteSet& out, std::vector<SpecError>& errors) {
  size_t before = errors.size();
  if (int bad = detail::invalid_utf8_line(text)) {
    errors.push_back(SpecError{Location{file, bad, 1}, "", "", "the file is not valid UTF-8", ""});
    return false;
  }
  json::Document doc;
  json::Limits limits;
  limits.max_bytes = std::max(limits.max_bytes, text.size());
  if (!doc.parse(text, limits)) {
    Location l{file};
    JsonTree positions(doc);  // a failed parse keeps the text, for the error's position
    detail::Mark m = error_mark(positions, doc.error());
    if (m.line >= 0) {
      l.line = m.line + 1;
      l.column = m.column + 1;
    }
    errors.push_back(SpecError{l, "", "", "invalid JSON: " + doc.error(), ""});
    return false;
  }
  JsonTree tree(doc);
  detail::SpecReader<JsonNode> reader(text, file, errors);
  bool ok = reader.document(JsonNode(&tree, json::Document::root()), out);
  ok &= detail::check_unique_names(out, errors);
  return ok && errors.size() == before;
}

}  // namespace switchboard::route
