// Runs CEL conformance vectors (the JSON Lines format of shared/conformance/cel/README.md)
// against the Switchboard expression engine and prints a table per source file.
//
//   switchboard-cel-conformance [--verbose] FILE...
//
// Exit status: 0 when nothing failed, 1 when a case failed, 2 on unreadable input.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/cel/program.h"
#include "core/json/document.h"

using namespace switchboard;
using cel::Kind;
using cel::Value;

namespace {

// Features the engine leaves out on purpose; each is explained in docs/expressions.md.
struct Unsupported {
  const char* file;
  const char* section;  // empty: every section of the file
  const char* name;     // empty: every case of the section
  const char* reason;
};
const char kUndecodedEscape[] =
    "vector defect: the expected string keeps a \\u or \\U escape undecoded (the source "
    "textproto escape was not converted); the engine decodes it as CEL requires";
const char kUndecodedQuestion[] =
    "vector defect: the expected bytes keep a backslash before '?' that the source textproto "
    "used as an escape; the engine produces the unescaped bytes as CEL requires";
const Unsupported kUnsupported[] = {
    {"parse", "string_literals", "single_quoted_lower_u_escapes", kUndecodedEscape},
    {"parse", "string_literals", "double_quoted_lower_u_escapes", kUndecodedEscape},
    {"parse", "string_literals", "triple_single_quoted_lower_u_escapes", kUndecodedEscape},
    {"parse", "string_literals", "triple_double_quoted_lower_u_escapes", kUndecodedEscape},
    {"parse", "string_literals", "double_quoted_upper_u_escapes", kUndecodedEscape},
    {"parse", "string_literals", "single_quoted_upper_u_escapes", kUndecodedEscape},
    {"parse", "string_literals", "triple_single_quoted_upper_u_escapes", kUndecodedEscape},
    {"parse", "string_literals", "triple_double_quoted_upper_u_escapes", kUndecodedEscape},
    {"parse", "string_literals", "mixed_case_hex_single_quoted_escapes", kUndecodedEscape},
    {"parse", "string_literals", "mixed_case_hex_double_quoted_escapes", kUndecodedEscape},
    {"parse", "string_literals", "mixed_case_hex_triple_single_quoted_escapes", kUndecodedEscape},
    {"parse", "string_literals", "mixed_case_hex_triple_double_quoted_escapes", kUndecodedEscape},
    {"parse", "string_literals", "unassigned_code_point_single_quoted_escapes", kUndecodedEscape},
    {"parse", "string_literals", "unassigned_code_point_double_quoted_escapes", kUndecodedEscape},
    {"parse", "string_literals", "unassigned_code_point_triple_single_quoted_escapes", kUndecodedEscape},
    {"parse", "string_literals", "unassigned_code_point_triple_double_quoted_escapes", kUndecodedEscape},
    {"parse", "string_literals", "unassigned_code_point_single_quoted_unescaped", kUndecodedEscape},
    {"parse", "string_literals", "unassigned_code_point_double_quoted_unescaped", kUndecodedEscape},
    {"parse", "string_literals", "unassigned_code_point_triple_single_quoted_unescaped", kUndecodedEscape},
    {"parse", "string_literals", "unassigned_code_point_triple_double_quoted_unescaped", kUndecodedEscape},
    {"parse", "bytes_literals", "triple_single_quoted_unescaped_punctuation", kUndecodedQuestion},
    {"parse", "bytes_literals", "triple_double_quoted_unescaped_punctuation", kUndecodedQuestion},
};

const char* skip_reason(const std::string& file, const std::string& section, const std::string& name) {
  for (const auto& u : kUnsupported) {
    if (u.reason == nullptr) continue;
    if (file != u.file) continue;
    if (*u.section && section != u.section) continue;
    if (*u.name && name != u.name) continue;
    return u.reason;
  }
  return nullptr;
}

bool decode_base64(std::string_view in, std::string& out) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = val(c);
    if (v < 0) return false;
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  return true;
}

