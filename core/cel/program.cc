#include "core/cel/program.h"

#include <re2/re2.h>

#include <algorithm>
#include <new>

#include "core/cel/functions.h"
#include "core/json/document.h"

namespace switchboard::cel {

int Environment::declare(std::string name) {
  int existing = slot(name);
  if (existing >= 0) return existing;
  names_.push_back(std::move(name));
  return static_cast<int>(names_.size() - 1);
}

int Environment::slot(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

const Environment& Environment::routing() {
  static const Environment env = [] {
    Environment e;
    e.declare("event");
    e.declare("subject");
    e.declare("headers");
    return e;
  }();
  return env;
}

namespace {

struct CompileError {
  uint32_t pos;
  std::string message;
};

bool is_type_name(std::string_view n) {
  static const std::string_view kTypes[] = {"bool",   "int",  "uint",      "double",
                                            "string", "bytes", "list",     "map",
                                            "null_type", "type"};
  return std::find(std::begin(kTypes), std::end(kTypes), n) != std::end(kTypes);
}

Value type_value(std::string_view n) {
  if (n == "google.protobuf.Timestamp") return Value::type(type_name(Kind::Timestamp));
  if (n == "google.protobuf.Duration") return Value::type(type_name(Kind::Duration));
  static const Kind kinds[] = {Kind::Bool,   Kind::Int,   Kind::Uint, Kind::Double,
                               Kind::String, Kind::Bytes, Kind::List, Kind::Map,
                               Kind::Null,   Kind::Type};
  for (Kind k : kinds) {
    if (type_name(k) == n) return Value::type(type_name(k));
  }
  return Value::type("dyn");
}

// Resolves names in place: variables to slots, calls to functions, literal regexes to
// compiled patterns. Reports the first problem.
class Checker {
 public:
  Checker(const Environment& env, const Limits& limits, bool strict)
      : env_(env), limits_(limits), strict_(strict) {}

  void check(ExprPtr& e) {
    switch (e->kind) {
      case ExprKind::Ident:
        resolve_ident(e);
        return;
      case ExprKind::Select:
        if (try_qualified(e)) return;
        check(e->args[0]);
        return;
      case ExprKind::Call:
        check_call(e);
        return;
      case ExprKind::Comprehension: {
        check(e->args[0]);
        int slot = static_cast<int>(env_.names().size() + scopes_.size());
        scopes_.emplace_back(e->name, slot);
        locals_ = std::max<uint32_t>(locals_, static_cast<uint32_t>(scopes_.size()));
        for (size_t i = 1; i < e->args.size(); ++i) check(e->args[i]);
        scopes_.pop_back();
        e->slot = slot;
        return;
      }
      default:
        for (auto& a : e->args) check(a);
        return;
    }
  }

  uint32_t locals() const { return locals_; }

 private:
  int local_slot(std::string_view name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      if (it->first == name) return it->second;
    }
    return -1;
  }

  // The dotted name of a chain of selections on an identifier ("a.b.c"), or empty.
  static bool dotted_name(const Expr& e, std::string& out, bool& root) {
    if (e.kind == ExprKind::Ident) {
      out = e.name;
      root = e.root_scoped;
      return true;
    }
    if (e.kind == ExprKind::Select && !e.test_only) {
      if (!dotted_name(*e.args[0], out, root)) return false;
      out += '.';
      out += e.name;
      return true;
    }
    return false;
  }

  bool try_qualified(ExprPtr& e) {
    if (e->test_only) return false;
    std::string name;
    bool root = false;
    if (!dotted_name(*e, name, root)) return false;
    std::string first = name.substr(0, name.find('.'));
    if (!root && local_slot(first) >= 0) return false;
    int slot = env_.slot(name);
    if (slot >= 0) {
      auto id = std::make_unique<Expr>();
      id->kind = ExprKind::Ident;
      id->pos = e->pos;
      id->name = name;
      id->slot = slot;
      e = std::move(id);
      return true;
    }
    if (name == "google.protobuf.Timestamp" || name == "google.protobuf.Duration") {
      auto lit = std::make_unique<Expr>();
      lit->kind = ExprKind::Literal;
      lit->pos = e->pos;
      lit->literal = type_value(name);
      e = std::move(lit);
      return true;
    }
    return false;
  }

  void resolve_ident(ExprPtr& e) {
    if (!e->root_scoped) {
      int local = local_slot(e->name);
      if (local >= 0) {
        e->slot = local;
        return;
      }
    }
    int slot = env_.slot(e->name);
    if (slot >= 0) {
      e->slot = slot;
      return;
    }
    if (is_type_name(e->name)) {
      e->kind = ExprKind::Literal;
      e->literal = type_value(e->name);
      return;
    }
    std::vector<std::string> candidates = env_.names();
    for (const auto& s : scopes_) candidates.push_back(s.first);
    std::string hint = closest_match(e->name, candidates);
    unresolved(e, "undeclared reference to '" + e->name + "'" +
                      (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
  }

  void check_call(ExprPtr& e) {
    std::string name = e->name;
    // Namespaced functions such as strings.quote parse as a call on an identifier.
    if (e->receiver && e->args[0]->kind == ExprKind::Ident && env_.slot(e->args[0]->name) < 0 &&
        local_slot(e->args[0]->name) < 0) {
      std::string qualified = e->args[0]->name + "." + name;
      if (const FunctionDef* f = find_function(qualified); f != nullptr && f->global) {
        e->args.erase(e->args.begin());
        e->receiver = false;
        e->name = qualified;
        name = qualified;
      }
    }
    const FunctionDef* fn = find_function(name);
    if (fn == nullptr || (e->receiver ? !fn->receiver : !fn->global)) {
      std::string hint = closest_match(name, function_names());
      unresolved(e, "undeclared reference to function '" + name + "'" +
                        (fn != nullptr ? (e->receiver ? " as a method" : " as a global function")
                                       : "") +
                        (hint.empty() || hint == name ? "" : " (did you mean '" + hint + "'?)"));
      return;
    }
    size_t n = e->args.size();
    if (n < fn->min_args || n > fn->max_args) {
      size_t shown_min = fn->min_args - (e->receiver ? 1 : 0);
      size_t shown_max = fn->max_args - (e->receiver ? 1 : 0);
      throw CompileError{e->pos, "'" + name + "' takes " +
                                     (shown_min == shown_max
                                          ? std::to_string(shown_min)
                                          : std::to_string(shown_min) + " to " +
                                                std::to_string(shown_max)) +
                                     " argument" + (shown_max == 1 ? "" : "s") + ", not " +
                                     std::to_string(n - (e->receiver ? 1 : 0))};
    }
    e->fn = fn;
    for (auto& a : e->args) check(a);
    if (name == "matches" && n == 2 && e->args[1]->kind == ExprKind::Literal &&
        e->args[1]->literal.kind() == Kind::String) {
      RE2::Options opts;
      opts.set_log_errors(false);
      opts.set_max_mem(static_cast<int64_t>(limits_.max_regex_memory));
      auto re = std::make_shared<RE2>(e->args[1]->literal.text(), opts);
      if (!re->ok()) {
        throw CompileError{e->args[1]->pos, "invalid regular expression: " + re->error()};
      }
      if (static_cast<size_t>(re->ProgramSize()) > limits_.max_regex_program) {
        throw CompileError{e->args[1]->pos,
                           "regular expression too large (program size " +
                               std::to_string(re->ProgramSize()) + ", limit " +
                               std::to_string(limits_.max_regex_program) + ")"};
      }
      e->regex = std::move(re);
    }
  }

  // In lenient mode a name that does not resolve becomes an error value, raised only if
  // evaluation reaches it.
  void unresolved(ExprPtr& e, std::string message) {
    if (strict_) throw CompileError{e->pos, std::move(message)};
    e->kind = ExprKind::Literal;
    e->literal = Value::error(std::move(message));
    e->args.clear();
  }

  const Environment& env_;
  const Limits& limits_;
  bool strict_;
  std::vector<std::pair<std::string, int>> scopes_;
  uint32_t locals_ = 0;
};

struct Frame {
  const Value* globals;
  Value* locals;
  uint32_t n_globals;
  EvalState state;
};

[[gnu::cold, gnu::noinline]] Value budget_error(const EvalState& s) {
  return Value::error("evaluation exceeded its budget of " + std::to_string(s.max_steps) +
                      " steps");
}

[[gnu::cold, gnu::noinline]] Value exhaust(EvalState& s) {
  s.exhausted = true;
  return budget_error(s);
}

// Beyond its one step, a call is charged for the data it reads and builds: a step per KiB
// of text, and per element of a list or map it builds. Otherwise the work of a call is not
// bounded by the steps that lead to it: copying a 1 MiB string in each of 10,000
// iterations is 10 GiB, and scanning it as often takes minutes.
uint64_t text_cost(const Value& v) {
  return v.kind() == Kind::String || v.kind() == Kind::Bytes ? v.text().size() / 1024 : 0;
}

uint64_t built_cost(const Value& v) {
  if ((v.kind() == Kind::List || v.kind() == Kind::Map) && !v.is_json()) return v.size();
  return text_cost(v);
}

bool charge(EvalState& s, uint64_t cost) {
  if (s.exhausted || s.steps > s.max_steps || cost > s.max_steps - s.steps) {
    s.exhausted = true;
    return false;
  }
  s.steps += cost;
  return true;
}

Value eval(const Expr& e, Frame& f);
Value select(const Expr& e, Frame& f);
Value call(const Expr& e, Frame& f);
Value logical(const Expr& e, Frame& f);
Value eval_other(const Expr& e, Frame& f);

const Value& variable(const Expr& e, const Frame& f) {
  const auto slot = static_cast<uint32_t>(e.slot);
  return slot < f.n_globals ? f.globals[slot] : f.locals[slot - f.n_globals];
}

// Every node is one step. The dispatch is inlined where a node evaluates its operands: a
// literal or a variable is copied straight into place, and each other kind has a function
// of its own, so that no evaluation pays for the stack frame of the largest kind.
[[gnu::always_inline]] inline Value eval_node(const Expr& e, Frame& f) {
  if (++f.state.steps > f.state.max_steps) return exhaust(f.state);
  switch (e.kind) {
    case ExprKind::Literal:
      return e.literal;
    case ExprKind::Ident:
      return variable(e, f);
    case ExprKind::Select:
      return select(e, f);
    case ExprKind::Call:
      return call(e, f);
    case ExprKind::And:
    case ExprKind::Or:
      return logical(e, f);
    default:
      return eval_other(e, f);
  }
}

Value eval(const Expr& e, Frame& f) { return eval_node(e, f); }

// A chain of plain selections (a.b.c) is walked in one go: the base variable is read in
// place, and while the chain stays inside a JSON document only node indices change, so
// one Value is built at the end rather than one per step. Errors, and the steps charged,
// are those of evaluating each selection on its own.
constexpr size_t kMaxChain = 16;

Value select_chain(const Expr& e, Frame& f) {
  const Expr* links[kMaxChain];  // links[0] is `e`, the last selection applied
  size_t depth = 0;
  const Expr* base = &e;
  while (base->kind == ExprKind::Select && !base->test_only && depth < kMaxChain) {
    links[depth++] = base;
    base = base->args[0].get();
  }
  // eval() charged the step of `e` already.
  f.state.steps += depth - 1;
  if (f.state.steps > f.state.max_steps) {
    f.state.exhausted = true;
    return budget_error(f.state);
  }
  Value held;  // the current value when it is not the base variable itself
  const Value* current = &held;
  if (base->kind == ExprKind::Ident) {
    if (++f.state.steps > f.state.max_steps) {
      f.state.exhausted = true;
      return budget_error(f.state);
    }
    current = &variable(*base, f);
  } else {
    held = eval(*base, f);
  }
  for (size_t i = depth; i-- > 0;) {
    if (current->is_error()) return *current;
    if (current->kind() != Kind::Map) {
      return Value::error("cannot select field '" + links[i]->name + "' from a value of type " +
                          std::string(type_name(*current)));
    }
    if (current->is_json()) {
      const json::Document* doc = current->json_doc();
      uint32_t node = current->json_node();
      for (;;) {
        node = doc->find_member(node, links[i]->name);
        if (node == 0) return Value::error("no such key: '" + links[i]->name + "'");
        if (i == 0) return Value::json(doc, node);
        --i;
        if (doc->node(node).type != json::Type::Object) break;
      }
      held = Value::json(doc, node);
      current = &held;
      ++i;  // the selection at i still applies, to a value that is not an object
      continue;
    }
    bool found = false;
    Value v = current->find(Value::string_view(links[i]->name), found);
    if (!found) return Value::error("no such key: '" + links[i]->name + "'");
    if (i == 0) return v;
    held = std::move(v);
    current = &held;
  }
  return held;  // not reached: depth >= 1
}

Value select(const Expr& e, Frame& f) {
  if (!e.test_only) return select_chain(e, f);
  Value target = eval(*e.args[0], f);
  if (target.is_error()) return target;
  if (target.kind() != Kind::Map) {
    if (e.test_only) {
      return Value::error("has() on a value of type " + std::string(type_name(target)));
    }
    return Value::error("cannot select field '" + e.name + "' from a value of type " +
                        std::string(type_name(target)));
  }
  bool found = false;
  Value v = target.find(Value::string_view(e.name), found);
  if (e.test_only) return Value::boolean(found);
  if (!found) return Value::error("no such key: '" + e.name + "'");
  return v;
}

Value comprehension(const Expr& e, Frame& f) {
  Value range = eval(*e.args[0], f);
  if (range.is_error()) return range;
  if (range.kind() != Kind::List && range.kind() != Kind::Map) {
    return Value::error("cannot iterate over a value of type " + std::string(type_name(range)));
  }
  ValueList items;
  if (range.kind() == Kind::Map) {
    range.keys(items);
  } else {
    range.elements(items);
  }
  Value& var = f.locals[static_cast<uint32_t>(e.slot) - f.n_globals];
  Value saved = var;
  Value first_error;
  bool have_error = false;
  ValueList out;
  int64_t count = 0;
  Value result;
  bool decided = false;
  for (const Value& item : items) {
    if (++f.state.steps > f.state.max_steps || f.state.exhausted) {
      f.state.exhausted = true;
      var = saved;
      return budget_error(f.state);
    }
    var = item;
    Value p = eval(*e.args[1], f);
    if (f.state.exhausted) {
      var = saved;
      return budget_error(f.state);
    }
    switch (e.macro) {
      case Macro::All:
      case Macro::Exists: {
        bool stop_on = e.macro == Macro::Exists;
        if (p.is_error() || p.kind() != Kind::Bool) {
          if (!have_error) first_error = p.is_error() ? p : no_overload(e.name, &p, 1);
          have_error = true;
        } else if (p.bool_value() == stop_on) {
          result = Value::boolean(stop_on);
          decided = true;
        }
        break;
      }
      case Macro::ExistsOne:
        if (p.is_error()) { result = p; decided = true; break; }
        if (p.kind() != Kind::Bool) { result = no_overload(e.name, &p, 1); decided = true; break; }
        if (p.bool_value()) ++count;
        break;
      case Macro::Map:
        if (p.is_error()) { result = p; decided = true; break; }
        out.push_back(std::move(p));
        break;
      case Macro::Filter:
      case Macro::MapFilter:
        if (p.is_error()) { result = p; decided = true; break; }
        if (p.kind() != Kind::Bool) { result = no_overload(e.name, &p, 1); decided = true; break; }
        if (p.bool_value()) {
          if (e.macro == Macro::Filter) {
            out.push_back(item);
          } else {
            Value t = eval(*e.args[2], f);
            if (t.is_error()) { result = t; decided = true; break; }
            out.push_back(std::move(t));
          }
        }
        break;
      case Macro::None:
        break;
    }
    if (decided) break;
  }
  var = saved;
  if (decided) return result;
  switch (e.macro) {
    case Macro::All:
      return have_error ? first_error : Value::boolean(true);
    case Macro::Exists:
      return have_error ? first_error : Value::boolean(false);
    case Macro::ExistsOne:
      return Value::boolean(count == 1);
    default:
      return Value::list(std::move(out));
  }
}

// Only the arguments a call has are constructed: most calls have two of the four slots.
class CallArgs {
 public:
  CallArgs() = default;
  CallArgs(const CallArgs&) = delete;
  CallArgs& operator=(const CallArgs&) = delete;
  ~CallArgs() {
    for (size_t i = 0; i < n_; ++i) data()[i].~Value();
  }
  Value* data() { return std::launder(reinterpret_cast<Value*>(storage_)); }
  // Evaluates straight into the next slot: the result is constructed there, not moved.
  const Value& push_eval(const Expr& e, Frame& f) {
    Value* slot = new (storage_ + n_ * sizeof(Value)) Value(eval_node(e, f));
    ++n_;
    return *slot;
  }
  size_t size() const { return n_; }

 private:
  alignas(Value) unsigned char storage_[4 * sizeof(Value)];
  size_t n_ = 0;
};

Value call(const Expr& e, Frame& f) {
  CallArgs args;
  const size_t n = e.args.size();  // at most 4: the checker holds calls to max_args
  for (size_t i = 0; i < n; ++i) {
    const Value& arg = args.push_eval(*e.args[i], f);
    if (arg.is_error()) return arg;
  }
  uint64_t read = 0;
  for (size_t i = 0; i < n; ++i) read += text_cost(args.data()[i]);
  if (!charge(f.state, read)) return budget_error(f.state);
  Value result = e.fn->impl(e, args.data(), n, f.state);
  if (!charge(f.state, built_cost(result))) return budget_error(f.state);
  return result;
}

Value logical(const Expr& e, Frame& f) {
  bool is_and = e.kind == ExprKind::And;
  Value l = eval_node(*e.args[0], f);
  if (l.kind() == Kind::Bool && l.bool_value() != is_and) return l;
  if (f.state.exhausted) return budget_error(f.state);
  Value r = eval_node(*e.args[1], f);
  if (f.state.exhausted) return budget_error(f.state);
  if (r.kind() == Kind::Bool && r.bool_value() != is_and) return r;
  if (l.kind() == Kind::Bool && r.kind() == Kind::Bool) return r;
  if (l.is_error()) return l;
  if (r.is_error()) return r;
  Value args[2] = {l, r};
  return no_overload(is_and ? "_&&_" : "_||_", args, 2);
}

// The kinds that eval_node does not dispatch itself; their step is charged.
Value eval_other(const Expr& e, Frame& f) {
  switch (e.kind) {
    case ExprKind::Index: {
      Value c = eval(*e.args[0], f);
      if (c.is_error()) return c;
      Value k = eval(*e.args[1], f);
      if (k.is_error()) return k;
      return index_value(c, k);
    }
    case ExprKind::Not: {
      Value v = eval(*e.args[0], f);
      if (v.is_error()) return v;
      if (v.kind() != Kind::Bool) return no_overload("!_", &v, 1);
      return Value::boolean(!v.bool_value());
    }
    case ExprKind::Negate: {
      Value v = eval(*e.args[0], f);
      if (v.is_error()) return v;
      if (v.kind() == Kind::Int) {
        if (v.int_value() == INT64_MIN) return Value::error("integer overflow in negation");
        return Value::integer(-v.int_value());
      }
      if (v.kind() == Kind::Double) return Value::dbl(-v.double_value());
      return no_overload("-_", &v, 1);
    }
    case ExprKind::Conditional: {
      Value c = eval(*e.args[0], f);
      if (c.is_error()) return c;
      if (c.kind() != Kind::Bool) return no_overload("_?_:_", &c, 1);
      return eval(*e.args[c.bool_value() ? 1 : 2], f);
    }
    case ExprKind::CreateList: {
      ValueList items;
      items.reserve(e.args.size());
      for (const auto& a : e.args) {
        Value v = eval(*a, f);
        if (v.is_error()) return v;
        items.push_back(std::move(v));
      }
      return Value::list(std::move(items));
    }
    case ExprKind::CreateMap: {
      MapEntries entries;
      entries.reserve(e.args.size() / 2);
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], f);
        if (k.is_error()) return k;
        Kind kk = k.kind();
        if (kk != Kind::String && kk != Kind::Int && kk != Kind::Uint && kk != Kind::Bool) {
          return Value::error("unsupported map key type: " + std::string(type_name(k)));
        }
        Value v = eval(*e.args[i + 1], f);
        if (v.is_error()) return v;
        for (const auto& existing : entries) {
          if (equals(existing.first, k)) {
            return Value::error("duplicate map key " + debug_string(k));
          }
        }
        entries.emplace_back(std::move(k), std::move(v));
      }
      return Value::map(std::move(entries));
    }
    case ExprKind::Comprehension:
      return comprehension(e, f);
    case ExprKind::Literal:
      return e.literal;
    case ExprKind::Ident:
      return variable(e, f);
    case ExprKind::Select:
      return select(e, f);
    case ExprKind::Call:
      return call(e, f);
    case ExprKind::And:
    case ExprKind::Or:
      return logical(e, f);
  }
  return Value::error("unknown expression kind");
}

}  // namespace

