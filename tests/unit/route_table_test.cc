#include "core/route/table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/route/spec_yaml.h"

namespace switchboard::route {
namespace {

using Compiled = std::variant<std::shared_ptr<const RouteTable>, std::vector<SpecError>>;

Compiled CompileYaml(std::string_view yaml, uint64_t generation = 1, const cel::Limits& limits = {}) {
  RouteSet set;
  std::vector<SpecError> errors;
  if (!load_yaml(yaml, "routes.yaml", set, errors)) {
    ADD_FAILURE() << "load failed: " << (errors.empty() ? "" : errors[0].render());
    return errors;
  }
  return RouteTable::compile(std::move(set), generation, limits);
}

std::shared_ptr<const RouteTable> Table(std::string_view yaml, uint64_t generation = 1) {
  Compiled c = CompileYaml(yaml, generation);
  if (auto* errors = std::get_if<std::vector<SpecError>>(&c)) {
    ADD_FAILURE() << "compile failed: " << (errors->empty() ? "" : (*errors)[0].render());
    return nullptr;
  }
  return std::get<std::shared_ptr<const RouteTable>>(c);
}

std::vector<SpecError> CompileErrors(std::string_view yaml) {
  Compiled c = CompileYaml(yaml);
  if (auto* errors = std::get_if<std::vector<SpecError>>(&c)) return *errors;
  ADD_FAILURE() << "compiled, expected errors:\n" << yaml;
  return {};
}

// Rendered, so that file, line, column, object, field, message and snippet are all compared.
std::vector<std::string> Rendered(const std::vector<SpecError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.render());
  return out;
}

TEST(RouteTableCompile, ErrorInPlainScalarPointsAtTheIdentifier) {
  // Column 28 of line 5 is the 'l' of `limit`.
  EXPECT_EQ(Rendered(CompileErrors(R"yaml(routes:
  - name: plain
    source:
      subject: a.b
    filter: event.amount > limit
    destinations:
      - subject: out
)yaml")),
            (std::vector<std::string>{
                "routes.yaml:5:28: route 'plain', filter: undeclared reference to 'limit'\n"
                " | event.amount > limit\n"
                " |                ^"}));
}

TEST(RouteTableCompile, ErrorInSingleQuotedScalarSkipsTheQuote) {
  EXPECT_EQ(Rendered(CompileErrors(R"yaml(routes:
  - name: quoted
    source: {subject: a.b}
    filter: 'event.amount > limit'
    destinations: [{subject: out}]
)yaml")),
            (std::vector<std::string>{
                "routes.yaml:4:29: route 'quoted', filter: undeclared reference to 'limit'\n"
                " | event.amount > limit\n"
                " |                ^"}));
}

TEST(RouteTableCompile, ErrorInBlockScalarCountsLinesAndIndentation) {
  // `bad_name` sits on line 7, after 8 spaces: column 9.
  EXPECT_EQ(Rendered(CompileErrors(R"yaml(routes:
  - name: block
    source:
      subject: a.b
    filter: |
      event.amount > 1 &&
        bad_name == 2
    destinations:
      - subject: out
)yaml")),
            (std::vector<std::string>{
                "routes.yaml:7:9: route 'block', filter: undeclared reference to 'bad_name'\n"
                " |   bad_name == 2\n"
                " |   ^"}));
}

TEST(RouteTableCompile, ErrorOnFirstLineOfBlockScalar) {
  EXPECT_EQ(Rendered(CompileErrors(R"yaml(routes:
  - name: block
    source: {subject: a.b}
    transform:
      - payload: |-
          {"x": evnt}
    destinations: [{subject: out}]
)yaml")),
            (std::vector<std::string>{
                "routes.yaml:6:17: route 'block', transform[0].payload: undeclared reference to "
                "'evnt' (did you mean 'event'?)\n"
                " | {\"x\": evnt}\n"
                " |       ^"}));
}

TEST(RouteTableCompile, ErrorPositionsInSetAndHeaders) {
  EXPECT_EQ(Rendered(CompileErrors(R"yaml(routes:
  - name: r
    source: {subject: a.b}
    transform:
      - set:
          total: 'event.amount * rate'
    destinations:
      - subject: out
        headers:
          x-a: event.id +
)yaml")),
            (std::vector<std::string>{
                "routes.yaml:6:34: route 'r', transform[0].set.total: undeclared reference to "
                "'rate'\n"
                " | event.amount * rate\n"
                " |                ^",
                "routes.yaml:10:26: route 'r', destinations[0].headers.x-a: unexpected end of "
                "expression\n"
                " | event.id +\n"
                " |           ^"}));
}

TEST(RouteTableCompile, ErrorInsideSubjectTemplate) {
  const auto errors = CompileErrors(R"yaml(routes:
  - name: t
    source: {subject: a.b}
    destinations:
      - subject: 'orders.{{ evnt.region }}.large'
)yaml");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].at.line, 5);
  EXPECT_EQ(errors[0].at.column, 29);  // the 'e' of `evnt`
  EXPECT_EQ(errors[0].field, "destinations[0].subject");
  EXPECT_EQ(errors[0].message, "undeclared reference to 'evnt' (did you mean 'event'?)");
  EXPECT_EQ(errors[0].snippet,
            " | orders.{{ evnt.region }}.large\n"
            " |           ^");
}

TEST(RouteTableCompile, SecondExpressionOfSubjectTemplate) {
  const auto errors = CompileErrors(R"yaml(routes:
  - name: t
    source: {subject: a.b}
    destinations:
      - subject: x.{{ subject }}.{{ nope }}
)yaml");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].render(),
            "routes.yaml:5:37: route 't', destinations[0].subject: undeclared reference to 'nope'\n"
            " | x.{{ subject }}.{{ nope }}\n"
            " |                    ^");
}

TEST(RouteTableCompile, UnclosedTemplate) {
  EXPECT_EQ(Rendered(CompileErrors(R"yaml(routes:
  - name: t
    source: {subject: a.b}
    destinations:
      - subject: 'orders.{{ event.region'
)yaml")),
            (std::vector<std::string>{
                "routes.yaml:5:19: route 't', destinations[0].subject: '{{' without a closing '}}' "
                "in subject template"}));
}

TEST(RouteTableCompile, InvalidSubjects) {
  EXPECT_EQ(Rendered(CompileErrors(R"yaml(routes:
  - name: bad-source
    source:
      subject: orders..created
    destinations: [{subject: out}]
  - name: bad-dead-letter
    source: {subject: 'a.>'}
    destinations: [{subject: out}]
    deadLetter: {subject: dlq orders}
  - name: bad-destination
    source: {subject: a.b}
    destinations: [{subject: out.one}, {subject: out.*}]
)yaml")),
            (std::vector<std::string>{
                "routes.yaml:4:16: route 'bad-source', source.subject: invalid subject: empty token "
                "at position 7 in 'orders..created'",
                // The dead letter subject has no position of its own: the route's is used.
                "routes.yaml:6:5: route 'bad-dead-letter', deadLetter.subject: invalid subject: "
                "whitespace at position 3 in 'dlq orders'",
                "routes.yaml:12:50: route 'bad-destination', destinations[1].subject: invalid "
                "subject: wildcard '*' not allowed in a concrete subject at position 4 in 'out.*'",
            }));
}

TEST(RouteTableCompile, UnknownTransformSuggestsTheClosest) {
  EXPECT_EQ(Rendered(CompileErrors(R"yaml(routes:
  - name: r
    source: {subject: a.b}
    transform:
      - set: {x: '1'}
      - use: normalise-order
      - use: something-else
    destinations: [{subject: out}]
transforms:
  - name: normalize-order
    steps: [{remove: x}]
)yaml")),
            (std::vector<std::string>{
                "routes.yaml:6:9: route 'r', transform[1].use: unknown transform 'normalise-order' "
                "(did you mean 'normalize-order'?)",
                "routes.yaml:7:9: route 'r', transform[2].use: unknown transform 'something-else'",
            }));
}

TEST(RouteTableCompile, NamedTransformCannotUseAnother) {
  EXPECT_EQ(Rendered(CompileErrors(R"yaml(transforms:
  - name: a
    steps: [{remove: x}]
  - name: b
    steps:
      - use: a
)yaml")),
            (std::vector<std::string>{
                "routes.yaml:6:9: transform 'b', steps[0].use: a named transform cannot use another "
                "transform"}));
}

TEST(RouteTableCompile, ErrorInUsedTransformIsReportedOnce) {
  // Two routes use the transform; its mistake is one mistake, at its own step index.
  EXPECT_EQ(Rendered(CompileErrors(R"yaml(routes:
  - name: r1
    source: {subject: a.b}
    transform: [{use: normalize}]
    destinations: [{subject: out}]
  - name: r2
    source: {subject: a.c}
    transform: [{use: normalize}]
    destinations: [{subject: out}]
transforms:
  - name: normalize
    steps:
      - set: {a: '1'}
      - set:
          x: 'evnt.x'
)yaml")),
            (std::vector<std::string>{
                "routes.yaml:15:15: transform 'normalize', steps[1].set.x: undeclared reference to "
                "'evnt' (did you mean 'event'?)\n"
                " | evnt.x\n"
                " | ^"}));
}

TEST(RouteTableCompile, InvalidHeaderNamesAndFieldPaths) {
  EXPECT_EQ(Rendered(CompileErrors(R"yaml(routes:
  - name: r
    source: {subject: a.b}
    transform:
      - set: {'a..b': '1'}
      - remove: [ok, '.x']
      - rename: {'y.': z}
    destinations:
      - subject: out
        headers:
          'bad name': '"v"'
          'x:y': '"v"'
)yaml")),
            (std::vector<std::string>{
                "routes.yaml:5:24: route 'r', transform[0].set: field path 'a..b' has an empty "
                "segment",
                "routes.yaml:6:9: route 'r', transform[1].remove: field path '.x' has an empty "
                "segment",
                "routes.yaml:7:9: route 'r', transform[2].rename: field path 'y.' has an empty "
                "segment",
                "routes.yaml:11:24: route 'r', destinations[0].headers: invalid header name 'bad "
                "name'",
                "routes.yaml:12:19: route 'r', destinations[0].headers: invalid header name 'x:y'",
            }));
}

TEST(RouteTableCompile, ReportsEveryErrorInOrder) {
  const auto errors = CompileErrors(R"yaml(routes:
  - name: one
    source: {subject: 'a.>.b'}
    filter: 'bad1'
    transform:
      - set: {x: 'bad2', y: 'event.y'}
      - payload: 'bad3'
    destinations:
      - subject: '{{ bad4 }}'
        headers: {h: 'bad5'}
  - name: two
    source: {subject: b}
    filter: 'bad6'
    destinations: [{subject: out}]
transforms:
  - name: t
    steps: [{set: {z: 'bad0'}}]
)yaml");
  std::vector<std::string> summary;
  for (const auto& e : errors) summary.push_back(e.object + " " + e.field + ": " + e.message);
  EXPECT_EQ(summary, (std::vector<std::string>{
                         "transform 't' steps[0].set.z: undeclared reference to 'bad0'",
                         "route 'one' source.subject: invalid subject: '>' must be the last token "
                         "at position 2 in 'a.>.b'",
                         "route 'one' filter: undeclared reference to 'bad1'",
                         "route 'one' transform[0].set.x: undeclared reference to 'bad2'",
                         "route 'one' transform[1].payload: undeclared reference to 'bad3'",
                         "route 'one' destinations[0].subject: undeclared reference to 'bad4'",
                         "route 'one' destinations[0].headers.h: undeclared reference to 'bad5'",
                         "route 'two' filter: undeclared reference to 'bad6'",
                     }));
}

TEST(RouteTableCompile, DuplicateNamesFromSeparateLoads) {
  // A set assembled from separately loaded objects, as the controller assembles one.
  RouteSet set, other;
  std::vector<SpecError> errors;
  const char* yaml = "routes: [{name: a, source: {subject: a}, destinations: [{subject: b}]}]";
  ASSERT_TRUE(load_yaml(yaml, "one.yaml", set, errors));
  ASSERT_TRUE(load_yaml(yaml, "two.yaml", other, errors));
  set.routes.push_back(other.routes[0]);
  Compiled c = RouteTable::compile(set, 1);
  ASSERT_TRUE(std::holds_alternative<std::vector<SpecError>>(c));
  EXPECT_EQ(Rendered(std::get<std::vector<SpecError>>(c)),
            (std::vector<std::string>{"two.yaml:1:10: route 'a', name: is used by another route"}));
}

TEST(RouteTableCompile, LimitsApply) {
  cel::Limits limits;
  limits.parse.max_bytes = 8;
  Compiled c = CompileYaml(R"yaml(routes:
  - name: r
    source: {subject: a}
    filter: 'subject == "0123456789"'
    destinations: [{subject: b}]
)yaml",
                           1, limits);
  ASSERT_TRUE(std::holds_alternative<std::vector<SpecError>>(c));
  const auto& errors = std::get<std::vector<SpecError>>(c);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "filter");
}

constexpr std::string_view kTable = R"yaml(routes:
  - name: star-b
    source: {subject: '*.b'}
    destinations: [{subject: out}]
  - name: a-tail
    source: {subject: 'a.>'}
    filter: 'headers["x"] == "1"'
    destinations: [{subject: out}]
  - name: a-b
    source: {subject: a.b}
    transform: [{use: norm}, {remove: y}]
    destinations: [{subject: 'out.{{ subject }}'}]
  - name: c-d
    source:
      subject: c.d
      jetstream: {stream: S, backoff: [1s]}
    filter: 'event.ok'
    destinations: [{subject: out, headers: {h: '"v"'}, jetstream: true}]
    deadLetter: {subject: dlq}
  - name: template
    source: {subject: e}
    destinations: [{subject: 'out.{{ event.region }}'}]
transforms:
  - name: norm
    steps: [{set: {x: '1'}}, {rename: {a: b}}]
)yaml";

TEST(RouteTable, MatchUsesDeclarationOrder) {
  auto t = Table(kTable);
  ASSERT_TRUE(t);
  auto match = [&](std::string_view subject) {
    std::vector<uint32_t> out;
    t->match(subject, out);
    return out;
  };
  EXPECT_EQ(match("a.b"), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(match("z.b"), (std::vector<uint32_t>{0}));
  EXPECT_EQ(match("a.b.c"), (std::vector<uint32_t>{1}));
  EXPECT_EQ(match("c.d"), (std::vector<uint32_t>{3}));
  EXPECT_EQ(match("e"), (std::vector<uint32_t>{4}));
  EXPECT_EQ(match("a"), (std::vector<uint32_t>{}));
  EXPECT_EQ(match("nothing.here"), (std::vector<uint32_t>{}));
}

TEST(RouteTable, CompiledShape) {
  auto t = Table(kTable, 42);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->generation(), 42u);
  ASSERT_EQ(t->routes().size(), 5u);
  ASSERT_EQ(t->transforms().size(), 1u);

  const CompiledRoute& star = t->routes()[0];
  EXPECT_EQ(star.spec.name, "star-b");
  EXPECT_FALSE(star.filter.has_value());
  EXPECT_FALSE(star.needs_json);  // passes any payload through untouched

  const CompiledRoute& tail = t->routes()[1];
  EXPECT_TRUE(tail.filter.has_value());
  EXPECT_FALSE(tail.needs_json);  // reads headers only

  const CompiledRoute& ab = t->routes()[2];
  EXPECT_TRUE(ab.needs_json);  // steps edit the payload
  ASSERT_EQ(ab.steps.size(), 3u);  // the named transform is inlined
  EXPECT_EQ(ab.steps[0].kind, StepSpec::Kind::Set);
  EXPECT_EQ(ab.steps[0].origin, "transform[0] (norm.steps[0])");
  ASSERT_EQ(ab.steps[0].set.size(), 1u);
  EXPECT_EQ(ab.steps[0].set[0].first, (FieldPath{"x"}));
  EXPECT_EQ(ab.steps[1].kind, StepSpec::Kind::Rename);
  EXPECT_EQ(ab.steps[1].origin, "transform[0] (norm.steps[1])");
  ASSERT_EQ(ab.steps[1].rename.size(), 1u);
  EXPECT_EQ(ab.steps[1].rename[0], (std::pair<FieldPath, FieldPath>{{"a"}, {"b"}}));
  EXPECT_EQ(ab.steps[2].kind, StepSpec::Kind::Remove);
  EXPECT_EQ(ab.steps[2].origin, "transform[1]");
  EXPECT_EQ(ab.steps[2].remove, (std::vector<FieldPath>{{"y"}}));
  ASSERT_EQ(ab.destinations.size(), 1u);
  EXPECT_EQ(ab.destinations[0].subject.literals, (std::vector<std::string>{"out.", ""}));
  EXPECT_EQ(ab.destinations[0].subject.exprs.size(), 1u);

  const CompiledRoute& cd = t->routes()[3];
  EXPECT_TRUE(cd.needs_json);  // the filter reads the event
  ASSERT_EQ(cd.destinations.size(), 1u);
  EXPECT_TRUE(cd.destinations[0].jetstream);
  EXPECT_EQ(cd.destinations[0].subject.literals, (std::vector<std::string>{"out"}));
  EXPECT_TRUE(cd.destinations[0].subject.exprs.empty());
  ASSERT_EQ(cd.destinations[0].headers.size(), 1u);
  EXPECT_EQ(cd.destinations[0].headers[0].first, "h");

  EXPECT_TRUE(t->routes()[4].needs_json);  // the subject template reads the event

  const CompiledTransform& norm = t->transforms()[0];
  EXPECT_EQ(norm.spec.name, "norm");
  EXPECT_TRUE(norm.needs_json);
  ASSERT_EQ(norm.steps.size(), 2u);
  EXPECT_EQ(norm.steps[0].origin, "steps[0]");
  EXPECT_EQ(norm.steps[1].origin, "steps[1]");
}

TEST(RouteTable, NestedFieldPathsAreSplit) {
  auto t = Table(R"yaml(routes:
  - name: r
    source: {subject: a}
    transform:
      - set: {a.b.c: '1'}
      - remove: [x.y]
      - rename: {p.q: r.s.t}
    destinations: [{subject: b}]
)yaml");
  ASSERT_TRUE(t);
  const auto& steps = t->routes()[0].steps;
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].set[0].first, (FieldPath{"a", "b", "c"}));
  EXPECT_EQ(steps[1].remove[0], (FieldPath{"x", "y"}));
  EXPECT_EQ(steps[2].rename[0], (std::pair<FieldPath, FieldPath>{{"p", "q"}, {"r", "s", "t"}}));
}

TEST(RouteTable, EqualSpecsEqualHashes) {
  auto a = Table(kTable, 1);
  auto b = Table(kTable, 2);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->hash(), b->hash());
  EXPECT_EQ(a->canonical_json(), b->canonical_json());
  EXPECT_EQ(a->hash(), "sha256:" + sha256_hex(a->canonical_json()));
  EXPECT_EQ(a->hash().size(), 7u + 64u);
  EXPECT_EQ(a->hash().find_first_not_of("0123456789abcdef", 7), std::string::npos);
}

TEST(RouteTable, LayoutDoesNotChangeTheHash) {
  // Same spec, other quoting, order of keys, defaults spelled out, and file name.
  auto a = Table(R"yaml(routes:
  - name: r
    source: {subject: a.b, jetstream: {stream: S}}
    filter: 'event.x == 1'
    destinations: [{subject: out}]
)yaml");
  RouteSet set;
  std::vector<SpecError> errors;
  ASSERT_TRUE(load_yaml(R"yaml(routes:
  - destinations:
      - subject: "out"
        jetstream: false
    filter: "event.x == 1"
    name: r
    maxPayloadBytes: 1048576
    source:
      jetstream:
        ackWait: 30s
        durable: r
        stream: S
      subject: a.b
)yaml",
                        "other.yaml", set, errors));
  Compiled c = RouteTable::compile(std::move(set), 7);
  ASSERT_TRUE(a);
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const RouteTable>>(c));
  EXPECT_EQ(std::get<std::shared_ptr<const RouteTable>>(c)->hash(), a->hash());
}

TEST(RouteTable, ChangedSpecChangesTheHash) {
  const std::string base = R"yaml(routes:
  - name: r
    source: {subject: a.b}
    filter: 'event.x == 1'
    destinations: [{subject: out}]
)yaml";
  auto a = Table(base);
  std::string changed = base;
  changed.replace(changed.find("== 1"), 4, "== 2");
  auto b = Table(changed);
  std::string renamed = base;
  renamed.replace(renamed.find("name: r"), 7, "name: s");
  auto c = Table(renamed);
  ASSERT_TRUE(a && b && c);
  EXPECT_NE(a->hash(), b->hash());
  EXPECT_NE(a->hash(), c->hash());
  EXPECT_NE(b->hash(), c->hash());
}

TEST(RouteTable, CanonicalJsonFillsDefaults) {
  RouteSet set;
  std::vector<SpecError> errors;
  ASSERT_TRUE(load_yaml(R"yaml(routes:
  - name: r
    source:
      subject: a.*
      queueGroup: q
      jetstream: {stream: S, backoff: [1s, 250ms]}
    filter: 'event.x'
    transform:
      - set: {a.b: '1'}
      - remove: z
      - rename: {p: q}
      - payload: 'event'
      - use: t
    destinations:
      - subject: out
        headers: {h: '"v"'}
        jetstream: true
    deadLetter: {subject: dlq}
transforms:
  - name: t
    steps: [{remove: w}]
)yaml",
                        "routes.yaml", set, errors));
  EXPECT_EQ(canonical_json(set),
            R"({"routes":[{"name":"r","source":{"subject":"a.*","queueGroup":"q","jetstream":)"
            R"({"stream":"S","durable":"r","ackWait":"30000ms","maxDeliver":5,"backoff":)"
            R"(["1000ms","250ms"],"batch":64,"maxAckPending":1024}},"filter":"event.x",)"
            R"("transform":[{"set":{"a.b":"1"}},{"remove":["z"]},{"rename":{"p":"q"}},)"
            R"({"payload":"event"},{"use":"t"}],"destinations":[{"subject":"out","headers":)"
            R"({"h":"\"v\""},"jetstream":true}],"deadLetter":{"subject":"dlq"},)"
            R"("maxPayloadBytes":1048576}],"transforms":[{"name":"t","steps":[{"remove":["w"]}]}]})");
}