// Converts a tagged value ({"int": "5"}, {"list": [...]}, ...) into a Value.
bool tagged(const json::Document& d, uint32_t n, Value& out, std::string& err) {
  if (d.node(n).type != json::Type::Object || d.node(n).count != 1) {
    err = "tagged value must be an object with one key";
    return false;
  }
  uint32_t key = json::Document::first_child(n);
  uint32_t val = d.node(key).next;
  std::string_view tag = d.string_value(key);
  const json::Node& v = d.node(val);
  if (tag == "null") {
    out = Value::null();
  } else if (tag == "bool") {
    out = Value::boolean(v.type == json::Type::True);
  } else if (tag == "int") {
    int64_t i = std::stoll(std::string(d.string_value(val)));
    out = Value::integer(i);
  } else if (tag == "uint") {
    uint64_t u = std::stoull(std::string(d.string_value(val)));
    out = Value::uinteger(u);
  } else if (tag == "double") {
    if (v.type == json::Type::String) {
      std::string_view s = d.string_value(val);
      double x = s == "NaN" ? NAN : (s == "Infinity" ? INFINITY : -INFINITY);
      out = Value::dbl(x);
    } else {
      out = Value::dbl(d.number_value(val));
    }
  } else if (tag == "string") {
    out = Value::string(std::string(d.string_value(val)));
  } else if (tag == "bytes_b64") {
    std::string bytes;
    if (!decode_base64(d.string_value(val), bytes)) {
      err = "bad base64";
      return false;
    }
    out = Value::bytes(std::move(bytes));
  } else if (tag == "list") {
    cel::ValueList items;
    for (uint32_t c = json::Document::first_child(val), i = 0; i < v.count; ++i, c = d.node(c).next) {
      Value item;
      if (!tagged(d, c, item, err)) return false;
      items.push_back(std::move(item));
    }
    out = Value::list(std::move(items));
  } else if (tag == "map") {
    cel::MapEntries entries;
    for (uint32_t c = json::Document::first_child(val), i = 0; i < v.count; ++i, c = d.node(c).next) {
      uint32_t k = json::Document::first_child(c);
      Value kv, vv;
      if (!tagged(d, k, kv, err) || !tagged(d, d.node(k).next, vv, err)) return false;
      entries.emplace_back(std::move(kv), std::move(vv));
    }
    out = Value::map(std::move(entries));
  } else if (tag == "type") {
    static std::map<std::string, std::string> names;  // stable storage for type names
    auto& s = names[std::string(d.string_value(val))];
    s = std::string(d.string_value(val));
    out = Value::type(s);
  } else {
    err = "unknown tag '" + std::string(tag) + "'";
    return false;
  }
  return true;
}

// Exact equality: types must match, maps compare without order, NaN equals NaN.
bool same(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Double:
      if (std::isnan(a.double_value()) && std::isnan(b.double_value())) return true;
      return a.double_value() == b.double_value() &&
             std::signbit(a.double_value()) == std::signbit(b.double_value());
    case Kind::List:
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!same(a.element(i), b.element(i))) return false;
      }
      return true;
    case Kind::Map: {
      if (a.size() != b.size()) return false;
      cel::ValueList keys;
      a.keys(keys);
      for (const Value& k : keys) {
        bool fa = false, fb = false;
        Value va = a.find(k, fa), vb = b.find(k, fb);
        if (!fb || !same(va, vb)) return false;
      }
      return true;
    }
    default:
      return cel::equals(a, b);
  }
}

struct Tally {
  int passed = 0, failed = 0, skipped = 0;
};

}  // namespace