std::variant<Program, Diagnostic> Program::compile(std::string_view source, const Environment& env,
                                                   const Limits& limits) {
  return build(source, env, limits, true);
}

std::variant<Program, Diagnostic> Program::compile_unchecked(std::string_view source,
                                                             const Environment& env,
                                                             const Limits& limits) {
  return build(source, env, limits, false);
}

namespace {

void sum_string_literals(const Expr& e, size_t& total) {
  if (e.kind == ExprKind::Literal && e.literal.kind() == Kind::String) total += e.literal.text().size();
  for (const auto& a : e.args) sum_string_literals(*a, total);
}

void borrow_string_literals(Expr& e, std::string& arena) {
  if (e.kind == ExprKind::Literal && e.literal.kind() == Kind::String) {
    const size_t at = arena.size();
    arena += e.literal.text();
    e.literal = Value::string_view(std::string_view(arena).substr(at));
  }
  for (auto& a : e.args) borrow_string_literals(*a, arena);
}

bool borrows_from(const Value& v, std::string_view arena) {
  switch (v.kind()) {
    case Kind::String:
      // <=: an empty literal may point at the end of the buffer.
      return v.text().data() >= arena.data() && v.text().data() <= arena.data() + arena.size();
    case Kind::List:
      if (v.is_json()) return false;
      for (const Value& item : v.owned_list()) {
        if (borrows_from(item, arena)) return true;
      }
      return false;
    case Kind::Map:
      if (v.is_json()) return false;
      for (const auto& [k, val] : v.owned_map()) {
        if (borrows_from(k, arena) || borrows_from(val, arena)) return true;
      }
      return false;
    default:
      return false;
  }
}

// A copy of `v` whose literal strings own their text.
Value own_literals(const Value& v, std::string_view arena) {
  if (!borrows_from(v, arena)) return v;
  switch (v.kind()) {
    case Kind::String:
      return Value::string(std::string(v.text()));
    case Kind::List: {
      ValueList items;
      items.reserve(v.owned_list().size());
      for (const Value& item : v.owned_list()) items.push_back(own_literals(item, arena));
      return Value::list(std::move(items));
    }
    case Kind::Map: {
      MapEntries entries;
      entries.reserve(v.owned_map().size());
      for (const auto& [k, val] : v.owned_map()) {
        entries.emplace_back(own_literals(k, arena), own_literals(val, arena));
      }
      return Value::map(std::move(entries));
    }
    default:
      return v;
  }
}

}  // namespace

