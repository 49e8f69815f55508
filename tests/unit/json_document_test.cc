#include "core/json/document.h"

#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace switchboard::json {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

// Parses `text` expecting failure and returns the message, so tests read as one line.
std::string parse_error(std::string_view text, const Limits& limits = {}) {
  Document doc;
  EXPECT_FALSE(doc.parse(text, limits)) << "unexpectedly parsed: " << text;
  EXPECT_TRUE(doc.empty());
  return doc.error();
}

// The decoded value of a document consisting of one string.
std::string decoded_string(std::string_view text) {
  Document doc;
  EXPECT_TRUE(doc.parse(text)) << text << ": " << doc.error();
  if (doc.empty()) return "<parse failed>";
  EXPECT_EQ(doc.node(0).type, Type::String);
  return std::string(doc.string_value(0));
}

std::string nested_arrays(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

// --- Values of every type -------------------------------------------------------------

TEST(JsonDocument, ParsesLiterals) {
  Document doc;
  ASSERT_TRUE(doc.parse("null"));
  EXPECT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc.node(0).type, Type::Null);
  EXPECT_EQ(doc.raw(0), "null");
  EXPECT_EQ(doc.node(0).next, 1u);

  ASSERT_TRUE(doc.parse("true"));
  EXPECT_EQ(doc.node(0).type, Type::True);
  ASSERT_TRUE(doc.parse("false"));
  EXPECT_EQ(doc.node(0).type, Type::False);
  EXPECT_EQ(doc.raw(0), "false");
}

TEST(JsonDocument, ParsesNumbersKeepingRawText) {
  Document doc;
  ASSERT_TRUE(doc.parse("1.50"));
  EXPECT_EQ(doc.node(0).type, Type::Number);
  EXPECT_EQ(doc.raw(0), "1.50");
  EXPECT_FALSE(doc.node(0).integral);
  EXPECT_DOUBLE_EQ(doc.number_value(0), 1.5);

  ASSERT_TRUE(doc.parse(" 12345678901234567890 "));
  EXPECT_EQ(doc.raw(0), "12345678901234567890");
  EXPECT_TRUE(doc.node(0).integral);
  uint64_t u = 0;
  EXPECT_TRUE(doc.uint64_value(0, u));
  EXPECT_EQ(u, 12345678901234567890ull);
  int64_t i = 7;
  EXPECT_FALSE(doc.int64_value(0, i)) << "does not fit int64";
  EXPECT_EQ(i, 7) << "output untouched on failure";

  ASSERT_TRUE(doc.parse("-0"));
  EXPECT_TRUE(doc.node(0).integral);
  EXPECT_TRUE(doc.int64_value(0, i));
  EXPECT_EQ(i, 0);
  EXPECT_FALSE(doc.uint64_value(0, u)) << "negative literals never give uint64";

  ASSERT_TRUE(doc.parse("-1.25e+3"));
  EXPECT_EQ(doc.raw(0), "-1.25e+3");
  EXPECT_FALSE(doc.node(0).integral);
  EXPECT_DOUBLE_EQ(doc.number_value(0), -1250.0);

  ASSERT_TRUE(doc.parse("0E-2"));
  EXPECT_FALSE(doc.node(0).integral);
  EXPECT_EQ(doc.number_value(0), 0.0);
  ASSERT_TRUE(doc.parse("0.0"));
  EXPECT_FALSE(doc.node(0).integral);
}

