// NATS subjects and the trie that routes a published subject to every route whose
// source pattern matches it, without testing each pattern in turn.
//
// Subject rules (as the NATS server applies them, made strict where NATS is lax):
//   - tokens are separated by '.', no token is empty, no whitespace anywhere;
//   - '*' matches exactly one token, '>' matches one or more trailing tokens; both must be
//     a whole token, and '>' must be the last one;
//   - a published (concrete) subject has no wildcards at all;
//   - at most kMaxSubjectLength bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::route {

inline constexpr size_t kMaxSubjectLength = 1024;

// True when `s` is a valid subject (a pattern when `allow_wildcards`). On failure, and when
// `why` is not null, sets *why to a message naming the first problem and its 0-based byte
// position, e.g. "empty token at position 7 in 'orders..created'".
bool validate_subject(std::string_view s, bool allow_wildcards, std::string* why);

// Reference matcher, one pattern against one subject, token by token. Meant for valid
// inputs; empty inputs and inputs over kMaxSubjectLength never match. In `subject`, '*'
// and '>' are plain text.
bool subject_matches(std::string_view pattern, std::string_view subject);

// Maps patterns to values (route indices). match() visits only the trie paths the
// subject's tokens can take: the literal child, the '*' child, and the '>' values at
// each level.
class SubjectTrie {
 public:
  SubjectTrie();
  ~SubjectTrie();
  SubjectTrie(SubjectTrie&& other) noexcept;
  SubjectTrie& operator=(SubjectTrie&& other) noexcept;
  SubjectTrie(const SubjectTrie&) = delete;
  SubjectTrie& operator=(const SubjectTrie&) = delete;

  // `pattern` must pass validate_subject(pattern, true, ...) (asserted in debug builds).
  // Inserting the same (pattern, value) pair again changes nothing.
  void insert(std::string_view pattern, uint32_t value);

  // Appends the values of all patterns matching `subject`, ascending and without
  // duplicates; what `out` held before is left untouched. Allocates nothing except to
  // grow `out`, so a caller reusing `out` pays no allocation once it is large enough.
  // Subjects that are empty or longer than kMaxSubjectLength match nothing.
  void match(std::string_view subject, std::vector<uint32_t>& out) const;

  // Number of distinct (pattern, value) pairs inserted.
  size_t size() const { return size_; }

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  size_t size_ = 0;
};

}  // namespace switchboard::route