int main(int argc, char** argv) {
  bool verbose = false;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--verbose" || a == "-v") verbose = true;
    else if (a == "--help" || a == "-h") {
      std::puts("usage: switchboard-cel-conformance [--verbose] FILE...");
      return 0;
    } else files.push_back(a);
  }
  if (files.empty()) {
    std::fputs("usage: switchboard-cel-conformance [--verbose] FILE...\n", stderr);
    return 2;
  }
  std::map<std::string, Tally> by_file;
  std::vector<std::string> order;
  std::vector<std::string> failures;
  std::map<std::string, int> skip_reasons;
  Tally total;
  for (const auto& path : files) {
    std::ifstream in(path);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", path.c_str());
      return 2;
    }
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.empty()) continue;
      json::Document doc;
      if (!doc.parse(line)) {
        std::fprintf(stderr, "%s:%d: %s\n", path.c_str(), lineno, doc.error().c_str());
        return 2;
      }
      auto field = [&](std::string_view k) { return doc.find_member(0, k); };
      std::string file(doc.string_value(field("file")));
      std::string section(doc.string_value(field("section")));
      std::string name(doc.string_value(field("name")));
      std::string expr(doc.string_value(field("expr")));
      if (!by_file.count(file)) order.push_back(file);
      Tally& t = by_file[file];
      std::string id = file + "/" + section + "/" + name;
      if (const char* why = skip_reason(file, section, name)) {
        ++t.skipped;
        ++total.skipped;
        skip_reasons[why]++;
        continue;
      }
      cel::Environment env;
      std::vector<std::pair<int, Value>> values;
      uint32_t b = field("bindings");
      std::string err;
      for (uint32_t c = json::Document::first_child(b), i = 0; i < doc.node(b).count; ++i) {
        uint32_t v = doc.node(c).next;
        Value val;
        if (!tagged(doc, v, val, err)) {
          std::fprintf(stderr, "%s:%d: %s\n", path.c_str(), lineno, err.c_str());
          return 2;
        }
        values.emplace_back(env.declare(std::string(doc.string_value(c))), std::move(val));
        c = doc.node(v).next;
      }
      uint32_t expect = field("expect");
      uint32_t expect_value = doc.find_member(expect, "value");
      Value expected;
      if (expect_value != 0 && !tagged(doc, expect_value, expected, err)) {
        std::fprintf(stderr, "%s:%d: %s\n", path.c_str(), lineno, err.c_str());
        return 2;
      }
      bool unchecked = doc.find_member(0, "disable_check") != 0;
      auto compiled = unchecked ? cel::Program::compile_unchecked(expr, env)
                                : cel::Program::compile(expr, env);
      Value got;
      std::string got_text;
      if (auto* d = std::get_if<cel::Diagnostic>(&compiled)) {
        got = Value::error(d->message);
        got_text = "compile error: " + d->message;
      } else {
        auto& program = std::get<cel::Program>(compiled);
        cel::Activation act(env);
        for (auto& [slot, v] : values) act.set(slot, v);
        got = program.evaluate(act);
        got_text = cel::debug_string(got);
      }
      bool ok = expect_value == 0 ? got.is_error() : same(got, expected);
      if (ok) {
        ++t.passed;
        ++total.passed;
      } else {
        ++t.failed;
        ++total.failed;
        failures.push_back(id + ": " + expr + "\n    expected " +
                           (expect_value == 0 ? std::string("an error") : cel::debug_string(expected)) +
                           ", got " + got_text);
      }
    }
  }
  std::printf("%-14s %8s %8s %8s\n", "file", "passed", "failed", "skipped");
  for (const auto& f : order) {
    const Tally& t = by_file[f];
    std::printf("%-14s %8d %8d %8d\n", f.c_str(), t.passed, t.failed, t.skipped);
  }
  if (!skip_reasons.empty()) {
    std::printf("\nskipped (unsupported, see docs/expressions.md):\n");
    for (const auto& [why, n] : skip_reasons) std::printf("  %4d  %s\n", n, why.c_str());
  }
  if (!failures.empty()) {
    std::printf("\nfailures:\n");
    size_t shown = verbose ? failures.size() : std::min<size_t>(failures.size(), 40);
    for (size_t i = 0; i < shown; ++i) std::printf("  %s\n", failures[i].c_str());
    if (shown < failures.size()) std::printf("  ... %zu more (--verbose)\n", failures.size() - shown);
  }
  std::printf("\n%d passed, %d failed, %d skipped\n", total.passed, total.failed, total.skipped);
  return total.failed == 0 ? 0 : 1;
}