TEST(JsonDocument, IntegerAccessorsEnforceRangeAndIntegrality) {
  Document doc;
  int64_t i = 0;
  uint64_t u = 0;
  ASSERT_TRUE(doc.parse("9223372036854775807"));
  EXPECT_TRUE(doc.int64_value(0, i));
  EXPECT_EQ(i, std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(doc.parse("-9223372036854775808"));
  EXPECT_TRUE(doc.int64_value(0, i));
  EXPECT_EQ(i, std::numeric_limits<int64_t>::min());
  ASSERT_TRUE(doc.parse("9223372036854775808"));
  EXPECT_FALSE(doc.int64_value(0, i));
  EXPECT_TRUE(doc.uint64_value(0, u));
  ASSERT_TRUE(doc.parse("-9223372036854775809"));
  EXPECT_FALSE(doc.int64_value(0, i));
  ASSERT_TRUE(doc.parse("18446744073709551615"));
  EXPECT_TRUE(doc.uint64_value(0, u));
  EXPECT_EQ(u, std::numeric_limits<uint64_t>::max());
  ASSERT_TRUE(doc.parse("18446744073709551616"));
  EXPECT_FALSE(doc.uint64_value(0, u));
  EXPECT_DOUBLE_EQ(doc.number_value(0), 18446744073709551616.0);

  ASSERT_TRUE(doc.parse("1.0"));
  EXPECT_FALSE(doc.int64_value(0, i)) << "1.0 is not integral in JSON terms";
  EXPECT_FALSE(doc.uint64_value(0, u));
  ASSERT_TRUE(doc.parse("1e2"));
  EXPECT_FALSE(doc.int64_value(0, i));
  EXPECT_DOUBLE_EQ(doc.number_value(0), 100.0);

  ASSERT_TRUE(doc.parse("\"1\""));
  EXPECT_FALSE(doc.int64_value(0, i)) << "strings are not numbers";
  EXPECT_EQ(doc.number_value(0), 0.0);
}

TEST(JsonDocument, NumbersOutsideDoubleRangeSaturate) {
  Document doc;
  ASSERT_TRUE(doc.parse("1e400"));
  EXPECT_EQ(doc.number_value(0), std::numeric_limits<double>::infinity());
  ASSERT_TRUE(doc.parse("-1e400"));
  EXPECT_EQ(doc.number_value(0), -std::numeric_limits<double>::infinity());
  ASSERT_TRUE(doc.parse("1e-400"));
  EXPECT_EQ(doc.number_value(0), 0.0);
  ASSERT_TRUE(doc.parse("-0.00001e-320"));
  EXPECT_EQ(doc.number_value(0), 0.0);
  EXPECT_TRUE(std::signbit(doc.number_value(0)));
  ASSERT_TRUE(doc.parse("0.0001e313"));
  EXPECT_EQ(doc.number_value(0), std::numeric_limits<double>::infinity());
  ASSERT_TRUE(doc.parse("1e99999999999999999999999999"));
  EXPECT_EQ(doc.number_value(0), std::numeric_limits<double>::infinity());
  ASSERT_TRUE(doc.parse("4.9e-324"));
  EXPECT_GT(doc.number_value(0), 0.0) << "the smallest subnormal is in range";
}

TEST(JsonDocument, ParsesStringsWithoutEscapesAsSourceSpans) {
  Document doc;
  ASSERT_TRUE(doc.parse(R"(  "hello"  )"));
  const Node& n = doc.node(0);
  EXPECT_EQ(n.type, Type::String);
  EXPECT_FALSE(n.escaped);
  EXPECT_EQ(doc.raw(0), R"("hello")");
  EXPECT_EQ(n.begin, 2u);
  EXPECT_EQ(n.end, 9u);
  EXPECT_EQ(n.str_off, 3u) << "unescaped text indexes the source, between the quotes";
  EXPECT_EQ(n.str_len, 5u);
  EXPECT_EQ(doc.string_value(0), "hello");

  ASSERT_TRUE(doc.parse(R"("")"));
  EXPECT_EQ(doc.string_value(0), "");
  EXPECT_EQ(doc.raw(0), R"("")");

  // Long enough to cross the eight-byte scanning path several times, UTF-8 included.
  const std::string long_text = "abcdefghijklmnopqrstuvwxyz \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 0123456789";
  ASSERT_TRUE(doc.parse("\"" + long_text + "\""));
  EXPECT_FALSE(doc.node(0).escaped);
  EXPECT_EQ(doc.string_value(0), long_text);
}

TEST(JsonDocument, DecodesEscapesIntoTheArena) {
  Document doc;
  ASSERT_TRUE(doc.parse(R"("\u00e9")"));
  EXPECT_TRUE(doc.node(0).escaped);
  EXPECT_EQ(doc.raw(0), R"("\u00e9")") << "the raw span keeps the escape";
  EXPECT_EQ(doc.string_value(0), "\xC3\xA9");

  EXPECT_EQ(decoded_string(R"("a\"b\\c\/d\be\ff\ng\rh\ti")"), "a\"b\\c/d\be\ff\ng\rh\ti");
  EXPECT_EQ(decoded_string(R"("\u0041\u00DF\u6771\uFFFF")"),
            "A\xC3\x9F\xE6\x9D\xB1\xEF\xBF\xBF");
  EXPECT_EQ(decoded_string(R"("\u0000")"), "\0"s);
  EXPECT_EQ(decoded_string(R"("\u007f\u0080\u07FF\u0800")"), "\x7f\xC2\x80\xDF\xBF\xE0\xA0\x80");
  EXPECT_EQ(decoded_string(R"("prefix \n suffix")"), "prefix \n suffix");
  EXPECT_EQ(decoded_string("\"\xC3\xA9\\t\xF0\x9F\x98\x80\""), "\xC3\xA9\t\xF0\x9F\x98\x80");
}

TEST(JsonDocument, DecodesSurrogatePairs) {
  EXPECT_EQ(decoded_string(R"("\ud83d\ude00")"), "\xF0\x9F\x98\x80");  // U+1F600
  EXPECT_EQ(decoded_string(R"("\uD800\uDC00")"), "\xF0\x90\x80\x80");  // U+10000
  EXPECT_EQ(decoded_string(R"("\uDBFF\uDFFF")"), "\xF4\x8F\xBF\xBF");  // U+10FFFF
  EXPECT_EQ(decoded_string(R"("x\uD83D\uDE00y")"), "x\xF0\x9F\x98\x80y");
}

TEST(JsonDocument, EscapedStringsKeepOffsetsWhileTheArenaGrows) {
  // Many escaped strings force the arena to reallocate mid-parse; earlier nodes must
  // still decode correctly, which they only do if they store offsets.
  std::string text = "[";
  for (int i = 0; i < 500; ++i) {
    if (i) text += ',';
    text += "\"item\\t" + std::to_string(i) + "\"";
  }
  text += "]";
  Document doc;
  ASSERT_TRUE(doc.parse(text)) << doc.error();
  ASSERT_EQ(doc.node(0).count, 500u);
  uint32_t child = Document::first_child(0);
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(doc.node(child).escaped);
    EXPECT_EQ(doc.string_value(child), "item\t" + std::to_string(i));
    child = doc.node(child).next;
  }
  EXPECT_EQ(child, doc.size());
}