TEST(RouteTable, EmptySet) {
  Compiled c = RouteTable::compile(RouteSet{}, 3);
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const RouteTable>>(c));
  const auto& t = std::get<std::shared_ptr<const RouteTable>>(c);
  EXPECT_EQ(t->generation(), 3u);
  EXPECT_EQ(t->canonical_json(), R"({"routes":[],"transforms":[]})");
  EXPECT_EQ(t->hash(), "sha256:" + sha256_hex(R"({"routes":[],"transforms":[]})"));
  std::vector<uint32_t> out;
  t->match("a", out);
  EXPECT_TRUE(out.empty());
}

TEST(Sha256Hex, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// Reuse across tables (RouteTable::compile with `previous`). Whether a compiled program was
// taken over shows in its source text: programs share it by pointer, so a reused program's
// source is the very string of the previous table's.
constexpr std::string_view kReuseBase = R"yaml(routes:
  - name: plain
    source: {subject: orders.created}
    filter: event.amount > 10
    destinations:
      - subject: out.{{ event.region }}
        headers: {x-id: event.id}
  - name: uses-normalize
    source: {subject: orders.updated}
    filter: event.amount > 20
    transform:
      - use: normalize
      - set: {seen: "true"}
    destinations: [{subject: out.updated}]
  - name: other
    source: {subject: orders.deleted}
    filter: event.amount > 30
    destinations: [{subject: out.deleted}]
transforms:
  - name: normalize
    steps:
      - set: {region: event.region.upperAscii()}
  - name: unused
    steps:
      - remove: [pad]
)yaml";

