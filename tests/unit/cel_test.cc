// Unit tests for the expression engine, for what the shared conformance vectors cannot
// express: compile diagnostics and their rendering, resource limits, compiled regexes,
// JSON-backed values, headers, time zones, and regressions found by fuzzing.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "core/cel/diagnostic.h"
#include "core/cel/program.h"
#include "core/cel/time.h"
#include "core/cel/value.h"
#include "core/json/document.h"

namespace switchboard::cel {
namespace {

// The routing environment's slots, looked up rather than assumed.
int Slot(std::string_view name) {
  const int slot = Environment::routing().slot(name);
  EXPECT_GE(slot, 0) << name;
  return slot;
}

Value Headers() {
  return Value::map({{Value::string("x-tenant"), Value::string("acme")},
                     {Value::string("content-type"), Value::string("application/json")},
                     {Value::string("x-pattern"), Value::string("(unclosed")}});
}

struct Bindings {
  Value event;  // null unless a test binds one
  std::string subject = "orders.eu.created";
  Value headers = Headers();
};

Bindings WithEvent(Value event) {
  Bindings b;
  b.event = std::move(event);
  return b;
}
Bindings WithSubject(std::string subject) {
  Bindings b;
  b.subject = std::move(subject);
  return b;
}
Bindings WithHeaders(Value headers) {
  Bindings b;
  b.headers = std::move(headers);
  return b;
}

Activation Bind(const Bindings& b) {
  Activation act(Environment::routing());
  act.set(Slot("event"), b.event);
  act.set(Slot("subject"), Value::string(b.subject));
  act.set(Slot("headers"), b.headers);
  return act;
}

Program MustCompile(std::string_view source, const Limits& limits = {}) {
  auto compiled = Program::compile(source, Environment::routing(), limits);
  if (auto* d = std::get_if<Diagnostic>(&compiled)) {
    ADD_FAILURE() << "compile failed: " << d->render(source);
    return std::get<Program>(Program::compile("null", Environment::routing()));
  }
  return std::move(std::get<Program>(compiled));
}

Diagnostic MustFail(std::string_view source, const Limits& limits = {}) {
  auto compiled = Program::compile(source, Environment::routing(), limits);
  if (!std::holds_alternative<Diagnostic>(compiled)) {
    ADD_FAILURE() << "expected a compile error for: " << source.substr(0, 200);
    return Diagnostic{};
  }
  return std::get<Diagnostic>(compiled);
}

Value Eval(std::string_view source, const Bindings& b = {}, const Limits& limits = {}) {
  return MustCompile(source, limits).evaluate(Bind(b));
}

// Evaluates a boolean expression; anything else (an error included) fails the test.
bool True(std::string_view source, const Bindings& b = {}) {
  const Value v = Eval(source, b);
  EXPECT_EQ(v.kind(), Kind::Bool) << source << " => " << debug_string(v);
  return v.kind() == Kind::Bool && v.bool_value();
}

std::string ErrorOf(std::string_view source, const Bindings& b = {}, const Limits& limits = {}) {
  const Value v = Eval(source, b, limits);
  EXPECT_TRUE(v.is_error()) << source.substr(0, 200) << " => " << debug_string(v);
  return std::string(v.text());
}

std::string Repeat(std::string_view first, std::string_view sep, std::string_view item, int n) {
  std::string out(first);
  for (int i = 1; i < n; ++i) {
    out += sep;
    out += item;
  }
  return out;
}

// "[1, 2, ..., n]"
std::string Range(int n) {
  std::string out = "[";
  for (int i = 1; i <= n; ++i) out += (i > 1 ? ", " : "") + std::to_string(i);
  return out + "]";
}

// ---------------------------------------------------------------------------------------
// Compile diagnostics

TEST(CelDiagnostics, UndeclaredVariableSuggestsDeclaredOne) {
  const Diagnostic d = MustFail("evnt.amount > 10");
  EXPECT_EQ(d.message, "undeclared reference to 'evnt' (did you mean 'event'?)");
  EXPECT_EQ(d.offset, 0u);
  EXPECT_EQ(d.line, 1u);
  EXPECT_EQ(d.column, 1u);
}

TEST(CelDiagnostics, UndeclaredVariableWithoutCloseMatchHasNoSuggestion) {
  EXPECT_EQ(MustFail("size(payload) > 0").message, "undeclared reference to 'payload'");
}

TEST(CelDiagnostics, ComprehensionVariablesAreCandidates) {
  EXPECT_EQ(MustFail("[1].exists(item, iten > 0)").message,
            "undeclared reference to 'iten' (did you mean 'item'?)");
  // Outside its macro the variable is gone again.
  EXPECT_EQ(MustFail("[1].exists(item, item > 0) && item > 0").message,
            "undeclared reference to 'item'");
}

TEST(CelDiagnostics, UnknownFunctionSuggestsCloseName) {
  const Diagnostic d = MustFail("subject.startswith('orders.')");
  EXPECT_EQ(d.message, "undeclared reference to function 'startswith' (did you mean 'startsWith'?)");
  EXPECT_EQ(d.column, 8u);  // the '.' of the call
  EXPECT_EQ(MustFail("sise(subject) > 1").message,
            "undeclared reference to function 'sise' (did you mean 'size'?)");
  EXPECT_EQ(MustFail("frobnicate(subject)").message,
            "undeclared reference to function 'frobnicate'");
}

TEST(CelDiagnostics, FunctionUsedWithWrongCallStyle) {
  EXPECT_EQ(MustFail("startsWith(subject, 'a')").message,
            "undeclared reference to function 'startsWith' as a global function");
  // The closest name is the function itself: no suggestion.
  EXPECT_EQ(MustFail("subject.int()").message,
            "undeclared reference to function 'int' as a method");
}

TEST(CelDiagnostics, WrongArity) {
  EXPECT_EQ(MustFail("subject.startsWith('a', 'b')").message, "'startsWith' takes 1 argument, not 2");
  EXPECT_EQ(MustFail("'abc'.substring()").message, "'substring' takes 1 to 2 arguments, not 0");
  EXPECT_EQ(MustFail("size()").message, "'size' takes 1 argument, not 0");
  EXPECT_EQ(MustFail("'a'.replace('a')").message, "'replace' takes 2 to 3 arguments, not 1");
  EXPECT_EQ(MustFail("int(1, 2)").message, "'int' takes 1 argument, not 2");
}

TEST(CelDiagnostics, SyntaxErrorOnThirdLine) {
  const std::string source =
      "event.amount > 10 &&\n"
      "  subject.startsWith('orders.') &&\n"
      "  headers['x'] = 'y'";
  const Diagnostic d = MustFail(source);
  EXPECT_EQ(d.message, "unexpected '=' (did you mean '=='?)");
  EXPECT_EQ(d.line, 3u);
  EXPECT_EQ(d.column, 16u);
  EXPECT_EQ(d.offset, source.find(" = ") + 1);
  EXPECT_EQ(d.render(source),
            "3:16: unexpected '=' (did you mean '=='?)\n"
            " |   headers['x'] = 'y'\n"
            " |                ^");
}

TEST(CelDiagnostics, ColumnsCountCodePointsNotBytes) {
  const std::string source = "'héllo' == subject &&\n'ü' + $";
  const Diagnostic d = MustFail(source);
  EXPECT_EQ(d.message, "unexpected character '$'");
  EXPECT_EQ(d.line, 2u);
  EXPECT_EQ(d.column, 7u);
  EXPECT_EQ(d.offset, source.size() - 1);  // byte offset: 'ü' is two bytes
  EXPECT_EQ(d.render(source),
            "2:7: unexpected character '$'\n"
            " | 'ü' + $\n"
            " |       ^");
}

TEST(CelDiagnostics, ErrorAtEndOfInputPointsPastTheLastCharacter) {
  const std::string source = "subject == 'a' ||\n  event.x +";
  const Diagnostic d = MustFail(source);
  EXPECT_EQ(d.message, "unexpected end of expression");
  EXPECT_EQ(d.line, 2u);
  EXPECT_EQ(d.column, 12u);
  EXPECT_EQ(d.render(source),
            "2:12: unexpected end of expression\n"
            " |   event.x +\n"
            " |            ^");
}

TEST(CelDiagnostics, CheckerErrorsOnLaterLinesRenderTheirLine) {
  const std::string source = "has(event.a) &&\n    evnt.b == 1";
  const Diagnostic d = MustFail(source);
  EXPECT_EQ(d.render(source),
            "2:5: undeclared reference to 'evnt' (did you mean 'event'?)\n"
            " |     evnt.b == 1\n"
            " |     ^");
}

TEST(CelDiagnostics, UnterminatedStringPointsAtItsStart) {
  const std::string source = "subject == 'orders";
  const Diagnostic d = MustFail(source);
  EXPECT_EQ(d.message, "unterminated string literal");
  EXPECT_EQ(d.column, 12u);
}

// ---------------------------------------------------------------------------------------
// Limits

TEST(CelLimits, SourceLongerThanMaxBytesIsRefused) {
  Limits limits;
  limits.parse.max_bytes = 100;
  const std::string ok = "'" + std::string(98, 'a') + "'";  // exactly 100 bytes
  EXPECT_EQ(ok.size(), 100u);
  EXPECT_EQ(Eval(ok, {}, limits).text(), std::string(98, 'a'));
  const std::string long_source = "'" + std::string(99, 'a') + "'";
  const Diagnostic d = MustFail(long_source, limits);
  EXPECT_EQ(d.message, "expression of 101 bytes exceeds the limit of 100");
  EXPECT_EQ(d.line, 1u);
  EXPECT_EQ(d.column, 1u);
}

TEST(CelLimits, DeepParenthesesAndBracketsAreRefused) {
  const std::string parens = std::string(200, '(') + "1" + std::string(200, ')');
  EXPECT_EQ(MustFail(parens).message, "expression nested deeper than 128 levels");
  const std::string brackets = std::string(200, '[') + std::string(200, ']');
  EXPECT_EQ(MustFail(brackets).message, "expression nested deeper than 128 levels");
  const std::string nots = std::string(300, '!') + "true";
  EXPECT_EQ(MustFail(nots).message, "expression nested deeper than 128 levels");

  // Moderate nesting is fine.
  const std::string ok = std::string(20, '(') + "1" + std::string(20, ')');
  EXPECT_EQ(Eval(ok).int_value(), 1);
  const Value nested = Eval(std::string(20, '[') + std::string(20, ']'));
  ASSERT_EQ(nested.kind(), Kind::List);
  EXPECT_EQ(nested.size(), 1u);

  Limits tight;
  tight.parse.max_depth = 8;
  EXPECT_EQ(MustFail("[[[[[[[[[1]]]]]]]]]", tight).message, "expression nested deeper than 8 levels");
}

TEST(CelLimits, LongLeftDeepChainIsRefusedNotOverflowingTheStack) {
  Limits limits;
  limits.parse.max_bytes = 1 << 20;
  const std::string sum = Repeat("1", "+", "1", 5000);
  const Diagnostic d = MustFail(sum, limits);
  EXPECT_EQ(d.message, "expression nested deeper than 128 levels");
  // The same chain within the depth limit evaluates.
  EXPECT_EQ(Eval(Repeat("1", "+", "1", 100)).int_value(), 100);
  // Member chains grow the tree the same way.
  EXPECT_EQ(MustFail(Repeat("event", ".", "a", 5000), limits).message,
            "expression nested deeper than 128 levels");
}

TEST(CelLimits, LongLogicalChainsAreBalancedAndEvaluate) {
  Environment env;
  const int a = env.declare("a");
  Limits limits;
  limits.parse.max_bytes = 1 << 20;
  for (const char* op : {" || ", " && "}) {
    const std::string source = Repeat("a", op, "a", 10000);
    auto compiled = Program::compile(source, env, limits);
    ASSERT_TRUE(std::holds_alternative<Program>(compiled))
        << std::get<Diagnostic>(compiled).message;
    const Program& p = std::get<Program>(compiled);
    for (bool value : {false, true}) {
      Activation act(env);
      act.set(a, Value::boolean(value));
      const Value v = p.evaluate(act);
      ASSERT_EQ(v.kind(), Kind::Bool) << debug_string(v);
      EXPECT_EQ(v.bool_value(), value);
    }
  }
  // Evaluating every term of the chain costs steps: a small budget stops it.
  limits.max_steps = 1000;
  auto compiled = Program::compile(Repeat("a", " || ", "a", 10000), env, limits);
  ASSERT_TRUE(std::holds_alternative<Program>(compiled));
  Activation act(env);
  act.set(a, Value::boolean(false));
  const Value v = std::get<Program>(compiled).evaluate(act);
  ASSERT_TRUE(v.is_error());
  EXPECT_EQ(v.text(), "evaluation exceeded its budget of 1000 steps");
}

TEST(CelLimits, NestedMapsRunOutOfBudget) {
  const std::string source = Range(200) + ".map(x, " + Range(200) + ".map(y, x * y))";
  Limits limits;
  limits.max_steps = 5000;
  const auto start = std::chrono::steady_clock::now();
  const Value v = Eval(source, {}, limits);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_TRUE(v.is_error()) << debug_string(v);
  EXPECT_EQ(v.text(), "evaluation exceeded its budget of 5000 steps");

  // With enough budget the same expression completes.
  limits.max_steps = 10'000'000;
  const Value full = Eval(source, {}, limits);
  ASSERT_EQ(full.kind(), Kind::List);
  ASSERT_EQ(full.size(), 200u);
  ASSERT_EQ(full.element(199).size(), 200u);
  EXPECT_EQ(full.element(199).element(199).int_value(), 40000);
  EXPECT_EQ(full.element(2).element(4).int_value(), 15);
}

TEST(CelLimits, ErrorsAreAbsorbedByLogicalOperators) {
  EXPECT_FALSE(True("false && (1/0 > 0)"));
  EXPECT_TRUE(True("(1/0 > 0) || true"));
  EXPECT_FALSE(True("(1/0 > 0) && false"));
  EXPECT_TRUE(True("true || (1/0 > 0)"));
  EXPECT_EQ(ErrorOf("(1/0 > 0) && true"), "division by zero");
  EXPECT_EQ(ErrorOf("false || (1/0 > 0)"), "division by zero");
  EXPECT_EQ(ErrorOf("event.missing || false", WithEvent(Value::map({}))), "no such key: 'missing'");
  // The macros absorb errors the same way.
  EXPECT_TRUE(True("[0, 1].exists(x, 1 / x == 1)"));
  EXPECT_FALSE(True("[0, 2].all(x, 1 / x == 1)"));
  EXPECT_EQ(ErrorOf("[0].all(x, 1 / x == 1)"), "division by zero");
  EXPECT_EQ(ErrorOf("[0, 1].exists_one(x, 1 / x == 1)"), "division by zero");
}

TEST(CelLimits, BudgetExhaustionIsNotAbsorbed) {
  Limits limits;
  limits.max_steps = 1000;
  const std::string big = Range(200) + ".map(x, " + Range(200) + ".map(y, x * y))";
  const std::string budget = "evaluation exceeded its budget of 1000 steps";
  EXPECT_EQ(ErrorOf("size(" + big + ") > 0 || true", {}, limits), budget);
  EXPECT_EQ(ErrorOf("size(" + big + ") > 0 && false", {}, limits), budget);
  EXPECT_EQ(ErrorOf("false && true || size(" + big + ") > 0 || true", {}, limits), budget);
  EXPECT_EQ(ErrorOf(Range(200) + ".exists(x, size(" + Range(200) + ".map(y, y)) == 0) || true", {},
                    limits),
            budget);
  EXPECT_EQ(ErrorOf("(size(" + big + ") > 0 ? 1 : 2) == 1 || true", {}, limits), budget);
  // A short circuit before the expensive part is not an exhaustion.
  EXPECT_TRUE(True("true || size(" + big + ") > 0"));
}

// ---------------------------------------------------------------------------------------
// Regular expressions

TEST(CelRegex, LiteralPatternIsCompiledOnceAndReused) {
  const Program p = MustCompile(R"(subject.matches('^orders\\.'))");
  for (const auto& [subject, expected] :
       std::initializer_list<std::pair<const char*, bool>>{{"orders.eu.created", true},
                                                           {"ordersXeu", false},
                                                           {"archive.orders.x", false},
                                                           {"orders.", true}}) {
    const Value v = p.evaluate(Bind(WithSubject(subject)));
    ASSERT_EQ(v.kind(), Kind::Bool) << debug_string(v);
    EXPECT_EQ(v.bool_value(), expected) << subject;
  }
  // The global form behaves the same.
  EXPECT_TRUE(True(R"(matches(subject, 'eu\\.created$'))"));
}

TEST(CelRegex, InvalidLiteralPatternIsACompileError) {
  const std::string source = "subject.matches('(unclosed')";
  const Diagnostic d = MustFail(source);
  EXPECT_EQ(d.message, "invalid regular expression: missing ): (unclosed");
  EXPECT_EQ(d.column, 17u);  // the pattern literal
}

TEST(CelRegex, OversizedLiteralPatternIsACompileError) {
  Limits limits;
  limits.max_regex_program = 20;
  const Diagnostic d = MustFail("subject.matches('a{50}')", limits);
  EXPECT_EQ(d.message.rfind("regular expression too large (program size ", 0), 0u) << d.message;
  EXPECT_NE(d.message.find(", limit 20)"), std::string::npos) << d.message;
}

TEST(CelRegex, InvalidDynamicPatternIsAnEvaluationError) {
  EXPECT_EQ(ErrorOf("subject.matches(headers['x-pattern'])"),
            "invalid regular expression: missing ): (unclosed");
  EXPECT_EQ(ErrorOf("subject.matches('[' + 'a')"), "invalid regular expression: missing ]: [a");
  // An error a logical operator can absorb, like any other.
  EXPECT_TRUE(True("subject.matches(headers['x-pattern']) || true"));
  EXPECT_TRUE(True("subject.matches('^' + 'orders')"));
}

// ---------------------------------------------------------------------------------------
// JSON-backed values

constexpr std::string_view kEventJson = R"({
  "a": {"b": 1},
  "n": 3,
  "name": "widget",
  "items": [{"price": 5}, {"price": 12.5, "sku": "b-2"}],
  "tags": ["x", "y"],
  "big": 12345678901234567890,
  "price": 1.50,
  "x": null,
  "flag": true,
  "text": "caf\u00e9"
})";