// --- Containers -----------------------------------------------------------------------

TEST(JsonDocument, ParsesArraysInPreOrder) {
  Document doc;
  ASSERT_TRUE(doc.parse(R"([1, [true, null], "x", [], {}])"));
  ASSERT_EQ(doc.size(), 8u);
  EXPECT_EQ(doc.node(0).type, Type::Array);
  EXPECT_EQ(doc.node(0).count, 5u);
  EXPECT_EQ(doc.node(0).next, 8u);
  EXPECT_EQ(doc.raw(0), R"([1, [true, null], "x", [], {}])");

  EXPECT_EQ(doc.node(1).type, Type::Number);
  EXPECT_EQ(doc.node(1).next, 2u);
  EXPECT_EQ(doc.node(2).type, Type::Array);
  EXPECT_EQ(doc.node(2).count, 2u);
  EXPECT_EQ(doc.node(2).next, 5u);
  EXPECT_EQ(doc.raw(2), "[true, null]");
  EXPECT_EQ(doc.node(3).type, Type::True);
  EXPECT_EQ(doc.node(4).type, Type::Null);
  EXPECT_EQ(doc.node(5).type, Type::String);
  EXPECT_EQ(doc.node(6).type, Type::Array);
  EXPECT_EQ(doc.node(6).count, 0u);
  EXPECT_EQ(doc.raw(6), "[]");
  EXPECT_EQ(doc.node(7).type, Type::Object);
  EXPECT_EQ(doc.node(7).count, 0u);
  EXPECT_EQ(doc.node(7).next, 8u);

  // Walking the children with next visits exactly the elements.
  uint32_t visited = 0;
  for (uint32_t c = Document::first_child(0); c < doc.node(0).next; c = doc.node(c).next) {
    ++visited;
  }
  EXPECT_EQ(visited, 5u);
}

TEST(JsonDocument, ParsesObjectsAsKeyValuePairs) {
  Document doc;
  ASSERT_TRUE(doc.parse(R"({"a": 1, "b": {"c": [2, 3]}, "d": "e"})"));
  EXPECT_EQ(doc.node(0).type, Type::Object);
  EXPECT_EQ(doc.node(0).count, 3u);
  EXPECT_EQ(doc.node(0).next, doc.size());
  EXPECT_EQ(doc.node(1).type, Type::String);
  EXPECT_EQ(doc.string_value(1), "a");
  EXPECT_EQ(doc.raw(2), "1");
  const uint32_t b = doc.find_member(0, "b");
  ASSERT_NE(b, 0u);
  EXPECT_EQ(doc.node(b).type, Type::Object);
  EXPECT_EQ(doc.node(b).count, 1u);
  EXPECT_EQ(doc.raw(b), R"({"c": [2, 3]})");
  const uint32_t c = doc.find_member(b, "c");
  ASSERT_NE(c, 0u);
  EXPECT_EQ(doc.node(c).count, 2u);
  EXPECT_EQ(doc.string_value(doc.find_member(0, "d")), "e");
}

