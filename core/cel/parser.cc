#include "core/cel/parser.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "core/json/document.h"

namespace switchboard::cel {
namespace {

enum class Tok : uint8_t {
  End,
  Ident,
  Int,     // value in u; may exceed INT64_MAX only as the operand of unary minus
  Uint,
  Double,
  String,
  Bytes,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  Dot,
  Comma,
  Colon,
  Question,
  Not,
  Minus,
  Plus,
  Star,
  Slash,
  Percent,
  Less,
  LessEq,
  Greater,
  GreaterEq,
  Eq,
  NotEq,
  And,
  Or,
  In,
  True,
  False,
  Null,
  QuotedIdent,  // `content-type` in a selector
};

struct Token {
  Tok kind = Tok::End;
  uint32_t pos = 0;
  std::string text;  // identifier, or decoded string/bytes literal
  uint64_t u = 0;
  double d = 0;
};

constexpr std::array<std::string_view, 19> kReserved = {
    "as",     "break",   "const",  "continue", "else",      "for",    "function",
    "if",     "import",  "let",    "loop",     "package",   "namespace", "return",
    "var",    "void",    "while",  "in",       "null"};

bool is_reserved(std::string_view w) {
  return std::find(kReserved.begin(), kReserved.end(), w) != kReserved.end() || w == "true" ||
         w == "false";
}

struct ParseError {
  uint32_t pos;
  std::string message;
};

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  // Returns false and fills err on a lexical error.
  bool next(Token& t, ParseError& err) {
    skip_space_and_comments();
    t = Token{};
    t.pos = static_cast<uint32_t>(i_);
    if (i_ >= src_.size()) {
      t.kind = Tok::End;
      return true;
    }
    char c = src_[i_];
    auto two = [&](char second) { return i_ + 1 < src_.size() && src_[i_ + 1] == second; };
    switch (c) {
      case '(': ++i_; t.kind = Tok::LParen; return true;
      case ')': ++i_; t.kind = Tok::RParen; return true;
      case '[': ++i_; t.kind = Tok::LBracket; return true;
      case ']': ++i_; t.kind = Tok::RBracket; return true;
      case '{': ++i_; t.kind = Tok::LBrace; return true;
      case '}': ++i_; t.kind = Tok::RBrace; return true;
      case ',': ++i_; t.kind = Tok::Comma; return true;
      case ':': ++i_; t.kind = Tok::Colon; return true;
      case '?': ++i_; t.kind = Tok::Question; return true;
      case '+': ++i_; t.kind = Tok::Plus; return true;
      case '-': ++i_; t.kind = Tok::Minus; return true;
      case '*': ++i_; t.kind = Tok::Star; return true;
      case '/': ++i_; t.kind = Tok::Slash; return true;
      case '%': ++i_; t.kind = Tok::Percent; return true;
      case '!':
        if (two('=')) { i_ += 2; t.kind = Tok::NotEq; return true; }
        ++i_; t.kind = Tok::Not; return true;
      case '<':
        if (two('=')) { i_ += 2; t.kind = Tok::LessEq; return true; }
        ++i_; t.kind = Tok::Less; return true;
      case '>':
        if (two('=')) { i_ += 2; t.kind = Tok::GreaterEq; return true; }
        ++i_; t.kind = Tok::Greater; return true;
      case '=':
        if (two('=')) { i_ += 2; t.kind = Tok::Eq; return true; }
        err = {t.pos, "unexpected '=' (did you mean '=='?)"};
        return false;
      case '&':
        if (two('&')) { i_ += 2; t.kind = Tok::And; return true; }
        err = {t.pos, "unexpected '&' (did you mean '&&'?)"};
        return false;
      case '|':
        if (two('|')) { i_ += 2; t.kind = Tok::Or; return true; }
        err = {t.pos, "unexpected '|' (did you mean '||'?)"};
        return false;
      case '`':
        return quoted_ident(t, err);
      case '.':
        if (i_ + 1 < src_.size() && isdigit(src_[i_ + 1])) return number(t, err);
        ++i_; t.kind = Tok::Dot; return true;
      default:
        break;
    }
    if (isdigit(c)) return number(t, err);
    if (c == '"' || c == '\'') return string_lit(t, err, false, false);
    if (is_ident_start(c)) {
      // String prefixes: r, b, rb, br in any case.
      size_t j = i_;
      bool raw = false, bytes = false;
      while (j < src_.size() && j - i_ < 2) {
        char p = static_cast<char>(tolower(src_[j]));
        if (p == 'r' && !raw) raw = true;
        else if (p == 'b' && !bytes) bytes = true;
        else break;
        ++j;
      }
      if (j > i_ && j < src_.size() && (src_[j] == '"' || src_[j] == '\'')) {
        i_ = j;
        return string_lit(t, err, raw, bytes);
      }
      size_t start = i_;
      while (i_ < src_.size() && (is_ident_start(src_[i_]) || isdigit(src_[i_]))) ++i_;
      t.text = std::string(src_.substr(start, i_ - start));
      if (t.text == "true") t.kind = Tok::True;
      else if (t.text == "false") t.kind = Tok::False;
      else if (t.text == "null") t.kind = Tok::Null;
      else if (t.text == "in") t.kind = Tok::In;
      else t.kind = Tok::Ident;
      return true;
    }
    err = {t.pos, std::string("unexpected character '") +
                      (static_cast<unsigned char>(c) < 0x80 ? std::string(1, c) : "non-ASCII") +
                      "'"};
    return false;
  }

