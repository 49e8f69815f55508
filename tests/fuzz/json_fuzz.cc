// libFuzzer target for switchboard::json::Document. Beyond "does not crash", it checks
// the structural promises of the node vector, that decoded strings survive
// append_quoted + parse unchanged, and that a reused Document behaves like a fresh one.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "core/json/document.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using switchboard::json::Document;
using switchboard::json::Limits;
using switchboard::json::Node;
using switchboard::json::Type;

// A deliberately naive UTF-8 validator, decoding each code point and checking its range,
// to cross-check the table-driven one.
bool reference_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    size_t length;
    uint32_t code_point;
    uint32_t minimum;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, code_point = lead & 0x1Fu, minimum = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, code_point = lead & 0x0Fu, minimum = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, code_point = lead & 0x07u, minimum = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (c & 0x3Fu);
    }
    if (code_point < minimum || code_point > 0x10FFFF) return false;
    if (code_point >= 0xD800 && code_point <= 0xDFFF) return false;
    i += length;
  }
  return true;
}

bool same_nodes(const Document& a, const Document& b) {
  if (a.size() != b.size()) return false;
  for (uint32_t i = 0; i < a.size(); ++i) {
    const Node& x = a.node(i);
    const Node& y = b.node(i);
    if (x.type != y.type || x.escaped != y.escaped || x.integral != y.integral ||
        x.begin != y.begin || x.end != y.end || x.count != y.count || x.next != y.next) {
      return false;
    }
    if (x.type == Type::String && a.string_value(i) != b.string_value(i)) return false;
  }
  return true;
}

void check_string(const Document& doc, uint32_t i) {
  const Node& n = doc.node(i);
  const std::string_view raw = doc.raw(i);
  FUZZ_CHECK(raw.size() >= 2 && raw.front() == '"' && raw.back() == '"');
  const std::string_view value = doc.string_value(i);
  FUZZ_CHECK(value.size() == n.str_len);
  if (!n.escaped) {
    FUZZ_CHECK(n.str_off == n.begin + 1 && n.str_off + n.str_len == n.end - 1);
    FUZZ_CHECK(value == raw.substr(1, raw.size() - 2));
  } else {
    FUZZ_CHECK(value.size() <= raw.size() - 2);  // decoding never lengthens
  }
  FUZZ_CHECK(switchboard::json::valid_utf8(value));

  static Document reparsed;
  std::string quoted;
  switchboard::json::append_quoted(quoted, value);
  FUZZ_CHECK(reparsed.parse(quoted));
  FUZZ_CHECK(reparsed.size() == 1 && reparsed.node(0).type == Type::String);
  FUZZ_CHECK(reparsed.string_value(0) == value);
}

// Checks node i and its subtree; returns the index after it.
uint32_t check_subtree(const Document& doc, uint32_t i) {
  FUZZ_CHECK(i < doc.size());
  const Node& n = doc.node(i);
  FUZZ_CHECK(n.begin < n.end && n.end <= doc.source().size());
  FUZZ_CHECK(n.next > i && n.next <= doc.size());
  switch (n.type) {
    case Type::Null: FUZZ_CHECK(doc.raw(i) == "null"); break;
    case Type::True: FUZZ_CHECK(doc.raw(i) == "true"); break;
    case Type::False: FUZZ_CHECK(doc.raw(i) == "false"); break;
    case Type::Number: {
      const double value = doc.number_value(i);
      FUZZ_CHECK(value == value);  // never NaN
      int64_t as_int = 0;
      uint64_t as_uint = 0;
      const bool fits = doc.int64_value(i, as_int) || doc.uint64_value(i, as_uint);
      if (!n.integral) FUZZ_CHECK(!fits);
      if (n.integral && doc.raw(i).size() <= 18) FUZZ_CHECK(doc.int64_value(i, as_int));
      break;
    }
    case Type::String: check_string(doc, i); break;
    case Type::Array:
    case Type::Object: {
      FUZZ_CHECK(doc.raw(i).front() == (n.type == Type::Array ? '[' : '{'));
      FUZZ_CHECK(doc.raw(i).back() == (n.type == Type::Array ? ']' : '}'));
      uint32_t child = Document::first_child(i);
      uint32_t children = 0;
      while (child < n.next) {
        const Node& c = doc.node(child);
        FUZZ_CHECK(c.begin > n.begin && c.end < n.end);
        if (n.type == Type::Object && children % 2 == 0) FUZZ_CHECK(c.type == Type::String);
        child = check_subtree(doc, child);
        ++children;
      }
      FUZZ_CHECK(child == n.next);
      FUZZ_CHECK(children == (n.type == Type::Array ? n.count : 2 * n.count));
      if (n.type == Type::Object && n.count > 0) {
        // The key of the first member is always found, at the last member with that key.
        const uint32_t found = doc.find_member(i, doc.string_value(i + 1));
        FUZZ_CHECK(found > i + 1 && found < n.next);
        FUZZ_CHECK(doc.string_value(found - 1) == doc.string_value(i + 1));
      }
      break;
    }
  }
  return n.next;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  FUZZ_CHECK(switchboard::json::valid_utf8(input) == reference_valid_utf8(input));

  Limits limits;
  limits.max_depth = 64;
  // One long-lived Document, as the router uses it, and one fresh per input: they must
  // agree, which catches state leaking from one parse into the next.
  static Document reused;
  Document fresh;
  const bool ok = reused.parse(input, limits);
  FUZZ_CHECK(fresh.parse(input, limits) == ok);
  FUZZ_CHECK(reused.error() == fresh.error());

  if (!ok) {
    FUZZ_CHECK(reused.empty());
    FUZZ_CHECK(!reused.error().empty());
    return 0;
  }
  FUZZ_CHECK(reused.error().empty());
  FUZZ_CHECK(reused.source() == input);
  FUZZ_CHECK(same_nodes(reused, fresh));
  // Outside strings JSON is ASCII and strings were validated, so the whole input is UTF-8.
  FUZZ_CHECK(switchboard::json::valid_utf8(input));
  FUZZ_CHECK(check_subtree(reused, Document::root()) == reused.size());
  return 0;
}