TEST(JsonDocument, AcceptsAllJsonWhitespace) {
  Document doc;
  ASSERT_TRUE(doc.parse(" \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n[ 1 , 2 ] \t\r\n} \t\r\n"));
  EXPECT_EQ(doc.node(0).count, 1u);
  EXPECT_EQ(doc.raw(0).front(), '{');
  EXPECT_EQ(doc.raw(0).back(), '}');
}

// --- find_member ----------------------------------------------------------------------

TEST(JsonDocument, FindMemberComparesDecodedKeys) {
  Document doc;
  ASSERT_TRUE(doc.parse(R"({"plain": 1, "caf\u00e9": 2, "a\"b": 3, "": 4})"));
  EXPECT_EQ(doc.raw(doc.find_member(0, "plain")), "1");
  EXPECT_EQ(doc.raw(doc.find_member(0, "caf\xC3\xA9")), "2");
  EXPECT_EQ(doc.raw(doc.find_member(0, "a\"b")), "3");
  EXPECT_EQ(doc.raw(doc.find_member(0, "")), "4");
  EXPECT_EQ(doc.find_member(0, "missing"), 0u);
  EXPECT_EQ(doc.find_member(0, "plai"), 0u);
  EXPECT_EQ(doc.find_member(0, "caf\\u00e9"), 0u) << "raw key text does not match";
}

TEST(JsonDocument, FindMemberSkipsNestedValuesAndNonObjects) {
  Document doc;
  ASSERT_TRUE(doc.parse(R"({"x": {"target": 1}, "y": ["target"], "target": 2})"));
  EXPECT_EQ(doc.raw(doc.find_member(0, "target")), "2") << "only direct members count";
  const uint32_t y = doc.find_member(0, "y");
  EXPECT_EQ(doc.find_member(y, "target"), 0u) << "arrays have no members";
  EXPECT_EQ(doc.find_member(doc.size(), "target"), 0u) << "out-of-range index";
}

TEST(JsonDocument, FindMemberLastDuplicateWins) {
  Document doc;
  ASSERT_TRUE(doc.parse(R"({"k": 1, "other": 0, "k": 2, "\u006b": 3})"));
  EXPECT_EQ(doc.node(0).count, 4u);
  EXPECT_EQ(doc.raw(doc.find_member(0, "k")), "3");
}