 private:
  static bool isdigit(char c) { return c >= '0' && c <= '9'; }
  static bool is_ident_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  void skip_space_and_comments() {
    while (i_ < src_.size()) {
      char c = src_[i_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        ++i_;
      } else if (c == '/' && i_ + 1 < src_.size() && src_[i_ + 1] == '/') {
        while (i_ < src_.size() && src_[i_] != '\n') ++i_;
      } else {
        break;
      }
    }
  }

  bool quoted_ident(Token& t, ParseError& err) {
    size_t start = ++i_;
    while (i_ < src_.size() && src_[i_] != '`') {
      char c = src_[i_];
      if (!(is_ident_start(c) || isdigit(c) || c == '.' || c == '-' || c == '/' || c == ' ')) {
        err = {static_cast<uint32_t>(i_), "invalid character in quoted field name"};
        return false;
      }
      ++i_;
    }
    if (i_ >= src_.size() || i_ == start) {
      err = {t.pos, "unterminated or empty quoted field name"};
      return false;
    }
    t.text = std::string(src_.substr(start, i_ - start));
    ++i_;
    t.kind = Tok::QuotedIdent;
    return true;
  }

  bool number(Token& t, ParseError& err) {
    size_t start = i_;
    if (src_[i_] == '0' && i_ + 1 < src_.size() && (src_[i_ + 1] == 'x' || src_[i_ + 1] == 'X')) {
      i_ += 2;
      size_t digits = i_;
      while (i_ < src_.size() && hexval(src_[i_]) >= 0) ++i_;
      if (i_ == digits) {
        err = {t.pos, "hexadecimal literal without digits"};
        return false;
      }
      auto r = std::from_chars(src_.data() + digits, src_.data() + i_, t.u, 16);
      if (r.ec != std::errc()) {
        err = {t.pos, "integer literal out of range"};
        return false;
      }
      return int_suffix(t, err);
    }
    while (i_ < src_.size() && isdigit(src_[i_])) ++i_;
    bool is_float = false;
    if (i_ + 1 < src_.size() && src_[i_] == '.' && isdigit(src_[i_ + 1])) {
      is_float = true;
      ++i_;
      while (i_ < src_.size() && isdigit(src_[i_])) ++i_;
    }
    if (i_ < src_.size() && (src_[i_] == 'e' || src_[i_] == 'E')) {
      size_t save = i_;
      ++i_;
      if (i_ < src_.size() && (src_[i_] == '+' || src_[i_] == '-')) ++i_;
      if (i_ < src_.size() && isdigit(src_[i_])) {
        is_float = true;
        while (i_ < src_.size() && isdigit(src_[i_])) ++i_;
      } else {
        i_ = save;
      }
    }
    if (is_float) {
      auto r = std::from_chars(src_.data() + start, src_.data() + i_, t.d);
      if (r.ec == std::errc::result_out_of_range) {
        // Overflow is an error in CEL; underflow rounds to zero like strtod.
        double v = std::strtod(std::string(src_.substr(start, i_ - start)).c_str(), nullptr);
        if (v != 0.0 && (v > 1.0 || v < -1.0)) {
          err = {t.pos, "floating point literal out of range"};
          return false;
        }
        t.d = v;
      } else if (r.ec != std::errc()) {
        err = {t.pos, "invalid floating point literal"};
        return false;
      }
      t.kind = Tok::Double;
      return true;
    }
    auto r = std::from_chars(src_.data() + start, src_.data() + i_, t.u, 10);
    if (r.ec != std::errc()) {
      err = {t.pos, "integer literal out of range"};
      return false;
    }
    return int_suffix(t, err);
  }