class CelJson : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(doc_.parse(kEventJson)) << doc_.error(); }
  Bindings B() const { return WithEvent(Value::json(&doc_, json::Document::root())); }
  json::Document doc_;
};

TEST_F(CelJson, FieldSelection) {
  EXPECT_TRUE(True("event.a.b == 1", B()));
  EXPECT_TRUE(True("event.name == 'widget'", B()));
  EXPECT_TRUE(True("event['name'] == 'widget'", B()));
  EXPECT_TRUE(True("event.flag", B()));
  EXPECT_TRUE(True("event.x == null", B()));
  EXPECT_TRUE(True("event.text == 'café' && size(event.text) == 4", B()));
  const Value name = Eval("event.name", B());
  ASSERT_EQ(name.kind(), Kind::String);
  EXPECT_EQ(name.text(), "widget");
  // Borrowed: the text is the document's own, not a copy.
  EXPECT_GE(name.text().data(), doc_.source().data());
  EXPECT_LT(name.text().data(), doc_.source().data() + doc_.source().size());
}

TEST_F(CelJson, Has) {
  EXPECT_TRUE(True("has(event.a.b)", B()));
  EXPECT_FALSE(True("has(event.a.c)", B()));
  EXPECT_FALSE(True("has(event.missing)", B()));
  EXPECT_TRUE(True("has(event.x)", B()));  // present, even though null
  EXPECT_EQ(ErrorOf("has(event.a.b.c)", B()), "has() on a value of type double");
  EXPECT_EQ(ErrorOf("has(event.missing.c)", B()), "no such key: 'missing'");
}