TEST(JsonDocument, KnowsWhetherAnObjectRepeatsAKey) {
  Document doc;
  ASSERT_TRUE(doc.parse(R"({"a": {"x": 1, "y": 2, "x": 3}, "b": [{"a": 1}, {"a": 1, "\u0061": 2}], "c": {}})"));
  const uint32_t a = doc.find_member(0, "a");
  const uint32_t b = doc.find_member(0, "b");
  EXPECT_TRUE(doc.keys_unique(0));
  EXPECT_FALSE(doc.keys_unique(a));
  EXPECT_EQ(doc.raw(doc.find_member(a, "x")), "3");
  EXPECT_TRUE(doc.keys_unique(Document::first_child(b)));
  EXPECT_FALSE(doc.keys_unique(doc.node(Document::first_child(b)).next)) << "a key and its escaped twin";
  EXPECT_TRUE(doc.keys_unique(doc.find_member(0, "c")));
  EXPECT_FALSE(doc.keys_unique(b)) << "not an object";

  // Many keys: some share a hash bit and are compared, which tells the twins apart.
  std::string text = "{";
  for (int i = 0; i < 32; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  ASSERT_TRUE(doc.parse(text + "}"));
  EXPECT_TRUE(doc.keys_unique(0));
  EXPECT_EQ(doc.raw(doc.find_member(0, "k31")), "31");
  ASSERT_TRUE(doc.parse(text + ",\"k7\":\"again\"}"));
  EXPECT_FALSE(doc.keys_unique(0)) << "33 members: not checked";
  text.replace(text.find("\"k30\""), 5, "\"k7\"");
  ASSERT_TRUE(doc.parse(text + "}"));
  EXPECT_FALSE(doc.keys_unique(0));
  EXPECT_EQ(doc.raw(doc.find_member(0, "k7")), "30");
}

// --- Reuse ----------------------------------------------------------------------------

TEST(JsonDocument, ReusesOneDocumentForSeveralParses) {
  Document doc;
  ASSERT_TRUE(doc.parse(R"({"a": "x\ty", "b": [1, 2, 3]})"));
  EXPECT_EQ(doc.size(), 8u);
  EXPECT_EQ(doc.string_value(2), "x\ty");

  ASSERT_TRUE(doc.parse(R"("\n")"));
  EXPECT_EQ(doc.size(), 1u) << "nodes of the previous parse are gone";
  EXPECT_EQ(doc.string_value(0), "\n");
  EXPECT_EQ(doc.node(0).str_off, 0u) << "the arena starts afresh";

  EXPECT_FALSE(doc.parse("[1,"));
  EXPECT_TRUE(doc.empty()) << "a failed parse leaves no nodes";
  EXPECT_FALSE(doc.error().empty());

  ASSERT_TRUE(doc.parse("[true]"));
  EXPECT_TRUE(doc.error().empty()) << "a successful parse clears the old error";
  EXPECT_EQ(doc.size(), 2u);
  EXPECT_EQ(doc.source(), "[true]");
}

TEST(JsonDocument, ParsesItsOwnSource) {
  Document doc;
  ASSERT_TRUE(doc.parse(R"({"a": [1, 2]})"));
  ASSERT_TRUE(doc.parse(doc.source()));
  EXPECT_EQ(doc.source(), R"({"a": [1, 2]})");
  EXPECT_EQ(doc.size(), 5u);
  // A view of part of the current source is copied before it is overwritten.
  ASSERT_TRUE(doc.parse(doc.raw(doc.find_member(0, "a"))));
  EXPECT_EQ(doc.source(), "[1, 2]");
}

TEST(JsonDocument, SourceIsCopied) {
  std::string text = R"(["abc"])";
  Document doc;
  ASSERT_TRUE(doc.parse(text));
  text.assign(text.size(), 'x');
  EXPECT_EQ(doc.string_value(1), "abc");
}

// --- Errors ---------------------------------------------------------------------------

TEST(JsonDocumentErrors, EmptyAndBlankInput) {
  EXPECT_EQ(parse_error(""), "empty input");
  EXPECT_EQ(parse_error("   \n"), "expected a value at byte 4 (end of input)");
}

TEST(JsonDocumentErrors, NamesTheExpectedSeparator) {
  EXPECT_EQ(parse_error(R"({"a": 1 "b": 2})"), "expected ',' or '}' at byte 8");
  EXPECT_EQ(parse_error("[1 2]"), "expected ',' or ']' at byte 3");
  EXPECT_EQ(parse_error(R"({"a" 1})"), "expected ':' at byte 5");
  EXPECT_EQ(parse_error("{1: 2}"), "expected a string key at byte 1");
  EXPECT_EQ(parse_error(R"({"a": 1,})"), "expected a string key at byte 8");
  EXPECT_EQ(parse_error("[1,]"), "expected a value at byte 3");
  EXPECT_EQ(parse_error("[,1]"), "expected a value at byte 1");
  EXPECT_EQ(parse_error("[1"), "expected ',' or ']' at byte 2 (end of input)");
  EXPECT_EQ(parse_error(R"({"a": 1)"), "expected ',' or '}' at byte 7 (end of input)");
  EXPECT_EQ(parse_error("{"), "expected a string key at byte 1 (end of input)");
  EXPECT_EQ(parse_error("[1}"), "expected ',' or ']' at byte 2");
  EXPECT_EQ(parse_error(R"({"a": 1])"), "expected ',' or '}' at byte 7");
  EXPECT_EQ(parse_error("]"), "expected a value at byte 0");
}

TEST(JsonDocumentErrors, RejectsTrailingContent) {
  EXPECT_EQ(parse_error("1 2"), "unexpected content after the value at byte 2");
  EXPECT_EQ(parse_error("{} x"), "unexpected content after the value at byte 3");
  EXPECT_EQ(parse_error("[]]"), "unexpected content after the value at byte 2");
  EXPECT_EQ(parse_error("null\0"sv), "unexpected content after the value at byte 4");
  EXPECT_EQ(parse_error("truex"), "unexpected content after the value at byte 4");
}

TEST(JsonDocumentErrors, RejectsBadLiterals) {
  EXPECT_EQ(parse_error("nul"), "invalid literal at byte 0");
  EXPECT_EQ(parse_error("[tru]"), "invalid literal at byte 1");
  EXPECT_EQ(parse_error("True"), "expected a value at byte 0");
  EXPECT_EQ(parse_error("NaN"), "expected a value at byte 0");
  EXPECT_EQ(parse_error("Infinity"), "expected a value at byte 0");
  EXPECT_EQ(parse_error("-Infinity"), "expected a digit in number at byte 1");
  EXPECT_EQ(parse_error("'a'"), "expected a value at byte 0");
}

TEST(JsonDocumentErrors, RejectsNumbersOutsideTheGrammar) {
  EXPECT_EQ(parse_error("01"), "leading zero in number at byte 0");
  EXPECT_EQ(parse_error("[-012]"), "leading zero in number at byte 1");
  EXPECT_EQ(parse_error("+1"), "expected a value at byte 0");
  EXPECT_EQ(parse_error("-"), "expected a digit in number at byte 1");
  EXPECT_EQ(parse_error("1."), "expected a digit after '.' in number at byte 2");
  EXPECT_EQ(parse_error("[1.]"), "expected a digit after '.' in number at byte 3");
  EXPECT_EQ(parse_error(".5"), "expected a value at byte 0");
  EXPECT_EQ(parse_error("1e"), "expected a digit in exponent of number at byte 2");
  EXPECT_EQ(parse_error("1e+"), "expected a digit in exponent of number at byte 3");
  EXPECT_EQ(parse_error("1.5e-x"), "expected a digit in exponent of number at byte 5");
  EXPECT_EQ(parse_error("0x10"), "unexpected content after the value at byte 1");
  EXPECT_EQ(parse_error("1.5.5"), "unexpected content after the value at byte 3");
}

TEST(JsonDocumentErrors, RejectsBadStrings) {
  EXPECT_EQ(parse_error(R"("abc)"), "unterminated string starting at byte 0");
  EXPECT_EQ(parse_error(R"(["a\n)"), "unterminated string starting at byte 1");
  EXPECT_EQ(parse_error(R"("abc\)"), "unterminated string ending in a backslash at byte 4");
  EXPECT_EQ(parse_error("\"a\nb\""), "unescaped control character in string at byte 2");
  EXPECT_EQ(parse_error("\"a\tb\""), "unescaped control character in string at byte 2");
  EXPECT_EQ(parse_error("\"ab\0\""sv), "unescaped control character in string at byte 3");
  EXPECT_EQ(parse_error("\"\\n\x1f\""), "unescaped control character in string at byte 3");
  EXPECT_EQ(parse_error(R"("\x41")"), "invalid escape in string at byte 1");
  EXPECT_EQ(parse_error(R"("\')"), "invalid escape in string at byte 1");
  EXPECT_EQ(parse_error(R"("ok\u12G4")"), "expected 4 hex digits after \\u at byte 3");
  EXPECT_EQ(parse_error(R"("\u12")"), "expected 4 hex digits after \\u at byte 1");
}

TEST(JsonDocumentErrors, RejectsLoneSurrogateEscapes) {
  EXPECT_EQ(parse_error(R"("\ud83d")"), "lone high surrogate in \\u escape at byte 1");
  EXPECT_EQ(parse_error(R"("\ud83dx")"), "lone high surrogate in \\u escape at byte 1");
  EXPECT_EQ(parse_error(R"("\ud83d\n")"), "lone high surrogate in \\u escape at byte 1");
  EXPECT_EQ(parse_error(R"("\ud83d\ud83d")"), "lone high surrogate in \\u escape at byte 1");
  EXPECT_EQ(parse_error(R"("\ud83d\u0041")"), "lone high surrogate in \\u escape at byte 1");
  EXPECT_EQ(parse_error(R"("a\ude00")"), "lone low surrogate in \\u escape at byte 2");
  EXPECT_EQ(parse_error(R"("\ude00\ud83d")"), "lone low surrogate in \\u escape at byte 1");
}

TEST(JsonDocumentErrors, RejectsInvalidUtf8InStrings) {
  EXPECT_EQ(parse_error("\"abcd\xC0\x80\""), "invalid UTF-8 in string at byte 5");
  EXPECT_EQ(parse_error("\"\xED\xA0\x80\""), "invalid UTF-8 in string at byte 1");  // surrogate
  EXPECT_EQ(parse_error("\"\xF4\x90\x80\x80\""), "invalid UTF-8 in string at byte 1");
  EXPECT_EQ(parse_error("\"\xE0\x9F\xBF\""), "invalid UTF-8 in string at byte 1");  // overlong
  EXPECT_EQ(parse_error("\"\xF0\x8F\xBF\xBF\""), "invalid UTF-8 in string at byte 1");
  EXPECT_EQ(parse_error("\"\x80\""), "invalid UTF-8 in string at byte 1");
  EXPECT_EQ(parse_error("\"\xFF\""), "invalid UTF-8 in string at byte 1");
  EXPECT_EQ(parse_error("\"\xC3\""), "invalid UTF-8 in string at byte 1");  // truncated
  EXPECT_EQ(parse_error("\"\xC3"), "invalid UTF-8 in string at byte 1");
  EXPECT_EQ(parse_error("\"\xE2\x82\""), "invalid UTF-8 in string at byte 1");
  // The same checks apply after an escape has moved decoding into the arena.
  EXPECT_EQ(parse_error("\"\\n\xC0\xAF\""), "invalid UTF-8 in string at byte 3");
  // Within the eight-byte scanning path.
  EXPECT_EQ(parse_error("\"0123456789\xF8\x88\x80\x80\x80\""),
            "invalid UTF-8 in string at byte 11");
  // Bytes outside strings are simply not JSON.
  EXPECT_EQ(parse_error("\xC3\xA9"), "expected a value at byte 0");
}

TEST(JsonDocumentErrors, DepthLimitIsExact) {
  Document doc;
  EXPECT_TRUE(doc.parse(nested_arrays(128))) << doc.error();
  EXPECT_EQ(doc.size(), 128u);
  EXPECT_EQ(parse_error(nested_arrays(129)), "nesting deeper than 128 levels at byte 128");

  Limits limits;
  limits.max_depth = 3;
  EXPECT_TRUE(doc.parse(R"({"a": [{}]})", limits)) << doc.error();
  EXPECT_EQ(parse_error(R"({"a": [{"b": []}]})", limits),
            "nesting deeper than 3 levels at byte 13");
  EXPECT_TRUE(doc.parse("[[[1]], [[2]], {}]", limits)) << "siblings do not add up";

  limits.max_depth = 0;
  EXPECT_TRUE(doc.parse("\"scalars need no depth\"", limits));
  EXPECT_EQ(parse_error("[]", limits), "nesting deeper than 0 levels at byte 0");
}

TEST(JsonDocumentErrors, VeryDeepNestingDoesNotUseTheCallStack) {
  Limits limits;
  limits.max_depth = 1'000'000;
  Document doc;
  const std::string deep = nested_arrays(1'000'000);
  ASSERT_TRUE(doc.parse(deep, limits)) << doc.error();
  EXPECT_EQ(doc.size(), 1'000'000u);
  EXPECT_EQ(doc.node(0).next, 1'000'000u);
  EXPECT_EQ(doc.node(999'999).count, 0u);
  EXPECT_EQ(doc.node(999'998).count, 1u);
  // Unclosed: still an error, found without recursion.
  EXPECT_FALSE(doc.parse(std::string(1'000'000, '['), limits));
  EXPECT_EQ(doc.error(), "expected a value at byte 1000000 (end of input)");
}

TEST(JsonDocumentErrors, SizeLimit) {
  Limits limits;
  limits.max_bytes = 10;
  Document doc;
  EXPECT_TRUE(doc.parse("[1,2,3,45]", limits));
  EXPECT_EQ(parse_error("[1,2,3,456]", limits), "input of 11 bytes exceeds the limit of 10");

  const std::string big(20'000'000, ' ');
  EXPECT_EQ(parse_error(big), "input of 20000000 bytes exceeds the limit of 16777216");
}

// --- write_double ---------------------------------------------------------------------

std::string written(double d) {
  char buf[kMaxNumberChars];
  return std::string(buf, write_double(buf, d));
}

std::string standard(double d) {
  char buf[kMaxNumberChars];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, d).ptr);
}

TEST(JsonWriteDouble, WritesWhatToCharsWrites) {
  const double samples[] = {0.0, -0.0, 1.0, -1.0, 0.5, 144.6, 120.5 * 1.2, 0.1 + 0.2, 1.0 / 3.0,
                            100000.0, 123000.0, 1e14, 1e15, 0x1p50 - 1, 0x1p50, 0x1p50 + 2, 1e21,
                            0.001, 0.0012, 0.0001, 1e-7, 5e-324, 1.7976931348623157e308, 99.99,
                            999999.999999, 1234567.1234567, 0.000123456, 9007199254740993.0};
  for (double d : samples) {
    EXPECT_EQ(written(d), standard(d)) << standard(d);
    EXPECT_EQ(written(-d), standard(-d)) << standard(-d);
  }
  // Decimals as events carry them (k digits after the point, any magnitude), and sums and
  // products of them as transforms make them; then arbitrary bit patterns.
  uint64_t state = 0x9E3779B97F4A7C15u;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int mismatches = 0;
  for (int i = 0; i < 200'000 && mismatches < 10; ++i) {
    const uint64_t r = next();
    const int k = static_cast<int>(r % 9);
    const uint64_t m = next() % (uint64_t{1} << (1 + r / 9 % 52));
    double d = static_cast<double>(m) / std::pow(10.0, k);
    if (i % 3 == 1) d *= 1.2;
    if (i % 3 == 2) d = std::bit_cast<double>(next());
    if (!std::isfinite(d)) continue;
    if (written(d) != standard(d)) {
      ++mismatches;
      ADD_FAILURE() << "write_double gave " << written(d) << ", std::to_chars " << standard(d);
    }
  }
}

// --- append_quoted --------------------------------------------------------------------

TEST(JsonAppendQuoted, EscapesWhatJsonRequires) {
  std::string out = "prefix:";
  append_quoted(out, "a\"b\\c\nd\te\rf\bg\fh\x01i\x1f");
  EXPECT_EQ(out, R"(prefix:"a\"b\\c\nd\te\rf\bg\fh\u0001i\u001f")");

  out.clear();
  append_quoted(out, "");
  EXPECT_EQ(out, R"("")");

  out.clear();
  append_quoted(out, "caf\xC3\xA9 / \x7f \xF0\x9F\x98\x80");
  EXPECT_EQ(out, "\"caf\xC3\xA9 / \x7f \xF0\x9F\x98\x80\"") << "UTF-8, '/' and DEL pass through";

  out.clear();
  append_quoted(out, "\0"sv);
  EXPECT_EQ(out, R"("\u0000")");
}

TEST(JsonAppendQuoted, RoundTripsThroughParse) {
  const std::string samples[] = {
      "",
      "plain text",
      "quote \" backslash \\ slash /",
      "controls \x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x1e\x1f",
      "nul \0 inside"s,
      "utf-8 \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF",
  };
  Document doc;
  for (const std::string& s : samples) {
    std::string quoted;
    append_quoted(quoted, s);
    ASSERT_TRUE(doc.parse(quoted)) << quoted << ": " << doc.error();
    EXPECT_EQ(doc.string_value(0), s);
    EXPECT_EQ(doc.raw(0), quoted);
  }
}

// --- valid_utf8 -----------------------------------------------------------------------

TEST(JsonValidUtf8, AcceptsWellFormedText) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ASCII that is longer than one eight-byte word"));
  EXPECT_TRUE(valid_utf8("\0"sv));
  EXPECT_TRUE(valid_utf8("\xC2\x80"));                          // U+0080
  EXPECT_TRUE(valid_utf8("\xDF\xBF"));                          // U+07FF
  EXPECT_TRUE(valid_utf8("\xE0\xA0\x80"));                      // U+0800
  EXPECT_TRUE(valid_utf8("\xED\x9F\xBF"));                      // U+D7FF
  EXPECT_TRUE(valid_utf8("\xEE\x80\x80"));                      // U+E000
  EXPECT_TRUE(valid_utf8("\xEF\xBF\xBF"));                      // U+FFFF
  EXPECT_TRUE(valid_utf8("\xF0\x90\x80\x80"));                  // U+10000
  EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));                  // U+10FFFF
  EXPECT_TRUE(valid_utf8("12345678\xC3\xA9" "12345678\xE2\x82\xAC"));
}

TEST(JsonValidUtf8, RejectsIllFormedText) {
  EXPECT_FALSE(valid_utf8("\xC0\x80"));          // overlong NUL
  EXPECT_FALSE(valid_utf8("\xC1\xBF"));          // overlong
  EXPECT_FALSE(valid_utf8("\xE0\x80\x80"));      // overlong
  EXPECT_FALSE(valid_utf8("\xE0\x9F\xBF"));      // overlong U+07FF
  EXPECT_FALSE(valid_utf8("\xF0\x8F\xBF\xBF"));  // overlong U+FFFF
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // U+D800
  EXPECT_FALSE(valid_utf8("\xED\xBF\xBF"));      // U+DFFF
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(valid_utf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(valid_utf8("\xFF"));
  EXPECT_FALSE(valid_utf8("\x80"));              // lone continuation
  EXPECT_FALSE(valid_utf8("\xC3"));              // truncated
  EXPECT_FALSE(valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(valid_utf8("\xF0\x9F\x98"));      // truncated
  EXPECT_FALSE(valid_utf8("\xC3\x41"));          // bad continuation
  EXPECT_FALSE(valid_utf8("\xE2\x41\x82"));
  EXPECT_FALSE(valid_utf8("\xF0\x9F\x41\x80"));
  // After a long ASCII prefix, and a truncated sequence at the very end.
  EXPECT_FALSE(valid_utf8("0123456789abcdef\xED\xA0\x80"));
  EXPECT_FALSE(valid_utf8("0123456789abcdef\xF0\x9F\x98"));
  // A string_view that stops inside a sequence must not be read past.
  const std::string text = "ok \xC3\xA9";
  EXPECT_FALSE(valid_utf8(std::string_view(text).substr(0, text.size() - 1)));
}

}  // namespace
}  // namespace switchboard::json