std::variant<Program, Diagnostic> Program::build(std::string_view source, const Environment& env,
                                                 const Limits& limits, bool strict) {
  auto parsed = parse(source, limits.parse);
  if (auto* d = std::get_if<Diagnostic>(&parsed)) return std::move(*d);
  ExprPtr root = std::move(std::get<ExprPtr>(parsed));
  Checker checker(env, limits, strict);
  try {
    checker.check(root);
  } catch (const CompileError& err) {
    return make_diagnostic(source, err.pos, err.message);
  }
  Program p;
  // String literals borrow their text from one buffer the program owns, so using one
  // (`x == 'gold'`) copies a view instead of counting references to a heap string.
  // evaluate() gives results that borrow from it their own copy.
  size_t literal_bytes = 0;
  sum_string_literals(*root, literal_bytes);
  if (literal_bytes > 0) {
    auto arena = std::make_shared<std::string>();
    arena->reserve(literal_bytes);  // no reallocation: the views stay valid
    borrow_string_literals(*root, *arena);
    p.literals_ = std::move(arena);
  }
  p.source_ = std::make_shared<const std::string>(source);
  p.root_ = std::move(root);
  p.globals_ = static_cast<uint32_t>(env.names().size());
  p.locals_ = checker.locals();
  p.max_steps_ = limits.max_steps;
  p.max_string_bytes_ = limits.max_string_bytes;
  p.max_regex_program_ = limits.max_regex_program;
  p.max_regex_memory_ = limits.max_regex_memory;
  return p;
}