TEST_F(CelJson, InOperator) {
  EXPECT_TRUE(True("'x' in event", B()));
  EXPECT_FALSE(True("'nope' in event", B()));
  EXPECT_FALSE(True("1 in event", B()));
  EXPECT_TRUE(True("'y' in event.tags", B()));
  EXPECT_FALSE(True("'z' in event.tags", B()));
  EXPECT_TRUE(True("12.5 in event.items.map(i, i.price)", B()));
}

TEST_F(CelJson, Indexing) {
  EXPECT_TRUE(True("event.tags[0] == 'x' && event.tags[1] == 'y'", B()));
  EXPECT_TRUE(True("event.tags[1u] == 'y' && event.tags[1.0] == 'y'", B()));
  EXPECT_TRUE(True("event.items[1].sku == 'b-2'", B()));
  EXPECT_EQ(ErrorOf("event.tags[2]", B()), "index 2 out of range for a list of size 2");
  EXPECT_EQ(ErrorOf("event.tags[-1]", B()), "index -1 out of range for a list of size 2");
  EXPECT_EQ(ErrorOf("event.tags[0.5]", B()), "list index is not an integer");
  EXPECT_EQ(ErrorOf("event.tags['a']", B()),
            "no matching overload for '_[_]' applied to (list, string)");
}