std::shared_ptr<const RouteTable> Recompile(std::string_view yaml, const RouteTable* previous,
                                            const cel::Limits& limits = {}) {
  RouteSet set;
  std::vector<SpecError> errors;
  if (!load_yaml(yaml, "routes.yaml", set, errors)) {
    ADD_FAILURE() << "load failed: " << (errors.empty() ? "" : errors[0].render());
    return nullptr;
  }
  Compiled c = RouteTable::compile(std::move(set), 2, limits, previous);
  if (auto* e = std::get_if<std::vector<SpecError>>(&c)) {
    ADD_FAILURE() << "compile failed: " << (e->empty() ? "" : (*e)[0].render());
    return nullptr;
  }
  return std::get<std::shared_ptr<const RouteTable>>(c);
}

const std::string* FilterSource(const RouteTable& t, size_t route) { return &t.routes()[route].filter->source(); }

std::string Replace(std::string text, std::string_view from, std::string_view to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(RouteTableReuse, UnchangedRoutesAreTakenOverAndTheEditedOneCompiled) {
  auto first = Table(kReuseBase);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->stats().routes_compiled, 3u);
  EXPECT_EQ(first->stats().routes_reused, 0u);

  std::string edited = Replace(std::string(kReuseBase), "event.amount > 30", "event.amount > 31");
  auto second = Recompile(edited, first.get());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->stats().routes_compiled, 1u);
  EXPECT_EQ(second->stats().routes_reused, 2u);
  EXPECT_EQ(second->stats().transforms_reused, 2u);
  EXPECT_EQ(second->stats().transforms_compiled, 0u);
  EXPECT_EQ(FilterSource(*second, 0), FilterSource(*first, 0));
  EXPECT_EQ(FilterSource(*second, 1), FilterSource(*first, 1));
  EXPECT_NE(FilterSource(*second, 2), FilterSource(*first, 2));
  EXPECT_EQ(second->routes()[2].filter->source(), "event.amount > 31");
  // Destination templates and inlined steps are shared too.
  EXPECT_EQ(&second->routes()[0].destinations[0].subject.exprs[0].source(),
            &first->routes()[0].destinations[0].subject.exprs[0].source());
  EXPECT_EQ(&second->routes()[1].steps[0].set[0].second.source(), &first->routes()[1].steps[0].set[0].second.source());

  // The result is the table a fresh compile gives: same hash, same canonical text.
  auto fresh = Table(edited);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(second->hash(), fresh->hash());
  EXPECT_EQ(second->canonical_json(), fresh->canonical_json());
  EXPECT_EQ(second->routes()[1].steps.size(), fresh->routes()[1].steps.size());
  EXPECT_EQ(second->routes()[1].steps[0].origin, fresh->routes()[1].steps[0].origin);
  EXPECT_EQ(second->total_destinations(), fresh->total_destinations());
  std::vector<uint32_t> matched;
  second->match("orders.deleted", matched);
  EXPECT_EQ(matched, std::vector<uint32_t>{2});
}

