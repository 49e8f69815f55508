// libFuzzer target for the expression engine. The input is an expression, optionally
// followed by a NUL byte and a JSON event. The expression is compiled for the routing
// environment with small limits and, when it compiles, evaluated against the event (null
// when the JSON does not parse). Beyond "does not crash, leak or hang", it checks that
// diagnostics point inside the source, that evaluation is repeatable, and that detach()
// keeps a result's meaning.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "core/cel/diagnostic.h"
#include "core/cel/program.h"
#include "core/cel/value.h"
#include "core/json/document.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace cel = switchboard::cel;
namespace json = switchboard::json;

// Small enough that every input finishes in milliseconds, large enough for real filters.
cel::Limits FuzzLimits() {
  cel::Limits limits;
  limits.parse.max_bytes = 4096;
  limits.parse.max_depth = 64;
  limits.max_steps = 20'000;
  limits.max_regex_program = 1000;
  limits.max_string_bytes = 64 * 1024;
  return limits;
}

// Counts the elements of v, nested ones included, giving up past `budget`. Results may
// share structure, so the checks below that walk a whole value only run on small ones.
bool small_value(const cel::Value& v, int& budget) {
  if (v.kind() != cel::Kind::List && v.kind() != cel::Kind::Map) return true;
  budget -= static_cast<int>(v.size()) + 1;
  if (budget < 0) return false;
  if (v.kind() == cel::Kind::List) {
    cel::ValueList items;
    v.elements(items);
    for (const auto& item : items) {
      if (!small_value(item, budget)) return false;
    }
  } else {
    cel::ValueList keys;
    v.keys(keys);
    for (const auto& key : keys) {
      bool found = false;
      if (!small_value(v.find(key, found), budget)) return false;
    }
  }
  return true;
}

// Value::map requires unique keys; detach() must keep that promise for repeated JSON keys.
bool unique_keys(const cel::Value& v) {
  if (v.is_json()) return true;
  if (v.kind() == cel::Kind::List) {
    for (const auto& item : v.owned_list()) {
      if (!unique_keys(item)) return false;
    }
  } else if (v.kind() == cel::Kind::Map) {
    const cel::MapEntries& entries = v.owned_map();
    for (size_t i = 0; i < entries.size(); ++i) {
      for (size_t j = i + 1; j < entries.size(); ++j) {
        if (cel::equals(entries[i].first, entries[j].first)) return false;
      }
      if (!unique_keys(entries[i].second)) return false;
    }
  }
  return true;
}

// An object that repeats a key prints it twice, with its last value both times (lookups
// see the last one), while the detached copy keeps it once: their renderings differ.
bool repeats_a_key(const json::Document& doc) {
  for (uint32_t i = 0; i < doc.size(); ++i) {
    if (doc.node(i).type != json::Type::Object) continue;
    std::set<std::string_view> keys;
    uint32_t key = json::Document::first_child(i);
    for (uint32_t m = 0; m < doc.node(i).count; ++m) {
      if (!keys.insert(doc.string_value(key)).second) return true;
      key = doc.node(key + 1).next;
    }
  }
  return false;
}

void check_diagnostic(std::string_view source, const cel::Diagnostic& d) {
  FUZZ_CHECK(!d.message.empty());
  FUZZ_CHECK(d.offset <= source.size());
  FUZZ_CHECK(d.line >= 1 && d.column >= 1);
  FUZZ_CHECK(d.column <= d.offset + 1);
  const std::string rendered = d.render(source);
  FUZZ_CHECK(rendered.find(d.message) != std::string::npos);
  // The caret line is the last one and ends in the caret.
  FUZZ_CHECK(!rendered.empty() && rendered.back() == '^');
}

void run(const cel::Program& program, const cel::Activation& activation, bool repeated_keys) {
  const cel::Value first = program.evaluate(activation);
  const cel::Value second = program.evaluate(activation);
  FUZZ_CHECK(first.kind() == second.kind());
  if (first.is_error()) {
    FUZZ_CHECK(first.text() == second.text());
    return;
  }
  int budget = 10'000;
  if (!small_value(first, budget)) return;
  const std::string text = cel::debug_string(first);
  FUZZ_CHECK(cel::debug_string(second) == text);
  const cel::Value detached = first.detach();
  FUZZ_CHECK(!detached.is_json());
  FUZZ_CHECK(detached.kind() == first.kind());
  FUZZ_CHECK(unique_keys(detached));
  if (!repeated_keys) FUZZ_CHECK(cel::debug_string(detached) == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view source = input.substr(0, nul);
  const std::string_view event_text =
      nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);

  const cel::Environment& env = cel::Environment::routing();
  const cel::Limits limits = FuzzLimits();
  auto compiled = cel::Program::compile(source, env, limits);
  if (auto* d = std::get_if<cel::Diagnostic>(&compiled)) {
    check_diagnostic(source, *d);
    // The lenient mode turns unknown names into evaluation errors: run that path too.
    compiled = cel::Program::compile_unchecked(source, env, limits);
    if (auto* lenient = std::get_if<cel::Diagnostic>(&compiled)) {
      check_diagnostic(source, *lenient);
      return 0;
    }
  }
  const cel::Program& program = std::get<cel::Program>(compiled);
  FUZZ_CHECK(program.source() == source);

  json::Limits json_limits;
  json_limits.max_depth = 64;
  json::Document doc;
  const bool parsed = !event_text.empty() && doc.parse(event_text, json_limits);

  cel::Activation activation(env);
  activation.set(env.slot("event"),
                 parsed ? cel::Value::json(&doc, json::Document::root()) : cel::Value::null());
  activation.set(env.slot("subject"), cel::Value::string("a.b"));
  activation.set(env.slot("headers"),
                 cel::Value::map({{cel::Value::string("k"), cel::Value::string("v")}}));
  run(program, activation, parsed && repeats_a_key(doc));
  return 0;
}
