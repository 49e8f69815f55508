#include "core/route/transform_tests.h"

#include "core/json/document.h"

namespace switchboard::route {

namespace {

std::string diff_nodes(const json::Document& a, uint32_t x, const json::Document& b, uint32_t y,
                       const std::string& path) {
  const json::Node& na = a.node(x);
  const json::Node& nb = b.node(y);
  auto describe = [&]() {
    return "at " + (path.empty() ? std::string("$") : path) + ": expected " +
           std::string(a.raw(x)) + ", got " + std::string(b.raw(y));
  };
  if (na.type != nb.type) return describe();
  switch (na.type) {
    case json::Type::Number: {
      // Integers past 2^53 can differ where their doubles do not, and a mangled 64-bit id
      // must fail the test.
      int64_t si = 0, sj = 0;
      uint64_t ui = 0, uj = 0;
      if (a.int64_value(x, si) && b.int64_value(y, sj)) return si == sj ? "" : describe();
      if (a.uint64_value(x, ui) && b.uint64_value(y, uj)) return ui == uj ? "" : describe();
      return a.number_value(x) == b.number_value(y) ? "" : describe();
    }
    case json::Type::String:
      return a.string_value(x) == b.string_value(y) ? "" : describe();
    case json::Type::Array: {
      if (na.count != nb.count) {
        return "at " + (path.empty() ? std::string("$") : path) + ": expected " +
               std::to_string(na.count) + " elements, got " + std::to_string(nb.count);
      }
      uint32_t cx = json::Document::first_child(x), cy = json::Document::first_child(y);
      for (uint32_t i = 0; i < na.count; ++i) {
        std::string d = diff_nodes(a, cx, b, cy, path + "[" + std::to_string(i) + "]");
        if (!d.empty()) return d;
        cx = a.node(cx).next;
        cy = b.node(cy).next;
      }
      return "";
    }
    case json::Type::Object: {
      uint32_t k = json::Document::first_child(x);
      for (uint32_t i = 0; i < na.count; ++i) {
        std::string_view key = a.string_value(k);
        uint32_t v = a.node(k).next;
        uint32_t other = b.find_member(y, key);
        std::string sub = path + "." + std::string(key);
        if (other == 0) return "at " + sub + ": missing (expected " + std::string(a.raw(v)) + ")";
        std::string d = diff_nodes(a, v, b, other, sub);
        if (!d.empty()) return d;
        k = a.node(v).next;
      }
      k = json::Document::first_child(y);
      for (uint32_t i = 0; i < nb.count; ++i) {
        std::string_view key = b.string_value(k);
        uint32_t v = b.node(k).next;
        if (a.find_member(x, key) == 0) {
          return "at " + path + "." + std::string(key) + ": unexpected field (got " +
                 std::string(b.raw(v)) + ")";
        }
        k = b.node(v).next;
      }
      return "";
    }
    default:
      return "";
  }
}

}  // namespace

std::string json_difference(std::string_view expected, std::string_view actual) {
  json::Document a, b;
  if (!a.parse(expected)) return "expected value is not JSON: " + a.error();
  if (!b.parse(actual)) return "output is not JSON: " + b.error() + " (got " + std::string(actual) + ")";
  return diff_nodes(a, 0, b, 0, "");
}

std::vector<TransformTestResult> run_transform_tests(const RouteTable& table, Processor& processor) {
  std::vector<TransformTestResult> results;
  for (const auto& t : table.transforms()) {
    for (const auto& tc : t.spec.tests) {
      TransformTestResult r;
      r.transform = t.spec.name;
      r.test = tc.name;
      Message msg{tc.input.subject, &tc.input.headers, tc.input.payload};
      std::string payload, error;
      bool ok = processor.run_steps(t.steps, t.needs_json, msg, payload, error);
      if (tc.expect_error) {
        if (ok) {
          r.difference = "expected an error containing '" + *tc.expect_error + "', got output " + payload;
        } else if (error.find(*tc.expect_error) == std::string::npos) {
          r.difference = "expected an error containing '" + *tc.expect_error + "', got: " + error;
        } else {
          r.passed = true;
        }
      } else if (!ok) {
        r.difference = "failed: " + error;
      } else {
        r.difference = json_difference(*tc.expect_json, payload);
        r.passed = r.difference.empty();
      }
      results.push_back(std::move(r));
    }
  }
  return results;
}

}  // namespace switchboard::route