TEST(RouteTableReuse, ReusedRoutesTakeTheNewSpecAndPositions) {
  auto first = Table(kReuseBase);
  ASSERT_TRUE(first);
  // Two lines more at the top: every position moves, no content changes.
  std::string moved = "# a comment\n# another\n" + std::string(kReuseBase);
  auto second = Recompile(moved, first.get());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->stats().routes_reused, 3u);
  EXPECT_EQ(second->hash(), first->hash());
  EXPECT_EQ(second->routes()[0].spec.at.line, first->routes()[0].spec.at.line + 2);
}

TEST(RouteTableReuse, AChangedTransformRecompilesTheRoutesThatUseIt) {
  auto first = Table(kReuseBase);
  ASSERT_TRUE(first);
  std::string edited = Replace(std::string(kReuseBase), "event.region.upperAscii()", "event.region.lowerAscii()");
  auto second = Recompile(edited, first.get());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->stats().transforms_compiled, 1u);
  EXPECT_EQ(second->stats().transforms_reused, 1u);
  EXPECT_EQ(second->stats().routes_compiled, 1u);  // uses-normalize
  EXPECT_EQ(second->stats().routes_reused, 2u);
  EXPECT_NE(FilterSource(*second, 1), FilterSource(*first, 1));
  EXPECT_EQ(second->routes()[1].steps[0].set[0].second.source(), "event.region.lowerAscii()");
  EXPECT_EQ(FilterSource(*second, 0), FilterSource(*first, 0));
}

