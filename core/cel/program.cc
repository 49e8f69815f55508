#include "core/cel/program.h"

#include <re2/re2.h>

#include <algorithm>

#include "core/cel/functions.h"

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

Value budget_error(const EvalState& s) {
  return Value::error("evaluation exceeded its budget of " + std::to_string(s.max_steps) +
                      " steps");
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

Value select(const Expr& e, Frame& f) {
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

Value eval(const Expr& e, Frame& f) {
  if (++f.state.steps > f.state.max_steps) {
    f.state.exhausted = true;
    return budget_error(f.state);
  }
  switch (e.kind) {
    case ExprKind::Literal:
      return e.literal;
    case ExprKind::Ident: {
      auto slot = static_cast<uint32_t>(e.slot);
      return slot < f.n_globals ? f.globals[slot] : f.locals[slot - f.n_globals];
    }
    case ExprKind::Select:
      return select(e, f);
    case ExprKind::Index: {
      Value c = eval(*e.args[0], f);
      if (c.is_error()) return c;
      Value k = eval(*e.args[1], f);
      if (k.is_error()) return k;
      return index_value(c, k);
    }
    case ExprKind::And:
    case ExprKind::Or: {
      bool is_and = e.kind == ExprKind::And;
      Value l = eval(*e.args[0], f);
      if (l.kind() == Kind::Bool && l.bool_value() != is_and) return l;
      if (f.state.exhausted) return budget_error(f.state);
      Value r = eval(*e.args[1], f);
      if (f.state.exhausted) return budget_error(f.state);
      if (r.kind() == Kind::Bool && r.bool_value() != is_and) return r;
      if (l.kind() == Kind::Bool && r.kind() == Kind::Bool) return r;
      if (l.is_error()) return l;
      if (r.is_error()) return r;
      Value args[2] = {l, r};
      return no_overload(is_and ? "_&&_" : "_||_", args, 2);
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
    case ExprKind::Call: {
      Value args[4];
      size_t n = e.args.size();
      for (size_t i = 0; i < n; ++i) {
        args[i] = eval(*e.args[i], f);
        if (args[i].is_error()) return args[i];
      }
      uint64_t read = 0;
      for (size_t i = 0; i < n; ++i) read += text_cost(args[i]);
      if (!charge(f.state, read)) return budget_error(f.state);
      Value result = e.fn->impl(e, args, n, f.state);
      if (!charge(f.state, built_cost(result))) return budget_error(f.state);
      return result;
    }
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
  p.source_ = std::make_shared<const std::string>(source);
  p.root_ = std::move(root);
  p.globals_ = static_cast<uint32_t>(env.names().size());
  p.locals_ = checker.locals();
  p.max_steps_ = limits.max_steps;
  p.max_string_bytes_ = limits.max_string_bytes;
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
  Value locals_storage[8];
  std::vector<Value> locals_heap;
  Value* locals = locals_storage;
  if (locals_ > 8) {
    locals_heap.resize(locals_);
    locals = locals_heap.data();
  }
  Frame f{activation.data(), locals, globals_, EvalState{0, max_steps_, max_string_bytes_, false}};
  Value v = eval(*root_, f);
  if (f.state.exhausted) return budget_error(f.state);
  return v;
}

}  // namespace switchboard::cel