  bool int_suffix(Token& t, ParseError& err) {
    if (i_ < src_.size() && (src_[i_] == 'u' || src_[i_] == 'U')) {
      ++i_;
      t.kind = Tok::Uint;
    } else {
      t.kind = Tok::Int;
    }
    if (i_ < src_.size() && (is_ident_start(src_[i_]) || isdigit(src_[i_]))) {
      err = {t.pos, "invalid numeric literal"};
      return false;
    }
    return true;
  }

  bool string_lit(Token& t, ParseError& err, bool raw, bool bytes) {
    char q = src_[i_];
    bool triple = i_ + 2 < src_.size() && src_[i_ + 1] == q && src_[i_ + 2] == q;
    i_ += triple ? 3 : 1;
    std::string out;
    while (true) {
      if (i_ >= src_.size()) {
        err = {t.pos, "unterminated string literal"};
        return false;
      }
      char c = src_[i_];
      if (triple) {
        if (c == q && i_ + 2 < src_.size() && src_[i_ + 1] == q && src_[i_ + 2] == q) {
          i_ += 3;
          break;
        }
      } else {
        if (c == q) {
          ++i_;
          break;
        }
        if (c == '\n' || c == '\r') {
          err = {static_cast<uint32_t>(i_), "newline in single-quoted string literal"};
          return false;
        }
      }
      if (c == '\\' && !raw) {
        if (!escape(out, err, bytes)) return false;
        continue;
      }
      if (c == '\\' && raw) {
        // A raw string keeps the backslash, but an escaped quote does not end it.
        out += c;
        ++i_;
        if (i_ < src_.size() && src_[i_] == q && !triple) {
          out += q;
          ++i_;
        }
        continue;
      }
      if (c == '\r' && triple) {
        // Normalise CRLF inside multi-line literals.
        ++i_;
        if (i_ < src_.size() && src_[i_] == '\n') ++i_;
        out += '\n';
        continue;
      }
      out += c;
      ++i_;
    }
    t.kind = bytes ? Tok::Bytes : Tok::String;
    if (!bytes && !json::valid_utf8(out)) {
      err = {t.pos, "string literal is not valid UTF-8"};
      return false;
    }
    t.text = std::move(out);
    return true;
  }