namespace {
bool reads_slot(const Expr& e, int slot) {
  if (e.kind == ExprKind::Ident && e.slot == slot) return true;
  for (const auto& a : e.args) {
    if (reads_slot(*a, slot)) return true;
  }
  return false;
}
}  // namespace

bool Program::references(int slot) const { return reads_slot(*root_, slot); }

Value Program::evaluate(const Activation& activation) const {
  auto run = [&](Value* locals) {
    Frame f{activation.data(), locals, globals_,
            EvalState{0, max_steps_, max_string_bytes_, false, max_regex_program_, max_regex_memory_}};
    Value v = eval(*root_, f);
    if (f.state.exhausted) return budget_error(f.state);
    // The result may outlive the program: it must not borrow the program's literals.
    const Kind k = v.kind();
    if (literals_ && (k == Kind::String || k == Kind::List || k == Kind::Map) &&
        borrows_from(v, *literals_)) {
      return own_literals(v, *literals_);
    }
    return v;
  };
  // Most expressions have no comprehension, hence no locals to construct.
  if (locals_ == 0) return run(nullptr);
  if (locals_ <= 8) {
    Value locals[8];
    return run(locals);
  }
  std::vector<Value> locals(locals_);
  return run(locals.data());
}

}  // namespace switchboard::cel