TEST_F(CelJson, SizesAndMacros) {
  EXPECT_EQ(Eval("size(event.items)", B()).int_value(), 2);
  EXPECT_EQ(Eval("event.tags.size()", B()).int_value(), 2);
  EXPECT_EQ(Eval("size(event)", B()).int_value(), 10);
  EXPECT_TRUE(True("event.items.exists(i, i.price > 10)", B()));
  EXPECT_FALSE(True("event.items.all(i, i.price > 10)", B()));
  EXPECT_TRUE(True("event.items.exists_one(i, i.price < 10)", B()));
  EXPECT_TRUE(True("event.items.filter(i, i.price > 10).size() == 1", B()));
  EXPECT_TRUE(True("event.items.map(i, i.price) == [5.0, 12.5]", B()));
  EXPECT_TRUE(True("event.items.map(i, i.price > 6, i.sku) == ['b-2']", B()));
  EXPECT_TRUE(True("event.a.exists(k, k == 'b')", B()));
  // 'sku' exists on one item only: the error is absorbed by the item that is true.
  EXPECT_TRUE(True("event.items.exists(i, i.sku == 'b-2')", B()));
  EXPECT_EQ(ErrorOf("event.items.all(i, i.sku == 'b-2')", B()), "no such key: 'sku'");
}

TEST_F(CelJson, NumbersAreDoubles) {
  EXPECT_TRUE(True("event.n == 3", B()));
  EXPECT_TRUE(True("event.n == 3u", B()));
  EXPECT_TRUE(True("type(event.n) == double", B()));
  EXPECT_TRUE(True("event.n > 2 && event.n < 3.5", B()));
  EXPECT_TRUE(True("int(event.n) + 1 == 4", B()));
  EXPECT_EQ(ErrorOf("event.n + 1", B()), "no matching overload for '_+_' applied to (double, int)");
  EXPECT_EQ(Eval("event.n + 1.0", B()).double_value(), 4.0);
}

TEST_F(CelJson, MissingFieldIsAnError) {
  EXPECT_EQ(ErrorOf("event.missing", B()), "no such key: 'missing'");
  EXPECT_EQ(ErrorOf("event['missing']", B()), "no such key: \"missing\"");
  EXPECT_EQ(ErrorOf("event.missing == 1", B()), "no such key: 'missing'");
  EXPECT_EQ(ErrorOf("event.name.first", B()), "cannot select field 'first' from a value of type string");
}

TEST_F(CelJson, RawJsonKeepsTheSourceText) {
  const Value big = Eval("event.big", B());
  ASSERT_EQ(big.kind(), Kind::Double);
  EXPECT_EQ(big.raw_json(), "12345678901234567890");
  EXPECT_EQ(big.double_value(), 12345678901234567890.0);
  const Value price = Eval("event.price", B());
  EXPECT_EQ(price.raw_json(), "1.50");
  EXPECT_EQ(price.double_value(), 1.5);
  EXPECT_EQ(Eval("event.items[1].price", B()).raw_json(), "12.5");
  EXPECT_EQ(Eval("dyn(event.price)", B()).raw_json(), "1.50");
  // A computed number has no source text.
  EXPECT_EQ(Eval("event.price + 0.0", B()).raw_json(), "");
  EXPECT_EQ(Eval("double(event.price)", B()).raw_json(), "");
  EXPECT_EQ(Eval("1.50").raw_json(), "");
}

TEST_F(CelJson, DetachProducesOwnedEqualValues) {
  const Value event = Eval("event", B());
  ASSERT_EQ(event.kind(), Kind::Map);
  ASSERT_TRUE(event.is_json());
  const Value detached = event.detach();
  EXPECT_FALSE(detached.is_json());
  EXPECT_TRUE(equals(event, detached));
  EXPECT_TRUE(equals(detached, event));
  EXPECT_EQ(debug_string(detached), debug_string(event));
  for (const char* expr : {"event.items", "event.name", "event.a", "event.tags", "event.price"}) {
    const Value v = Eval(expr, B());
    EXPECT_TRUE(equals(v, v.detach())) << expr;
  }
  const std::string before = debug_string(detached);

  // Owned values survive the document: reparse it with other content.
  ASSERT_TRUE(doc_.parse(R"({"other": [1, 2, 3], "name": "zzzzzz"})"));
  EXPECT_EQ(debug_string(detached), before);
  bool found = false;
  const Value name = detached.find(Value::string("name"), found);
  ASSERT_TRUE(found);
  EXPECT_EQ(name.text(), "widget");
  const Value items = detached.find(Value::string("items"), found);
  ASSERT_TRUE(found);
  ASSERT_EQ(items.owned_list().size(), 2u);
  const Value price = items.owned_list()[1].find(Value::string("price"), found);
  ASSERT_TRUE(found);
  EXPECT_EQ(price.double_value(), 12.5);
  EXPECT_EQ(price.raw_json(), "");  // the source text is gone with the document
}

