#include "core/route/subject.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace switchboard::route {
namespace {

std::string Why(std::string_view s, bool allow_wildcards) {
  std::string why;
  EXPECT_FALSE(validate_subject(s, allow_wildcards, &why)) << s;
  return why;
}

std::vector<uint32_t> Match(const SubjectTrie& trie, std::string_view subject) {
  std::vector<uint32_t> out;
  trie.match(subject, out);
  return out;
}

// Asks both matchers, so every hand-written case also checks the trie against the
// reference.
bool Matches(std::string_view pattern, std::string_view subject) {
  SubjectTrie trie;
  trie.insert(pattern, 7);
  const bool reference = subject_matches(pattern, subject);
  const std::vector<uint32_t> got = Match(trie, subject);
  EXPECT_EQ(got, reference ? std::vector<uint32_t>{7} : std::vector<uint32_t>{})
      << "pattern '" << pattern << "' subject '" << subject << "'";
  return reference;
}

TEST(ValidateSubject, AcceptsValidSubjects) {
  for (const char* s : {"a", "orders.created", "a.b.c", "ORDERS.eu-west_1.v2", "x:y.$sys",
                        "\xc3\xbcnicode.token"}) {
    std::string why;
    EXPECT_TRUE(validate_subject(s, false, &why)) << s << ": " << why;
    EXPECT_TRUE(validate_subject(s, true, &why)) << s << ": " << why;
  }
  EXPECT_TRUE(validate_subject(std::string(kMaxSubjectLength, 'a'), false, nullptr));
}

TEST(ValidateSubject, AcceptsValidPatterns) {
  for (const char* s : {"*", ">", "a.*", "a.>", "*.*.>", "a.*.c", "*.b", "a.*.*.d.>"}) {
    std::string why;
    EXPECT_TRUE(validate_subject(s, true, &why)) << s << ": " << why;
  }
}

TEST(ValidateSubject, Empty) {
  EXPECT_EQ(Why("", false), "subject is empty");
  EXPECT_EQ(Why("", true), "subject is empty");
}

TEST(ValidateSubject, TooLong) {
  EXPECT_EQ(Why(std::string(kMaxSubjectLength + 1, 'a'), false),
            "subject longer than 1024 bytes (1025)");
}

TEST(ValidateSubject, EmptyToken) {
  EXPECT_EQ(Why("orders..created", false), "empty token at position 7 in 'orders..created'");
  EXPECT_EQ(Why(".a", false), "empty token at position 0 in '.a'");
  EXPECT_EQ(Why("a.", true), "empty token at position 2 in 'a.'");
  EXPECT_EQ(Why(".", true), "empty token at position 0 in '.'");
}

TEST(ValidateSubject, Whitespace) {
  EXPECT_EQ(Why("a b", false), "whitespace at position 1 in 'a b'");
  EXPECT_EQ(Why(" a", true), "whitespace at position 0 in ' a'");
  // Control bytes are escaped so the message stays on one line.
  EXPECT_EQ(Why("a.b\n", false), "whitespace at position 3 in 'a.b\\x0a'");
  EXPECT_EQ(Why("a\tb", true), "whitespace at position 1 in 'a\\x09b'");
  EXPECT_EQ(Why("a\rb", true), "whitespace at position 1 in 'a\\x0db'");
}

TEST(ValidateSubject, FullWildcardMustBeLast) {
  EXPECT_EQ(Why("a.>.b", true), "'>' must be the last token at position 2 in 'a.>.b'");
  EXPECT_EQ(Why(">.a", true), "'>' must be the last token at position 0 in '>.a'");
}

TEST(ValidateSubject, WildcardMustBeWholeToken) {
  EXPECT_EQ(Why("a.b*", true), "'*' must be a whole token at position 3 in 'a.b*'");
  EXPECT_EQ(Why("*a", true), "'*' must be a whole token at position 0 in '*a'");
  EXPECT_EQ(Why("a.**", true), "'*' must be a whole token at position 2 in 'a.**'");
  EXPECT_EQ(Why("a.>b", true), "'>' must be a whole token at position 2 in 'a.>b'");
  EXPECT_EQ(Why("a.b>", true), "'>' must be a whole token at position 3 in 'a.b>'");
  // Strict for published subjects too, although NATS would take "a*b" as plain text.
  EXPECT_EQ(Why("a*b", false), "'*' must be a whole token at position 1 in 'a*b'");
}

TEST(ValidateSubject, NoWildcardsInConcreteSubject) {
  EXPECT_EQ(Why("a.*", false),
            "wildcard '*' not allowed in a concrete subject at position 2 in 'a.*'");
  EXPECT_EQ(Why(">", false), "wildcard '>' not allowed in a concrete subject at position 0 in '>'");
}

TEST(ValidateSubject, ReportsFirstProblemAndToleratesNullWhy) {
  EXPECT_EQ(Why("a..b c", false), "empty token at position 2 in 'a..b c'");
  EXPECT_EQ(Why("a b..c", false), "whitespace at position 1 in 'a b..c'");
  EXPECT_FALSE(validate_subject("a..b", false, nullptr));
  EXPECT_TRUE(validate_subject("a.b", false, nullptr));
}

TEST(SubjectMatches, SingleWildcard) {
  EXPECT_TRUE(Matches("a.*.c", "a.b.c"));
  EXPECT_TRUE(Matches("a.*.c", "a.xyz.c"));
  EXPECT_FALSE(Matches("a.*.c", "a.c"));
  EXPECT_FALSE(Matches("a.*.c", "a.b.c.d"));
  EXPECT_FALSE(Matches("a.*.c", "a.b.d"));
  EXPECT_TRUE(Matches("*", "a"));
  EXPECT_FALSE(Matches("*", "a.b"));
  EXPECT_TRUE(Matches("*.*", "a.b"));
  EXPECT_FALSE(Matches("*.*", "a"));
}

TEST(SubjectMatches, FullWildcard) {
  EXPECT_TRUE(Matches("a.>", "a.b"));
  EXPECT_TRUE(Matches("a.>", "a.b.c.d"));
  EXPECT_FALSE(Matches("a.>", "a"));
  EXPECT_FALSE(Matches("a.>", "b.a"));
  EXPECT_TRUE(Matches(">", "a"));
  EXPECT_TRUE(Matches(">", "a.b.c"));
  EXPECT_TRUE(Matches("*.>", "a.b"));
  EXPECT_FALSE(Matches("*.>", "a"));
}

TEST(SubjectMatches, Literal) {
  EXPECT_TRUE(Matches("a.b", "a.b"));
  EXPECT_FALSE(Matches("a.b", "a.b.c"));
  EXPECT_FALSE(Matches("a.b.c", "a.b"));
  EXPECT_FALSE(Matches("a.b", "a.bb"));
  EXPECT_FALSE(Matches("a.bb", "a.b"));
  EXPECT_FALSE(Matches("ab", "a.b"));
}

TEST(SubjectMatches, EmptyAndOversizedNeverMatch) {
  EXPECT_FALSE(subject_matches(">", ""));
  EXPECT_FALSE(subject_matches("", ""));
  EXPECT_FALSE(Matches(">", std::string(kMaxSubjectLength + 1, 'a')));
  EXPECT_TRUE(Matches(">", std::string(kMaxSubjectLength, 'a')));
}

TEST(SubjectTrie, SharedPrefixes) {
  SubjectTrie trie;
  trie.insert("orders.created", 0);
  trie.insert("orders.*", 1);
  trie.insert("orders.>", 2);
  trie.insert("orders.created.eu", 3);
  trie.insert("*.created", 4);
  trie.insert(">", 5);
  trie.insert("orders", 6);
  trie.insert("orders.updated", 7);
  trie.insert("*.*.eu", 8);
  EXPECT_EQ(trie.size(), 9u);

  using V = std::vector<uint32_t>;
  EXPECT_EQ(Match(trie, "orders.created"), (V{0, 1, 2, 4, 5}));
  EXPECT_EQ(Match(trie, "orders.updated"), (V{1, 2, 5, 7}));
  EXPECT_EQ(Match(trie, "orders.created.eu"), (V{2, 3, 5, 8}));
  EXPECT_EQ(Match(trie, "orders.created.us"), (V{2, 5}));
  EXPECT_EQ(Match(trie, "orders"), (V{5, 6}));
  EXPECT_EQ(Match(trie, "invoices.created"), (V{4, 5}));
  EXPECT_EQ(Match(trie, "invoices"), (V{5}));
  EXPECT_EQ(Match(trie, "orders.deleted.eu"), (V{2, 5, 8}));
}

TEST(SubjectTrie, ResultsAreSortedAndUnique) {
  SubjectTrie trie;
  // One route (value) may have several sources that match the same subject.
  trie.insert("a.b", 5);
  trie.insert("a.*", 2);
  trie.insert(">", 9);
  trie.insert("a.>", 2);
  trie.insert("*.b", 5);
  trie.insert("a.b", 0);
  EXPECT_EQ(Match(trie, "a.b"), (std::vector<uint32_t>{0, 2, 5, 9}));
}

TEST(SubjectTrie, DuplicateInsertIsNoOp) {
  SubjectTrie trie;
  trie.insert("a.b", 1);
  trie.insert("a.b", 1);
  trie.insert("a.>", 1);
  trie.insert("a.>", 1);
  EXPECT_EQ(trie.size(), 2u);
  EXPECT_EQ(Match(trie, "a.b"), (std::vector<uint32_t>{1}));
}

TEST(SubjectTrie, AppendsAndReusesOutput) {
  SubjectTrie trie;
  trie.insert("a.*", 3);
  trie.insert("a.b", 1);
  std::vector<uint32_t> out{100, 50};
  trie.match("a.b", out);
  EXPECT_EQ(out, (std::vector<uint32_t>{100, 50, 1, 3}));

  out.clear();
  out.reserve(16);
  const uint32_t* data = out.data();
  const size_t capacity = out.capacity();
  for (int i = 0; i < 3; ++i) {
    out.clear();
    trie.match("a.b", out);
    EXPECT_EQ(out, (std::vector<uint32_t>{1, 3}));
  }
  EXPECT_EQ(out.data(), data);
  EXPECT_EQ(out.capacity(), capacity);
}

TEST(SubjectTrie, EmptyTrieAndInvalidSubjects) {
  SubjectTrie empty;
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_TRUE(Match(empty, "a.b").empty());

  SubjectTrie trie;
  trie.insert(">", 1);
  EXPECT_TRUE(Match(trie, "").empty());
  EXPECT_TRUE(Match(trie, std::string(kMaxSubjectLength + 1, 'a')).empty());
}

TEST(SubjectTrie, Move) {
  SubjectTrie a;
  a.insert("x.*", 4);
  SubjectTrie b(std::move(a));
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(Match(b, "x.y"), (std::vector<uint32_t>{4}));
  // A moved-from trie is an ordinary empty one.
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(Match(a, "x.y").empty());
  a.insert("x.y", 2);
  EXPECT_EQ(Match(a, "x.y"), (std::vector<uint32_t>{2}));

  b = std::move(a);
  EXPECT_EQ(Match(b, "x.y"), (std::vector<uint32_t>{2}));
  EXPECT_EQ(b.size(), 1u);
}

TEST(SubjectTrie, DeepestSubject) {
  // 512 one-byte tokens: the most a subject of at most 1024 bytes can have.
  std::string subject = "a";
  std::string stars = "*";
  for (int i = 1; i < 512; ++i) {
    subject += ".a";
    stars += ".*";
  }
  ASSERT_LE(subject.size(), kMaxSubjectLength);
  SubjectTrie trie;
  trie.insert(subject, 1);
  trie.insert(stars, 2);
  trie.insert("a.>", 3);
  trie.insert(stars.substr(0, stars.size() - 1) + ">", 4);
  trie.insert(stars.substr(2), 5);  // one token short
  EXPECT_EQ(Match(trie, subject), (std::vector<uint32_t>{1, 2, 3, 4}));
}

// Patterns and subjects from a tiny alphabet so that matches, shared prefixes and
// duplicate values are all common.
class RandomSubjects {
 public:
  explicit RandomSubjects(uint32_t seed) : rng_(seed) {}