TEST(RouteTableReuse, ARemovedTransformIsAnErrorNotAStaleCopy) {
  auto first = Table(kReuseBase);
  ASSERT_TRUE(first);
  std::string edited = Replace(std::string(kReuseBase), "  - name: normalize\n    steps:\n      - set: {region: event.region.upperAscii()}\n", "");
  RouteSet set;
  std::vector<SpecError> errors;
  ASSERT_TRUE(load_yaml(edited, "routes.yaml", set, errors));
  Compiled c = RouteTable::compile(std::move(set), 2, {}, first.get());
  ASSERT_TRUE(std::holds_alternative<std::vector<SpecError>>(c));
  EXPECT_EQ(std::get<std::vector<SpecError>>(c)[0].message, "unknown transform 'normalize'");
}

TEST(RouteTableReuse, OtherLimitsCompileEverything) {
  auto first = Table(kReuseBase);
  ASSERT_TRUE(first);
  cel::Limits limits;
  limits.max_steps = 1000;
  auto second = Recompile(kReuseBase, first.get(), limits);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->stats().routes_compiled, 3u);
  EXPECT_EQ(second->stats().routes_reused, 0u);
  EXPECT_NE(FilterSource(*second, 0), FilterSource(*first, 0));
}

TEST(RouteTableReuse, ARouteRenamedOrMovedIsMatchedByContent) {
  auto first = Table(kReuseBase);
  ASSERT_TRUE(first);
  // `other` first now: it is still taken over; the order of the table is the new one.
  std::string reordered = Replace(std::string(kReuseBase), "  - name: other\n    source: {subject: orders.deleted}\n    filter: event.amount > 30\n    destinations: [{subject: out.deleted}]\n", "");
  reordered = Replace(reordered, "routes:\n", "routes:\n  - name: other\n    source: {subject: orders.deleted}\n    filter: event.amount > 30\n    destinations: [{subject: out.deleted}]\n");
  auto second = Recompile(reordered, first.get());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->stats().routes_reused, 3u);
  EXPECT_EQ(second->routes()[0].spec.name, "other");
  EXPECT_EQ(FilterSource(*second, 0), FilterSource(*first, 2));
  std::vector<uint32_t> matched;
  second->match("orders.deleted", matched);
  EXPECT_EQ(matched, std::vector<uint32_t>{0});
}

// A router drops the old table once the new one is in; the new table's programs came from
// it, and their reference counts keep what they share alive (ASan builds check the rest).
TEST(RouteTableReuse, ReusedProgramsOutliveThePreviousTable) {
  auto first = Table(kReuseBase);
  ASSERT_TRUE(first);
  auto second = Recompile(kReuseBase, first.get());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->stats().routes_reused, 3u);
  first.reset();
  EXPECT_EQ(second->routes()[0].filter->source(), "event.amount > 10");
}

}  // namespace
}  // namespace switchboard::route