TEST(CelJsonNull, NullPayloadIsNull) {
  json::Document doc;
  ASSERT_TRUE(doc.parse("null"));
  const Bindings b = WithEvent(Value::json(&doc, json::Document::root()));
  EXPECT_TRUE(True("event == null", b));
  EXPECT_TRUE(True("type(event) == null_type", b));
  EXPECT_EQ(ErrorOf("event.a", b), "cannot select field 'a' from a value of type null_type");
  EXPECT_EQ(ErrorOf("has(event.a)", b), "has() on a value of type null_type");
}

TEST(CelJsonScalars, TopLevelScalarsAndEmptyContainers) {
  json::Document doc;
  ASSERT_TRUE(doc.parse(R"("just text")"));
  EXPECT_TRUE(True("event == 'just text'", WithEvent(Value::json(&doc, 0))));
  ASSERT_TRUE(doc.parse("[]"));
  EXPECT_TRUE(True("size(event) == 0 && !event.exists(x, true) && event == []",
                   WithEvent(Value::json(&doc, 0))));
  ASSERT_TRUE(doc.parse("{}"));
  EXPECT_TRUE(True("size(event) == 0 && event == {}", WithEvent(Value::json(&doc, 0))));
}

// Iterating a JSON array must cost time linear in what is visited: element(i) alone walks
// i siblings, so an evaluator built on it is quadratic in the array's length.
TEST(CelJsonLarge, LongArraysAreIteratedInLinearTime) {
  constexpr int kItems = 200'000;
  std::string text = "{\"items\": [";
  for (int i = 0; i < kItems; ++i) text += (i ? ",7" : "7");
  text += "], \"last\": 8}";
  json::Document doc;
  ASSERT_TRUE(doc.parse(text));
  const Bindings b = WithEvent(Value::json(&doc, 0));
  Limits limits;
  limits.max_steps = 1'000'000;

  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Eval("event.items.exists(i, i == 8)", b, limits).bool_value(), false);
  EXPECT_EQ(Eval("event.items.all(i, i == 7)", b, limits).bool_value(), true);
  EXPECT_EQ(Eval("8 in event.items", b, limits).bool_value(), false);
  EXPECT_EQ(Eval("event.items == event.items", b, limits).bool_value(), true);
  EXPECT_EQ(Eval("size(event.items + [8])", b, limits).int_value(), kItems + 1);
  EXPECT_EQ(Eval("event.items.map(i, i).size()", b, limits).int_value(), kItems);
  // A small budget stops the loop early, instead of after visiting everything.
  limits.max_steps = 1000;
  EXPECT_EQ(Eval("event.items.exists(i, i == 8)", b, limits).text(),
            "evaluation exceeded its budget of 1000 steps");
  const Value detached = Value::json(&doc, 0).detach();
  EXPECT_TRUE(equals(detached, Value::json(&doc, 0)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

// ---------------------------------------------------------------------------------------
// Headers

TEST(CelHeaders, OwnedStringMap) {
  EXPECT_TRUE(True("headers['x-tenant'] == 'acme'"));
  EXPECT_TRUE(True("'content-type' in headers"));
  EXPECT_FALSE(True("'x-missing' in headers"));
  EXPECT_TRUE(True("headers.exists(k, k.startsWith('x-') && headers[k] == 'acme')"));
  EXPECT_TRUE(True("has(headers.`content-type`)"));
  EXPECT_EQ(ErrorOf("headers['x-missing']"), "no such key: \"x-missing\"");
  EXPECT_EQ(ErrorOf("headers[1]"), "no such key: 1");
  EXPECT_EQ(Eval("size(headers)").int_value(), 3);
  EXPECT_FALSE(True("headers['x-tenant'] == 'acme'",
                    WithHeaders(Value::map({{Value::string("x-tenant"), Value::string("other")}}))));
}

// ---------------------------------------------------------------------------------------
// Timestamps and durations

TEST(CelTime, TimestampRoundTrips) {
  for (const char* text : {"2024-03-10T06:59:59Z", "1970-01-01T00:00:00Z", "2024-01-02T03:04:05.123Z",
                           "2024-02-29T23:59:59.000000001Z", "0001-01-01T00:00:00Z",
                           "9999-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59.5Z"}) {
    const auto t = time::parse_timestamp(text);
    ASSERT_TRUE(t.has_value()) << text;
    EXPECT_EQ(time::format_timestamp(*t), text);
  }
  EXPECT_EQ(time::parse_timestamp("0001-01-01T00:00:00Z")->seconds, time::kMinTimestampSeconds);
  EXPECT_EQ(time::parse_timestamp("9999-12-31T23:59:59Z")->seconds, time::kMaxTimestampSeconds);
  const auto offset = time::parse_timestamp("2024-01-02T03:04:05+05:30");
  ASSERT_TRUE(offset.has_value());
  EXPECT_EQ(time::format_timestamp(*offset), "2024-01-01T21:34:05Z");
  const auto half = time::parse_timestamp("1969-12-31T23:59:59.5Z");
  EXPECT_EQ(half->seconds, -1);
  EXPECT_EQ(half->nanos, 500'000'000);
  for (const char* bad : {"2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-01-01T00:00:00",
                          "2024-01-01 00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z",
                          "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00.1234567891Z",
                          "10000-01-01T00:00:00Z", "2024-01-01T00:00:00+0530", ""}) {
    EXPECT_FALSE(time::parse_timestamp(bad).has_value()) << bad;
  }
}

TEST(CelTime, DurationRoundTrips) {
  const auto d = time::parse_duration("1h2m3.5s");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->seconds, 3723);
  EXPECT_EQ(d->nanos, 500'000'000);
  EXPECT_EQ(time::format_duration(*d), "3723.5s");
  const auto neg = time::parse_duration("-30ms");
  ASSERT_TRUE(neg.has_value());
  EXPECT_EQ(neg->seconds, 0);
  EXPECT_EQ(neg->nanos, -30'000'000);
  EXPECT_EQ(time::format_duration(*neg), "-0.03s");
  EXPECT_EQ(time::format_duration(*time::parse_duration("0")), "0s");
  EXPECT_EQ(time::format_duration(*time::parse_duration("1.000000001s")), "1.000000001s");
  EXPECT_EQ(time::format_duration(*time::parse_duration("-1h30m")), "-5400s");
  for (const char* text : {"3723.5s", "-0.03s", "0s", "1.000000001s", "-5400s", "315576000000s"}) {
    const auto parsed = time::parse_duration(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(time::format_duration(*parsed), text);
  }
  for (const char* bad : {"", "-", "1", "1x", "h", ".s", "315576000001s", "1.5.5s"}) {
    EXPECT_FALSE(time::parse_duration(bad).has_value()) << bad;
  }
}

TEST(CelTime, HoursAcrossDaylightSavingBoundaries) {
  // New York springs forward at 2024-03-10 07:00 UTC (02:00 EST -> 03:00 EDT).
  EXPECT_EQ(Eval("timestamp('2024-03-10T06:59:59Z').getHours('America/New_York')").int_value(), 1);
  EXPECT_EQ(Eval("timestamp('2024-03-10T07:00:00Z').getHours('America/New_York')").int_value(), 3);
  // And falls back at 2024-11-03 06:00 UTC (02:00 EDT -> 01:00 EST): 1 a.m. happens twice.
  EXPECT_EQ(Eval("timestamp('2024-11-03T05:59:59Z').getHours('America/New_York')").int_value(), 1);
  EXPECT_EQ(Eval("timestamp('2024-11-03T06:00:00Z').getHours('America/New_York')").int_value(), 1);
  EXPECT_EQ(Eval("timestamp('2024-11-03T06:00:00Z').getMinutes('America/New_York')").int_value(), 0);
  EXPECT_EQ(Eval("timestamp('2024-03-10T06:59:59Z').getDate('America/New_York')").int_value(), 10);
  EXPECT_EQ(Eval("timestamp('2024-03-10T03:00:00Z').getDate('America/New_York')").int_value(), 9);
  // Europe: 2024-03-31 01:00 UTC.
  EXPECT_EQ(Eval("timestamp('2024-03-31T00:59:59Z').getHours('Europe/Berlin')").int_value(), 1);
  EXPECT_EQ(Eval("timestamp('2024-03-31T01:00:00Z').getHours('Europe/Berlin')").int_value(), 3);

  const auto before = time::to_civil(*time::parse_timestamp("2024-03-10T06:59:59Z"), "America/New_York");
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->hour, 1);
  EXPECT_EQ(before->minute, 59);
  EXPECT_EQ(before->day_of_week, 0);  // Sunday
}

TEST(CelTime, FixedOffsetsAndUtc) {
  EXPECT_EQ(Eval("timestamp('2024-01-01T00:00:00Z').getHours('+05:30')").int_value(), 5);
  EXPECT_EQ(Eval("timestamp('2024-01-01T00:00:00Z').getMinutes('+05:30')").int_value(), 30);
  EXPECT_EQ(Eval("timestamp('2024-01-01T00:00:00Z').getHours('-08:00')").int_value(), 16);
  EXPECT_EQ(Eval("timestamp('2024-01-01T00:00:00Z').getFullYear('-08:00')").int_value(), 2023);
  EXPECT_EQ(Eval("timestamp('2024-01-01T00:00:00Z').getHours('UTC')").int_value(), 0);
  EXPECT_EQ(Eval("timestamp('2024-01-01T13:00:00Z').getHours()").int_value(), 13);
}

TEST(CelTime, UnknownZoneIsAnEvaluationError) {
  EXPECT_EQ(ErrorOf("timestamp('2024-01-01T00:00:00Z').getHours('Mars/Olympus_Mons')"),
            "unknown time zone 'Mars/Olympus_Mons'");
  EXPECT_EQ(ErrorOf("timestamp('2024-01-01T00:00:00Z').getHours('../../etc/passwd')"),
            "unknown time zone '../../etc/passwd'");
  EXPECT_EQ(ErrorOf("timestamp('2024-01-01T00:00:00Z').getHours('+25:00')"),
            "unknown time zone '+25:00'");
  // A directory of the zone database is not a zone (reading one used to throw).
  EXPECT_EQ(ErrorOf("timestamp('2024-01-01T00:00:00Z').getHours('America')"),
            "unknown time zone 'America'");
  EXPECT_EQ(ErrorOf("timestamp('2024-01-01T00:00:00Z').getHours('zone.tab')"),
            "unknown time zone 'zone.tab'");
  // As in Go's time.LoadLocation (and so cel-go), the empty name is UTC.
  EXPECT_EQ(Eval("timestamp('2024-01-01T13:00:00Z').getHours('')").int_value(), 13);
  EXPECT_FALSE(time::to_civil(Time{0, 0}, "No/Such_Zone").has_value());
}

TEST(CelTime, ZoneNameWithNulIsNotTruncated) {
  // A NUL ends a C path: without care this loads America/New_York.
  EXPECT_EQ(ErrorOf("timestamp('2024-07-01T12:00:00Z').getHours('America/New_York\\x00junk')"),
            std::string("unknown time zone 'America/New_York") + '\0' + "junk'");
}

TEST(CelTime, Arithmetic) {
  EXPECT_TRUE(True("timestamp('2024-01-01T00:00:00Z') + duration('36h') == "
                   "timestamp('2024-01-02T12:00:00Z')"));
  EXPECT_TRUE(True("timestamp('2024-01-02T00:00:00Z') - timestamp('2024-01-01T00:00:00Z') == "
                   "duration('24h')"));
  EXPECT_EQ(ErrorOf("timestamp('9999-12-31T23:59:59Z') + duration('1s')"), "timestamp out of range");
  EXPECT_EQ(Eval("string(duration('90m'))").text(), "5400s");
  EXPECT_EQ(Eval("string(timestamp('2024-01-01T00:00:00.250+01:00'))").text(),
            "2023-12-31T23:00:00.25Z");
}

// ---------------------------------------------------------------------------------------
// Strings beyond ASCII

TEST(CelStrings, CodePointIndexing) {
  EXPECT_TRUE(True("'héllo'.charAt(1) == 'é'"));
  EXPECT_TRUE(True("'héllo'.charAt(4) == 'o'"));
  EXPECT_TRUE(True("'héllo'.charAt(5) == ''"));
  EXPECT_EQ(ErrorOf("'héllo'.charAt(6)"), "index out of range: 6");
  EXPECT_TRUE(True("'😀a'.charAt(1) == 'a'"));
  EXPECT_TRUE(True("'héllo wörld'.substring(1, 4) == 'éll'"));
  EXPECT_TRUE(True("'héllo wörld'.substring(7) == 'örld'"));
  EXPECT_EQ(ErrorOf("'héllo'.substring(2, 1)"), "invalid substring range: start 2 > end 1");
  EXPECT_EQ(ErrorOf("'héllo'.substring(0, 6)"), "index out of range: 6");
  EXPECT_EQ(Eval("'héllo'.indexOf('l')").int_value(), 2);
  EXPECT_EQ(Eval("'héllo'.indexOf('l', 3)").int_value(), 3);
  EXPECT_EQ(Eval("'héllo'.indexOf('z')").int_value(), -1);
  EXPECT_EQ(Eval("'héllo'.lastIndexOf('l')").int_value(), 3);
  EXPECT_EQ(Eval("'héllo'.lastIndexOf('l', 2)").int_value(), 2);
  EXPECT_EQ(Eval("'日本語テキスト'.indexOf('語')").int_value(), 2);
  EXPECT_EQ(Eval("'a😀b😀c'.lastIndexOf('😀')").int_value(), 3);
  EXPECT_EQ(Eval("size('héllo')").int_value(), 5);
  EXPECT_EQ(Eval("size(b'h\\xc3\\xa9llo')").int_value(), 6);
  EXPECT_EQ(Eval("'héllo'.reverse()").text(), "olléh");
  EXPECT_EQ(Eval("'héllo'.upperAscii()").text(), "HéLLO");
  EXPECT_EQ(Eval("'\\u00a0héllo\\u2003'.trim()").text(), "héllo");
  EXPECT_TRUE(True("'a,é,c'.split(',') == ['a', 'é', 'c']"));
  EXPECT_TRUE(True("'hé'.split('') == ['h', 'é']"));
  EXPECT_EQ(Eval("'héé'.replace('é', 'e', 1)").text(), "heé");
  EXPECT_TRUE(True("'é' < 'z' == false"));  // byte order: U+00E9 sorts after 'z'
}

// ---------------------------------------------------------------------------------------
// Equality and ordering across numeric kinds

TEST(CelValues, HeterogeneousEquality) {
  EXPECT_TRUE(equals(Value::integer(1), Value::uinteger(1)));
  EXPECT_TRUE(equals(Value::integer(1), Value::dbl(1.0)));
  EXPECT_TRUE(equals(Value::uinteger(1), Value::dbl(1.0)));
  EXPECT_FALSE(equals(Value::integer(-1), Value::uinteger(std::numeric_limits<uint64_t>::max())));
  EXPECT_FALSE(equals(Value::integer(1), Value::dbl(1.5)));
  EXPECT_FALSE(equals(Value::dbl(NAN), Value::dbl(NAN)));
  EXPECT_FALSE(equals(Value::integer(1), Value::string("1")));
  EXPECT_FALSE(equals(Value::null(), Value::integer(0)));
  EXPECT_TRUE(equals(Value::null(), Value::null()));
  EXPECT_TRUE(equals(Value::list({Value::integer(1), Value::dbl(2.0)}),
                     Value::list({Value::uinteger(1), Value::integer(2)})));
  EXPECT_FALSE(equals(Value::list({Value::integer(1)}), Value::list({})));
  EXPECT_TRUE(True("1 == 1u && 1u == 1.0 && [1, 2] == [1u, 2.0] && {'a': 1} == {'a': 1.0}"));
  EXPECT_FALSE(True("1 == 1.5"));
  EXPECT_FALSE(True("double('NaN') == double('NaN')"));
  EXPECT_FALSE(True("[double('NaN')] == [double('NaN')]"));
}

TEST(CelValues, OrderingAcrossKinds) {
  bool ok = false;
  EXPECT_EQ(compare(Value::integer(-1), Value::uinteger(0), ok), -1);
  EXPECT_TRUE(ok);
  EXPECT_EQ(compare(Value::uinteger(std::numeric_limits<uint64_t>::max()),
                    Value::integer(std::numeric_limits<int64_t>::max()), ok),
            1);
  // Exact across int and uint, where a detour through double would say "equal".
  EXPECT_EQ(compare(Value::integer(std::numeric_limits<int64_t>::max()),
                    Value::uinteger(uint64_t{1} << 63), ok),
            -1);
  EXPECT_EQ(compare(Value::dbl(1.5), Value::integer(1), ok), 1);
  EXPECT_EQ(compare(Value::integer(2), Value::dbl(2.0), ok), 0);
  EXPECT_EQ(compare(Value::uinteger(3), Value::dbl(2.5), ok), 1);
  EXPECT_EQ(compare(Value::dbl(NAN), Value::integer(1), ok), 2);
  EXPECT_TRUE(ok);
  compare(Value::string("a"), Value::integer(1), ok);
  EXPECT_FALSE(ok);
  compare(Value::list({}), Value::list({}), ok);
  EXPECT_FALSE(ok);
  EXPECT_EQ(compare(Value::string("abc"), Value::string("abd"), ok), -1);
  EXPECT_TRUE(ok);
  EXPECT_EQ(compare(Value::boolean(true), Value::boolean(false), ok), 1);
  EXPECT_TRUE(True("-1 < 0u && 1u < 1.5 && 2.0 <= 2 && !(double('NaN') < 1)"));
  EXPECT_EQ(ErrorOf("'a' < 1"), "no matching overload for '_<_' applied to (string, int)");
}

TEST(CelValues, MapKeysMatchAcrossNumericKinds) {
  const Value m = Value::map({{Value::integer(1), Value::string("one")},
                              {Value::string("1"), Value::string("text")}});
  bool found = false;
  EXPECT_EQ(m.find(Value::uinteger(1), found).text(), "one");
  EXPECT_TRUE(found);
  EXPECT_EQ(m.find(Value::dbl(1.0), found).text(), "one");
  EXPECT_TRUE(found);
  EXPECT_EQ(m.find(Value::string("1"), found).text(), "text");
  EXPECT_TRUE(found);
  m.find(Value::dbl(1.5), found);
  EXPECT_FALSE(found);
  m.find(Value::integer(2), found);
  EXPECT_FALSE(found);
  EXPECT_TRUE(True("{1: 'one'}[1u] == 'one' && {1u: 'x'}[1] == 'x' && {2: 'two'}[2.0] == 'two'"));
  EXPECT_TRUE(True("1u in {1: 'a'} && 1.0 in {1: 'a'} && !(1.5 in {1: 'a'})"));
  EXPECT_EQ(ErrorOf("{1: 'a', 1u: 'b'}"), "duplicate map key 1u");
  EXPECT_EQ(ErrorOf("{1.5: 'a'}"), "unsupported map key type: double");
}

TEST(CelValues, TypeNames) {
  EXPECT_EQ(type_name(Value::integer(1)), "int");
  EXPECT_EQ(type_name(Value::timestamp({})), "google.protobuf.Timestamp");
  EXPECT_EQ(type_name(Kind::Null), "null_type");
  EXPECT_EQ(Eval("type(1u)").text(), "uint");
  EXPECT_TRUE(True("type(type(1)) == type && type(duration('1s')) == google.protobuf.Duration"));
}

TEST(CelPrograms, Reuse) {
  const Program p = MustCompile("subject.endsWith('.created')");
  EXPECT_EQ(p.source(), "subject.endsWith('.created')");
  EXPECT_TRUE(p.evaluate(Bind({})).bool_value());
  EXPECT_FALSE(p.evaluate(Bind(WithSubject("orders.eu.deleted"))).bool_value());
  // A copy shares the compiled tree and evaluates alike.
  const Program copy = p;
  EXPECT_TRUE(copy.evaluate(Bind({})).bool_value());
}

// ---------------------------------------------------------------------------------------
// Regressions: work proportional to the size of the data must be charged to the budget.
// Values share structure, so a few steps can build a value whose full traversal is
// exponential in the number of steps.

// [1] nested `levels` deep, each level holding the one below twice: 2^levels leaves.
std::string Doubling(int levels) {
  std::string out = "[1]";
  for (int i = 0; i < levels; ++i) out += ".map(a, [a, a])";
  return out;
}

TEST(CelRegressions, EqualityOnSharedNestedListsIsBounded) {
  const std::string nested = Doubling(60);  // 2^60 leaves, in a few hundred steps
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ErrorOf(nested + " == " + nested), "evaluation exceeded its budget of 100000 steps");
  EXPECT_EQ(ErrorOf(nested + " != " + nested), "evaluation exceeded its budget of 100000 steps");
  EXPECT_EQ(ErrorOf(nested + " in [" + nested + "]"),
            "evaluation exceeded its budget of 100000 steps");
  EXPECT_EQ(ErrorOf("[" + nested + "] == [" + nested + "] || true"),
            "evaluation exceeded its budget of 100000 steps");
  // Lists of different lengths differ without a look at their elements.
  EXPECT_FALSE(True(nested + " == []"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // Small ones still compare.
  EXPECT_TRUE(True(Doubling(5) + " == " + Doubling(5)));
  EXPECT_FALSE(True(Doubling(5) + " == " + Doubling(4)));
  EXPECT_TRUE(True(Doubling(3) + " in [1, " + Doubling(3) + "]"));
}

TEST(CelRegressions, FormattingSharedNestedListsIsBounded) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ErrorOf("'%s'.format([" + Doubling(60) + "])"),
            "evaluation exceeded its budget of 100000 steps");
  // Few elements, each large: the output limit, not the budget, stops it.
  Limits limits;
  limits.max_string_bytes = 1000;
  EXPECT_EQ(ErrorOf("['" + std::string(100, 'x') + "'].map(a, [a, a, a, a, a, a, a, a, a, a])"
                    ".map(a, [a, a]).map(s, '%s'.format([s]))",
                    {}, limits),
            "format: result too large");
  EXPECT_EQ(Eval("'%s'.format([" + Doubling(2) + "])").text(), "[[[1, 1], [1, 1]]]");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(CelRegressions, ListConcatenationIsCharged) {
  // Each level doubles a list by concatenation: the copies, not the steps, are the cost.
  std::string source = "[" + Range(1000) + "]";
  for (int i = 0; i < 10; ++i) source += ".map(a, a + a)";
  source = "size(" + source + "[0])";
  Limits limits;
  limits.max_steps = 100'000;
  EXPECT_EQ(ErrorOf(source, {}, limits), "evaluation exceeded its budget of 100000 steps");
  limits.max_steps = 10'000'000;
  EXPECT_EQ(Eval(source, {}, limits).int_value(), 1000 * 1024);
}

TEST(CelRegressions, StringCopiesAreCharged) {
  // s is 1 MiB after 20 doublings; each s + 'a' copies all of it.
  std::string s = "['x']";
  for (int i = 0; i < 20; ++i) s += ".map(a, a + a)";
  const std::string source =
      s + ".map(s, " + Range(100) + ".map(x, " + Range(100) + ".map(y, size(s + 'a'))))";
  Limits limits;
  limits.max_string_bytes = 2 << 20;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ErrorOf(source, {}, limits), "evaluation exceeded its budget of 100000 steps");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // Short strings cost no more than before.
  EXPECT_TRUE(True(Range(100) + ".map(x, 'abc' + string(x)).size() == 100"));
}