  std::string pattern() {
    const int n = uniform(1, 4);
    std::string s;
    for (int i = 0; i < n; ++i) {
      if (i) s += '.';
      if (i == n - 1 && chance(15)) {
        s += '>';
      } else if (chance(25)) {
        s += '*';
      } else {
        s += token();
      }
    }
    return s;
  }

  std::string subject() {
    const int n = uniform(1, 5);
    std::string s;
    for (int i = 0; i < n; ++i) {
      if (i) s += '.';
      s += token();
    }
    return s;
  }

  uint32_t value() { return static_cast<uint32_t>(uniform(0, 2499)); }

 private:
  std::string_view token() {
    static constexpr std::string_view kTokens[] = {"a", "b", "c", "dd", "orders.token-longer-than-sso"};
    // The last entry holds a dot on purpose: it yields two tokens, one past the SSO size.
    return kTokens[uniform(0, 4)];
  }
  bool chance(int percent) { return uniform(0, 99) < percent; }
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  std::mt19937 rng_;
};

TEST(SubjectTrie, AgreesWithBruteForce) {
  for (uint32_t seed : {1u, 20240607u, 987654321u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RandomSubjects gen(seed);
    std::vector<std::pair<std::string, uint32_t>> patterns;
    SubjectTrie trie;
    for (int i = 0; i < 2000; ++i) {
      std::string p = gen.pattern();
      ASSERT_TRUE(validate_subject(p, true, nullptr)) << p;
      const uint32_t v = gen.value();
      trie.insert(p, v);
      patterns.emplace_back(std::move(p), v);
    }

    size_t hits = 0;
    std::vector<uint32_t> expected, got;
    for (int i = 0; i < 2000; ++i) {
      const std::string s = gen.subject();
      ASSERT_TRUE(validate_subject(s, false, nullptr)) << s;
      expected.clear();
      for (const auto& [p, v] : patterns) {
        if (subject_matches(p, s)) expected.push_back(v);
      }
      std::sort(expected.begin(), expected.end());
      expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
      got.clear();
      trie.match(s, got);
      ASSERT_EQ(got, expected) << "subject '" << s << "'";
      hits += got.size();
    }
    // Guards the test's own power: a generator that never matched would prove nothing.
    EXPECT_GT(hits, 2000u);
  }
}

}  // namespace
}  // namespace switchboard::route