  bool escape(std::string& out, ParseError& err, bool bytes) {
    uint32_t at = static_cast<uint32_t>(i_);
    ++i_;
    if (i_ >= src_.size()) {
      err = {at, "unterminated escape sequence"};
      return false;
    }
    char e = src_[i_++];
    switch (e) {
      case 'a': out += '\a'; return true;
      case 'b': out += '\b'; return true;
      case 'f': out += '\f'; return true;
      case 'n': out += '\n'; return true;
      case 'r': out += '\r'; return true;
      case 't': out += '\t'; return true;
      case 'v': out += '\v'; return true;
      case '\\': out += '\\'; return true;
      case '?': out += '?'; return true;
      case '"': out += '"'; return true;
      case '\'': out += '\''; return true;
      case '`': out += '`'; return true;
      case 'x':
      case 'X':
      case 'u':
      case 'U': {
        int n = (e == 'x' || e == 'X') ? 2 : (e == 'u' ? 4 : 8);
        if (bytes && (e == 'u' || e == 'U')) {
          err = {at, "\\u escapes are not allowed in bytes literals"};
          return false;
        }
        uint32_t cp = 0;
        for (int k = 0; k < n; ++k) {
          if (i_ >= src_.size() || hexval(src_[i_]) < 0) {
            err = {at, "invalid hexadecimal escape"};
            return false;
          }
          cp = cp * 16 + static_cast<uint32_t>(hexval(src_[i_++]));
        }
        if (bytes) {
          out += static_cast<char>(cp);
          return true;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
          err = {at, "escape is not a valid Unicode code point"};
          return false;
        }
        append_utf8(out, cp);
        return true;
      }
      default:
        if (e >= '0' && e <= '3') {
          uint32_t v = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2; ++k) {
            if (i_ >= src_.size() || src_[i_] < '0' || src_[i_] > '7') {
              err = {at, "invalid octal escape"};
              return false;
            }
            v = v * 8 + static_cast<uint32_t>(src_[i_++] - '0');
          }
          if (bytes) out += static_cast<char>(v);
          else append_utf8(out, v);
          return true;
        }
        err = {at, std::string("invalid escape sequence '\\") + e + "'"};
        return false;
    }
  }

  std::string_view src_;
  size_t i_ = 0;
};

class Parser {
 public:
  Parser(std::string_view src, const ParseLimits& limits) : lex_(src), limits_(limits) {}

  ExprPtr parse_all() {
    advance();
    ExprPtr e = expr();
    if (tok_.kind != Tok::End) fail(tok_.pos, "unexpected " + describe(tok_) + " after expression");
    return e;
  }

 private:
  struct Fail {};

  [[noreturn]] void fail(uint32_t pos, std::string message) {
    error_ = {pos, std::move(message)};
    throw Fail{};
  }

