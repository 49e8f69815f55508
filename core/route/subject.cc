#include "core/route/subject.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdio>
#include <functional>
#include <unordered_map>
#include <utility>

namespace switchboard::route {
namespace {

constexpr bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Subjects end up in logs and API errors, so control bytes are shown escaped rather than
// breaking the line they are printed on.
std::string quoted(std::string_view s) {
  std::string q;
  q.reserve(s.size() + 2);
  q += '\'';
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(u));
      q += buf;
    } else {
      q += c;
    }
  }
  q += '\'';
  return q;
}

bool fail(std::string* why, std::string message) {
  if (why) *why = std::move(message);
  return false;
}

bool fail_at(std::string* why, std::string_view what, size_t pos, std::string_view s) {
  if (!why) return false;
  return fail(why, std::string(what) + " at position " + std::to_string(pos) + " in " +
                       quoted(s));
}

// Splits on '.' exactly as the trie walk does, so that the reference matcher and the trie
// agree even on malformed input ("a." is the tokens "a" and "").
struct Tokens {
  std::string_view s;
  size_t pos = 0;
  bool done = false;

  bool next(std::string_view& token) {
    if (done) return false;
    size_t end = s.find('.', pos);
    if (end == std::string_view::npos) {
      token = s.substr(pos);
      done = true;
    } else {
      token = s.substr(pos, end - pos);
      pos = end + 1;
    }
    return true;
  }
};

// Lets match() look children up by string_view; a std::string key would cost an
// allocation per token for tokens longer than the small-string buffer.
struct TokenHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

void insert_sorted_unique(std::vector<uint32_t>& v, uint32_t value, size_t& size) {
  auto it = std::lower_bound(v.begin(), v.end(), value);
  if (it != v.end() && *it == value) return;
  v.insert(it, value);
  ++size;
}

}  // namespace

bool validate_subject(std::string_view s, bool allow_wildcards, std::string* why) {
  if (s.empty()) return fail(why, "subject is empty");
  if (s.size() > kMaxSubjectLength) {
    return fail(why, "subject longer than " + std::to_string(kMaxSubjectLength) +
                         " bytes (" + std::to_string(s.size()) + ")");
  }
  // One pass, so the message names the first problem by position. Most bytes are none of
  // whitespace, '.', '*' and '>': one table lookup passes them.
  static constexpr auto kPlain = [] {
    std::array<bool, 256> plain{};
    for (int c = 0; c < 256; ++c) {
      plain[c] = !is_space(static_cast<char>(c)) && c != '.' && c != '*' && c != '>';
    }
    return plain;
  }();
  size_t token_start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (kPlain[static_cast<unsigned char>(c)]) continue;
    if (is_space(c)) return fail_at(why, "whitespace", i, s);
    if (c == '.') {
      if (i == token_start) return fail_at(why, "empty token", i, s);
      token_start = i + 1;
      continue;
    }
    if (c != '*' && c != '>') continue;
    const bool whole = i == token_start && (i + 1 == s.size() || s[i + 1] == '.');
    const char* name = c == '*' ? "'*'" : "'>'";
    if (!whole) return fail_at(why, std::string(name) + " must be a whole token", i, s);
    if (!allow_wildcards) {
      return fail_at(why, std::string("wildcard ") + name + " not allowed in a concrete subject",
                     i, s);
    }
    if (c == '>' && i + 1 != s.size()) return fail_at(why, "'>' must be the last token", i, s);
  }
  if (token_start == s.size()) return fail_at(why, "empty token", token_start, s);
  return true;
}

bool subject_matches(std::string_view pattern, std::string_view subject) {
  if (pattern.empty() || subject.empty()) return false;
  if (pattern.size() > kMaxSubjectLength || subject.size() > kMaxSubjectLength) return false;
  Tokens p{pattern};
  Tokens s{subject};
  std::string_view pt, st;
  for (;;) {
    const bool more_p = p.next(pt);
    const bool more_s = s.next(st);
    if (!more_p) return !more_s;
    if (!more_s) return false;  // also covers a trailing '>', which needs one token
    if (pt == ">") return true;
    if (pt != "*" && pt != st) return false;
  }
}

struct SubjectTrie::Node {
  std::unordered_map<std::string, std::unique_ptr<Node>, TokenHash, std::equal_to<>> literal;
  std::unique_ptr<Node> star;
  // Sorted and unique, so a repeated insert is a no-op and size() counts distinct pairs.
  std::vector<uint32_t> tail;  // patterns whose next token is '>'
  std::vector<uint32_t> here;  // patterns that end at this node
};

namespace {

// `pos` is where the next subject token starts; past the end means no tokens remain.
// Recursion depth is the token count, bounded by the length check in match(). A template
// only because a free function cannot name the private SubjectTrie::Node.
template <typename Node>
void collect(const Node& n, std::string_view s, size_t pos, std::vector<uint32_t>& out) {
  if (pos > s.size()) {
    out.insert(out.end(), n.here.begin(), n.here.end());
    return;
  }
  out.insert(out.end(), n.tail.begin(), n.tail.end());
  size_t end = s.find('.', pos);
  if (end == std::string_view::npos) end = s.size();
  if (!n.literal.empty()) {
    auto it = n.literal.find(s.substr(pos, end - pos));
    if (it != n.literal.end()) collect(*it->second, s, end + 1, out);
  }
  if (n.star) collect(*n.star, s, end + 1, out);
}

}  // namespace

// Lazily allocated root keeps default construction cheap and makes a moved-from trie
// an ordinary empty one.
SubjectTrie::SubjectTrie() = default;
SubjectTrie::~SubjectTrie() = default;

SubjectTrie::SubjectTrie(SubjectTrie&& other) noexcept
    : root_(std::move(other.root_)), size_(std::exchange(other.size_, 0)) {}

SubjectTrie& SubjectTrie::operator=(SubjectTrie&& other) noexcept {
  root_ = std::move(other.root_);
  size_ = std::exchange(other.size_, 0);
  return *this;
}

void SubjectTrie::insert(std::string_view pattern, uint32_t value) {
  assert(validate_subject(pattern, true, nullptr));
  if (!root_) root_ = std::make_unique<Node>();
  Node* n = root_.get();
  Tokens tokens{pattern};
  std::string_view token;
  while (tokens.next(token)) {
    if (token == ">") {
      // Anything after a '>' is invalid; ignoring it matches subject_matches().
      insert_sorted_unique(n->tail, value, size_);
      return;
    }
    std::unique_ptr<Node>* child;
    if (token == "*") {
      child = &n->star;
    } else {
      auto it = n->literal.find(token);
      if (it == n->literal.end()) it = n->literal.emplace(std::string(token), nullptr).first;
      child = &it->second;
    }
    if (!*child) *child = std::make_unique<Node>();
    n = child->get();
  }
  insert_sorted_unique(n->here, value, size_);
}

void SubjectTrie::match(std::string_view subject, std::vector<uint32_t>& out) const {
  if (!root_ || subject.empty() || subject.size() > kMaxSubjectLength) return;
  const size_t first = out.size();
  collect(*root_, subject, 0, out);
  auto begin = out.begin() + static_cast<std::ptrdiff_t>(first);
  if (out.end() - begin < 2) return;
  // std::sort, unlike std::stable_sort, never allocates.
  std::sort(begin, out.end());
  out.erase(std::unique(begin, out.end()), out.end());
}

}  // namespace switchboard::route