// A one-element list holding `seed` (a one-byte string) doubled `levels` times: 2^levels
// bytes, built in a few steps.
std::string LongString(const std::string& seed, int levels) {
  std::string out = "[" + seed + "]";
  for (int i = 0; i < levels; ++i) out += ".map(a, a + a)";
  return out;
}

TEST(CelRegressions, DynamicRegexCompilationIsCharged) {
  // A 64 KiB pattern compiled on each of 10,000 calls: minutes, unless charged.
  const std::string source = LongString("'a'", 16) + ".map(p, " + Range(100) + ".map(x, " +
                             Range(100) + ".exists(y, 'b'.matches(p))))";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ErrorOf(source), "evaluation exceeded its budget of 100000 steps");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // Short dynamic patterns cost little.
  EXPECT_TRUE(True(Range(100) + ".all(x, subject.matches('^' + 'orders'))"));
}

TEST(CelRegressions, ScanningLongStringsIsCharged) {
  Limits limits;
  limits.max_string_bytes = 2 << 20;
  const std::string source = LongString("'x'", 20) + ".map(s, " + Range(100) + ".map(x, " +
                             Range(100) + ".exists(y, s.matches('y$') || s.contains('z'))))";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ErrorOf(source, {}, limits), "evaluation exceeded its budget of 100000 steps");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// Found by fuzzing: detach() copied both members of a repeated JSON key into an owned map,
// whose lookups take the first match, while lookups in the document take the last.
TEST(CelRegressions, DetachKeepsTheLastValueOfARepeatedKey) {
  json::Document doc;
  ASSERT_TRUE(doc.parse(R"({"items": [{"price": 5.5, "qty": 3.5, "qty": 3}], "a": 1, "b": 2, "a": 4})"));
  const Value event = Value::json(&doc, 0);
  EXPECT_TRUE(True("event.items[0].qty == 3 && event.a == 4", WithEvent(event)));
  const Value detached = event.detach();
  ASSERT_FALSE(detached.is_json());
  const MapEntries& entries = detached.owned_map();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].first.text(), "items");
  EXPECT_EQ(entries[1].first.text(), "a");
  EXPECT_EQ(entries[1].second.double_value(), 4.0);
  EXPECT_EQ(entries[2].first.text(), "b");
  EXPECT_TRUE(True("event.items[0].qty == 3 && event.a == 4 && size(event.items[0]) == 2",
                   WithEvent(detached)));
}

}  // namespace
}  // namespace switchboard::cel