 public:
  ParseError error_{0, ""};

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Tok::End: return "end of expression";
      case Tok::Ident: return "'" + t.text + "'";
      case Tok::Int:
      case Tok::Uint:
      case Tok::Double: return "number";
      case Tok::String: return "string";
      case Tok::Bytes: return "bytes";
      default: return "token";
    }
  }

 private:
  void advance() {
    ParseError err;
    if (!lex_.next(tok_, err)) fail(err.pos, err.message);
  }

  bool accept(Tok k) {
    if (tok_.kind != k) return false;
    advance();
    return true;
  }

  void expect(Tok k, const char* what) {
    if (tok_.kind != k) fail(tok_.pos, std::string("expected ") + what + ", found " + describe(tok_));
    advance();
  }

  struct DepthGuard {
    DepthGuard(Parser& p, uint32_t pos) : p_(p) {
      if (++p_.depth_ > p_.limits_.max_depth)
        p_.fail(pos, "expression nested deeper than " + std::to_string(p_.limits_.max_depth) +
                         " levels");
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };

  ExprPtr node(ExprKind k, uint32_t pos) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->pos = pos;
    return e;
  }

  // Tracks the tree's height, so that long chains like a+a+...+a (which the parser builds
  // in a loop) cannot overflow the evaluator's stack.
  ExprPtr finish(ExprPtr e) {
    uint32_t h = 0;
    for (const auto& a : e->args) h = std::max(h, a->height);
    if (h + 1 > limits_.max_depth)
      fail(e->pos, "expression nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    e->height = h + 1;
    return e;
  }

  ExprPtr binary(const char* fn, uint32_t pos, ExprPtr a, ExprPtr b) {
    auto e = node(ExprKind::Call, pos);
    e->name = fn;
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return finish(std::move(e));
  }

  ExprPtr expr() {
    DepthGuard g(*this, tok_.pos);
    ExprPtr cond = logical(Tok::Or);
    if (tok_.kind == Tok::Question) {
      uint32_t pos = tok_.pos;
      advance();
      ExprPtr then = logical(Tok::Or);
      expect(Tok::Colon, "':'");
      ExprPtr otherwise = expr();
      auto e = node(ExprKind::Conditional, pos);
      e->args.push_back(std::move(cond));
      e->args.push_back(std::move(then));
      e->args.push_back(std::move(otherwise));
      return finish(std::move(e));
    }
    return cond;
  }

  // && and || chains are built as balanced trees: their operators are associative.
  ExprPtr logical(Tok op) {
    std::vector<ExprPtr> terms;
    std::vector<uint32_t> positions;
    terms.push_back(op == Tok::Or ? logical(Tok::And) : relation());
    while (tok_.kind == op) {
      positions.push_back(tok_.pos);
      advance();
      terms.push_back(op == Tok::Or ? logical(Tok::And) : relation());
    }
    if (terms.size() == 1) return std::move(terms[0]);
    return balance(op == Tok::Or ? ExprKind::Or : ExprKind::And, terms, positions, 0, terms.size());
  }

  ExprPtr balance(ExprKind k, std::vector<ExprPtr>& terms, const std::vector<uint32_t>& pos,
                  size_t lo, size_t hi) {
    if (hi - lo == 1) return std::move(terms[lo]);
    size_t mid = (lo + hi) / 2;
    auto e = node(k, pos[mid - 1]);
    e->args.push_back(balance(k, terms, pos, lo, mid));
    e->args.push_back(balance(k, terms, pos, mid, hi));
    return finish(std::move(e));
  }

  ExprPtr relation() {
    ExprPtr left = addition();
    while (true) {
      const char* fn = nullptr;
      switch (tok_.kind) {
        case Tok::Less: fn = "_<_"; break;
        case Tok::LessEq: fn = "_<=_"; break;
        case Tok::Greater: fn = "_>_"; break;
        case Tok::GreaterEq: fn = "_>=_"; break;
        case Tok::Eq: fn = "_==_"; break;
        case Tok::NotEq: fn = "_!=_"; break;
        case Tok::In: fn = "@in"; break;
        default: return left;
      }
      uint32_t pos = tok_.pos;
      advance();
      left = binary(fn, pos, std::move(left), addition());
    }
  }

  ExprPtr addition() {
    ExprPtr left = multiplication();
    while (tok_.kind == Tok::Plus || tok_.kind == Tok::Minus) {
      const char* fn = tok_.kind == Tok::Plus ? "_+_" : "_-_";
      uint32_t pos = tok_.pos;
      advance();
      left = binary(fn, pos, std::move(left), multiplication());
    }
    return left;
  }

  ExprPtr multiplication() {
    ExprPtr left = unary();
    while (tok_.kind == Tok::Star || tok_.kind == Tok::Slash || tok_.kind == Tok::Percent) {
      const char* fn = tok_.kind == Tok::Star ? "_*_" : (tok_.kind == Tok::Slash ? "_/_" : "_%_");
      uint32_t pos = tok_.pos;
      advance();
      left = binary(fn, pos, std::move(left), unary());
    }
    return left;
  }

  ExprPtr unary() {
    DepthGuard g(*this, tok_.pos);
    if (tok_.kind == Tok::Not) {
      uint32_t pos = tok_.pos;
      advance();
      auto e = node(ExprKind::Not, pos);
      e->args.push_back(unary());
      return finish(std::move(e));
    }
    if (tok_.kind == Tok::Minus) {
      uint32_t pos = tok_.pos;
      advance();
      // A minus directly before a number literal is part of the literal, so that
      // -9223372036854775808 is an int.
      if (tok_.kind == Tok::Int || tok_.kind == Tok::Double) {
        auto lit = node(ExprKind::Literal, pos);
        if (tok_.kind == Tok::Int) {
          if (tok_.u > 9223372036854775808ull) fail(tok_.pos, "integer literal out of range");
          lit->literal = Value::integer(static_cast<int64_t>(0 - tok_.u));
        } else {
          lit->literal = Value::dbl(-tok_.d);
        }
        advance();
        return member_suffix(finish(std::move(lit)));
      }
      auto e = node(ExprKind::Negate, pos);
      e->args.push_back(unary());
      return finish(std::move(e));
    }
    return member_suffix(primary());
  }

  std::string selector_name() {
    if (tok_.kind == Tok::Ident || tok_.kind == Tok::QuotedIdent || tok_.kind == Tok::In ||
        tok_.kind == Tok::True || tok_.kind == Tok::False || tok_.kind == Tok::Null) {
      std::string n = tok_.text;
      if (tok_.kind == Tok::In) n = "in";
      advance();
      return n;
    }
    fail(tok_.pos, "expected a field name after '.', found " + describe(tok_));
  }

  std::vector<ExprPtr> call_args(Tok close) {
    std::vector<ExprPtr> args;
    if (tok_.kind != close) {
      while (true) {
        args.push_back(expr());
        if (!accept(Tok::Comma)) break;
        if (tok_.kind == close && close != Tok::RParen) break;  // trailing comma in lists
      }
    }
    expect(close, close == Tok::RParen ? "')'" : "']'");
    return args;
  }

  ExprPtr member_suffix(ExprPtr e) {
    while (true) {
      if (tok_.kind == Tok::Dot) {
        uint32_t pos = tok_.pos;
        advance();
        if (tok_.kind == Tok::Question) fail(tok_.pos, "optional field selection is not supported");
        bool quoted = tok_.kind == Tok::QuotedIdent;
        std::string name = selector_name();
        if (tok_.kind == Tok::LParen && !quoted) {
          advance();
          std::vector<ExprPtr> args = call_args(Tok::RParen);
          e = receiver_call(pos, std::move(name), std::move(e), std::move(args));
        } else {
          auto s = node(ExprKind::Select, pos);
          s->name = std::move(name);
          s->args.push_back(std::move(e));
          e = finish(std::move(s));
        }
      } else if (tok_.kind == Tok::LBracket) {
        uint32_t pos = tok_.pos;
        advance();
        if (tok_.kind == Tok::Question) fail(tok_.pos, "optional index is not supported");
        auto idx = node(ExprKind::Index, pos);
        idx->args.push_back(std::move(e));
        idx->args.push_back(expr());
        expect(Tok::RBracket, "']'");
        e = finish(std::move(idx));
      } else {
        return e;
      }
    }
  }

  ExprPtr receiver_call(uint32_t pos, std::string name, ExprPtr target, std::vector<ExprPtr> args) {
    Macro m = Macro::None;
    if (name == "all" && args.size() == 2) m = Macro::All;
    else if (name == "exists" && args.size() == 2) m = Macro::Exists;
    else if (name == "exists_one" && args.size() == 2) m = Macro::ExistsOne;
    else if (name == "map" && args.size() == 2) m = Macro::Map;
    else if (name == "map" && args.size() == 3) m = Macro::MapFilter;
    else if (name == "filter" && args.size() == 2) m = Macro::Filter;
    if (m != Macro::None) {
      if (args[0]->kind != ExprKind::Ident || args[0]->root_scoped)
        fail(args[0]->pos, "the first argument of " + name + "() must be a simple variable name");
      auto c = node(ExprKind::Comprehension, pos);
      c->macro = m;
      c->name = args[0]->name;
      c->args.push_back(std::move(target));
      for (size_t i = 1; i < args.size(); ++i) c->args.push_back(std::move(args[i]));
      return finish(std::move(c));
    }
    auto c = node(ExprKind::Call, pos);
    c->name = std::move(name);
    c->receiver = true;
    c->args.push_back(std::move(target));
    for (auto& a : args) c->args.push_back(std::move(a));
    return finish(std::move(c));
  }

  ExprPtr primary() {
    uint32_t pos = tok_.pos;
    switch (tok_.kind) {
      case Tok::Int: {
        if (tok_.u > 9223372036854775807ull) fail(pos, "integer literal out of range");
        auto e = node(ExprKind::Literal, pos);
        e->literal = Value::integer(static_cast<int64_t>(tok_.u));
        advance();
        return finish(std::move(e));
      }
      case Tok::Uint: {
        auto e = node(ExprKind::Literal, pos);
        e->literal = Value::uinteger(tok_.u);
        advance();
        return finish(std::move(e));
      }
      case Tok::Double: {
        auto e = node(ExprKind::Literal, pos);
        e->literal = Value::dbl(tok_.d);
        advance();
        return finish(std::move(e));
      }
      case Tok::String:
      case Tok::Bytes: {
        auto e = node(ExprKind::Literal, pos);
        e->literal = tok_.kind == Tok::String ? Value::string(std::move(tok_.text))
                                              : Value::bytes(std::move(tok_.text));
        advance();
        return finish(std::move(e));
      }
      case Tok::True:
      case Tok::False: {
        auto e = node(ExprKind::Literal, pos);
        e->literal = Value::boolean(tok_.kind == Tok::True);
        advance();
        return finish(std::move(e));
      }
      case Tok::Null: {
        auto e = node(ExprKind::Literal, pos);
        advance();
        return finish(std::move(e));
      }
      case Tok::LParen: {
        advance();
        ExprPtr e = expr();
        expect(Tok::RParen, "')'");
        return e;
      }
      case Tok::LBracket: {
        advance();
        auto e = node(ExprKind::CreateList, pos);
        e->args = call_args(Tok::RBracket);
        return finish(std::move(e));
      }
      case Tok::LBrace: {
        advance();
        auto e = node(ExprKind::CreateMap, pos);
        while (tok_.kind != Tok::RBrace) {
          if (tok_.kind == Tok::Question) fail(tok_.pos, "optional map entries are not supported");
          e->args.push_back(expr());
          expect(Tok::Colon, "':'");
          e->args.push_back(expr());
          if (!accept(Tok::Comma)) break;
        }
        expect(Tok::RBrace, "'}'");
        return finish(std::move(e));
      }
      case Tok::Dot:
      case Tok::Ident: {
        bool root = accept(Tok::Dot);
        if (tok_.kind != Tok::Ident) fail(tok_.pos, "expected a name, found " + describe(tok_));
        std::string name = tok_.text;
        uint32_t npos = tok_.pos;
        if (is_reserved(name)) fail(npos, "'" + name + "' is a reserved word");
        advance();
        if (tok_.kind == Tok::LParen) {
          advance();
          std::vector<ExprPtr> args = call_args(Tok::RParen);
          if (name == "has" && !root) {
            if (args.size() != 1 || args[0]->kind != ExprKind::Select)
              fail(npos, "has() takes one field selection, like has(event.field)");
            args[0]->test_only = true;
            return std::move(args[0]);
          }
          auto c = node(ExprKind::Call, npos);
          c->name = std::move(name);
          c->args = std::move(args);
          return finish(std::move(c));
        }
        if (tok_.kind == Tok::LBrace) fail(tok_.pos, "message construction is not supported");
        auto e = node(ExprKind::Ident, npos);
        e->name = std::move(name);
        e->root_scoped = root;
        return finish(std::move(e));
      }
      default:
        fail(pos, "unexpected " + describe(tok_));
    }
  }

  Lexer lex_;
  ParseLimits limits_;
  Token tok_;
  uint32_t depth_ = 0;
};

}  // namespace

std::variant<ExprPtr, Diagnostic> parse(std::string_view source, const ParseLimits& limits) {
  if (source.size() > limits.max_bytes) {
    return make_diagnostic(source, 0,
                           "expression of " + std::to_string(source.size()) +
                               " bytes exceeds the limit of " + std::to_string(limits.max_bytes));
  }
  Parser p(source, limits);
  try {
    return p.parse_all();
  } catch (...) {
    return make_diagnostic(source, p.error_.pos, p.error_.message);
  }
}

}  // namespace switchboard::cel
