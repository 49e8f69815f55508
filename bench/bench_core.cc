// Benchmarks of the routing core on one realistic order event. The goals they check
// (from the performance issue): parse → filter → transform → serialize within 1.5 µs per
// event on one core, and a filter on an already parsed event within 100 ns.
//
// Every benchmark does its setup outside the timed loop and checks its result once, so a
// broken route cannot make a benchmark look fast by failing early.

#include <benchmark/benchmark.h>
#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/cel/program.h"
#include "core/cel/value.h"
#include "core/json/document.h"
#include "core/route/processor.h"
#include "core/route/spec.h"
#include "core/route/spec_json.h"
#include "core/route/spec_yaml.h"
#include "core/route/subject.h"
#include "core/route/table.h"

namespace {

namespace cel = switchboard::cel;
namespace json = switchboard::json;
namespace route = switchboard::route;

// ~200 bytes: the size of a typical order event on the bus. The 14-digit customer id and
// the 1234.5 amount exercise the number paths; the items array is left untouched by the
// transform, so it is copied from the source bytes.
constexpr std::string_view kEvent =
    R"({"id":"ord-1234567890","customer":{"id":98765432101234,"tier":"gold","region":"eu-west"},)"
    R"("amount":1234.5,"currency":"EUR","items":[{"sku":"A-1","qty":2},{"sku":"B-22","qty":1}],)"
    R"("pad":"xxxxxxxx"})";

constexpr std::string_view kFilter = "event.amount >= 100.0 && event.customer.tier == 'gold'";

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench setup failed: %s\n", what.c_str());
  std::exit(1);
}

std::shared_ptr<const route::RouteTable> compile_yaml(const std::string& yaml) {
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  if (!route::load_yaml(yaml, "bench.yaml", set, errors)) {
    die(errors.empty() ? "load_yaml failed" : errors.front().render());
  }
  auto compiled = route::RouteTable::compile(std::move(set), 1);
  if (auto* errs = std::get_if<std::vector<route::SpecError>>(&compiled)) {
    die(errs->empty() ? "compile failed" : errs->front().render());
  }
  return std::get<std::shared_ptr<const route::RouteTable>>(compiled);
}

void BM_ParseJson(benchmark::State& state) {
  json::Document doc;  // reused, as the Processor does: a warm parse allocates nothing
  if (!doc.parse(kEvent)) die(doc.error());
  for (auto _ : state) {
    bool ok = doc.parse(kEvent);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(doc.size());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kEvent.size()));
}
BENCHMARK(BM_ParseJson);

// Reference point only: simdjson builds a tape and keeps no source spans, so it cannot
// give the byte-exact pass-through our encoder relies on.
void BM_ParseSimdjson(benchmark::State& state) {
  simdjson::dom::parser parser;
  // simdjson wants SIMDJSON_PADDING readable bytes after the input; a padded_string
  // built once keeps the copy out of the loop, as a router reading into a padded
  // buffer would.
  const simdjson::padded_string input(kEvent);
  simdjson::dom::element warm;
  if (parser.parse(input).get(warm) != simdjson::SUCCESS) die("simdjson refused the event");
  for (auto _ : state) {
    simdjson::dom::element root;
    auto error = parser.parse(input).get(root);
    benchmark::DoNotOptimize(error);
    benchmark::DoNotOptimize(root);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kEvent.size()));
}
BENCHMARK(BM_ParseSimdjson);

void BM_Filter(benchmark::State& state) {
  const cel::Environment& env = cel::Environment::routing();
  auto compiled = cel::Program::compile(kFilter, env);
  if (auto* d = std::get_if<cel::Diagnostic>(&compiled)) die(d->message);
  const cel::Program& filter = std::get<cel::Program>(compiled);

  json::Document doc;
  if (!doc.parse(kEvent)) die(doc.error());
  cel::Activation activation(env);
  activation.set(env.slot("event"), cel::Value::json(&doc, json::Document::root()));
  activation.set(env.slot("subject"), cel::Value::string_view("orders.eu-west.created"));
  activation.set(env.slot("headers"), cel::Value::map({}));

  const cel::Value first = filter.evaluate(activation);
  if (first.kind() != cel::Kind::Bool || !first.bool_value()) {
    die("filter did not return true: " + cel::debug_string(first));
  }
  for (auto _ : state) {
    cel::Value keep = filter.evaluate(activation);
    benchmark::DoNotOptimize(keep);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Filter);

constexpr const char* kFullRouteYaml = R"yaml(
routes:
  - name: large-orders
    source:
      subject: orders.*.created
    filter: "event.amount >= 100.0 && event.customer.tier == 'gold'"
    transform:
      - set:
          total: "event.amount * 1.2"
          customer.region: "event.customer.region.upperAscii()"
      - remove: pad
      - rename:
          currency: ccy
    destinations:
      - subject: "orders.{{ event.customer.region }}.large"
)yaml";

constexpr const char* kPassthroughYaml = R"yaml(
routes:
  - name: copy-orders
    source:
      subject: orders.*.created
    destinations:
      - subject: orders.copy
)yaml";

void run_route(benchmark::State& state, const char* yaml, std::string_view expect_subject) {
  auto table = compile_yaml(yaml);
  route::Processor processor;
  const route::Headers headers = {{"Nats-Msg-Id", "ord-1234567890"}};
  const route::Message msg{"orders.eu-west.created", &headers, kEvent};

  const route::Result first = processor.process_route(*table, 0, msg);
  if (first.outcome != route::Result::Outcome::Published || first.outputs.size() != 1) {
    die("route did not publish: " + first.step + ": " + first.error);
  }
  if (first.outputs[0].subject != expect_subject) {
    die("unexpected subject " + first.outputs[0].subject);
  }
  // The runner calls this function several times; showing the output once is enough to
  // let a reader check what was measured.
  static std::set<std::string> shown;
  if (shown.insert(table->routes()[0].spec.name).second) {
    std::fprintf(stderr, "%s output: %s %s\n", table->routes()[0].spec.name.c_str(),
                 first.outputs[0].subject.c_str(), first.outputs[0].payload.c_str());
  }

  for (auto _ : state) {
    route::Result r = processor.process_route(*table, 0, msg);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kEvent.size()));
}

void BM_FullPath(benchmark::State& state) {
  run_route(state, kFullRouteYaml, "orders.EU-WEST.large");
}
BENCHMARK(BM_FullPath);

void BM_Passthrough(benchmark::State& state) { run_route(state, kPassthroughYaml, "orders.copy"); }
BENCHMARK(BM_Passthrough);

// 1,000 distinct routes of the shapes a large team writes: a source per team and
// entity, most with a filter, a third with a transform, a subject template on some.
std::string many_routes_yaml(int n) {
  std::string y = "routes:\n";
  for (int i = 0; i < n; ++i) {
    const std::string id = std::to_string(i);
    y += "  - name: route-" + id + "\n";
    y += "    source:\n      subject: team" + std::to_string(i % 40) + ".entity" + id + ".*\n";
    if (i % 4 != 0) {
      y += "    filter: \"event.amount >= " + id + ".0 && event.customer.tier in ['gold', 'silver']\"\n";
    }
    if (i % 3 == 0) {
      y += "    transform:\n";
      y += "      - set:\n          seen_by: \"'route-" + id + "'\"\n";
      y += "          total: \"event.amount * 1.2\"\n";
      y += "      - remove: [pad, customer.internal]\n";
    }
    y += "    destinations:\n";
    if (i % 2 == 0) {
      y += "      - subject: \"out" + id + ".{{ event.customer.region }}\"\n";
    } else {
      y += "      - subject: out" + id + ".fixed\n";
      y += "        headers:\n          X-Route: \"'route-" + id + "'\"\n";
    }
  }
  return y;
}

void BM_Compile1000Routes(benchmark::State& state) {
  constexpr int kRoutes = 1000;
  const std::string yaml = many_routes_yaml(kRoutes);
  if (compile_yaml(yaml)->routes().size() != kRoutes) die("expected 1000 routes");
  for (auto _ : state) {
    route::RouteSet set;
    std::vector<route::SpecError> errors;
    bool loaded = route::load_yaml(yaml, "bench.yaml", set, errors);
    benchmark::DoNotOptimize(loaded);
    auto table = route::RouteTable::compile(std::move(set), 1);
    benchmark::DoNotOptimize(table);
  }
  state.SetItemsProcessed(state.iterations() * kRoutes);  // routes per second
  state.counters["yaml_bytes"] = static_cast<double>(yaml.size());
}
BENCHMARK(BM_Compile1000Routes)->Unit(benchmark::kMillisecond);

// What a router does on every table change in a cluster: the controller writes the
// canonical JSON of the whole set (routes.json), and each router loads it and compiles
// it. The stages apart, so that it shows where the time goes: the YAML parse alone,
// loading into the spec model, the JSON parse alone, and compiling a loaded set.
// The routes of the control-plane benchmark (bench/controlplane/workload.cc), whose table
// is the ~454 KB routes.json of docs/benchmarks.md "Control plane".
std::string control_plane_route(int i, const std::string& version) {
  char name[16];
  std::snprintf(name, sizeof name, "route-%04d", i);
  const std::string id = std::to_string(i);
  return std::string("  - name: ") + name + "\n    router: bench\n    source: {subject: bench.in." + id +
         ".*}\n    filter: 'event.amount >= " + std::to_string(i % 500) +
         ".0 && event.currency in [\"EUR\", \"USD\"]'\n"
         "    transform:\n      - set: {total: event.amount * 1.2, region: event.region.upperAscii()}\n"
         "      - remove: [internal]\n"
         "    destinations:\n      - subject: 'bench.out." + id + ".{{ event.region }}'\n" +
         "        headers: {x-route: '\"" + name + "\"', x-version: '\"" + version + "\"'}\n" +
         "    deadLetter: {subject: bench.dlq." + id + "}\n";
}

std::string control_plane_routes_yaml(int n, int edited = -1) {
  std::string y = "routes:\n";
  for (int i = 0; i < n; ++i) y += control_plane_route(i, i == edited ? "v2" : "v1");
  return y;
}

const std::string& canonical_1000() {
  static const std::string text = compile_yaml(control_plane_routes_yaml(1000))->canonical_json();
  return text;
}

route::RouteSet load_canonical_yaml(const std::string& text) {
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  if (!route::load_yaml(text, "routes.json", set, errors)) {
    die(errors.empty() ? "load_yaml failed" : errors.front().render());
  }
  return set;
}

void BM_Canonical1000YamlParse(benchmark::State& state) {
  const std::string& text = canonical_1000();
  for (auto _ : state) {
    YAML::Node doc = YAML::Load(text);
    benchmark::DoNotOptimize(doc);
  }
  state.counters["json_bytes"] = static_cast<double>(text.size());
}
BENCHMARK(BM_Canonical1000YamlParse)->Unit(benchmark::kMillisecond);

void BM_Canonical1000LoadYaml(benchmark::State& state) {
  const std::string& text = canonical_1000();
  for (auto _ : state) {
    route::RouteSet set = load_canonical_yaml(text);
    benchmark::DoNotOptimize(set);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_Canonical1000LoadYaml)->Unit(benchmark::kMillisecond);

void BM_Canonical1000JsonParse(benchmark::State& state) {
  const std::string& text = canonical_1000();
  json::Document doc;
  for (auto _ : state) {
    bool ok = doc.parse(text);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_Canonical1000JsonParse)->Unit(benchmark::kMillisecond);

// Compiling a set already loaded (the copy of the set is part of each iteration).
void BM_Canonical1000Compile(benchmark::State& state) {
  const route::RouteSet set = load_canonical_yaml(canonical_1000());
  for (auto _ : state) {
    auto table = route::RouteTable::compile(set, 2);
    benchmark::DoNotOptimize(table);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_Canonical1000Compile)->Unit(benchmark::kMillisecond);

// The router's loader for the ConfigMap's JSON: core/json and the same rules.
void BM_Canonical1000LoadJson(benchmark::State& state) {
  const std::string& text = canonical_1000();
  for (auto _ : state) {
    route::RouteSet set;
    std::vector<route::SpecError> errors;
    if (!route::load_json(text, "routes.json", set, errors)) die("load_json failed");
    benchmark::DoNotOptimize(set);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_Canonical1000LoadJson)->Unit(benchmark::kMillisecond);

// One route edited (the control-plane benchmark's edit: a header of one route), compiled
// with the previous table at hand: 999 routes taken over, one compiled.
void BM_Canonical1000CompileOneEdited(benchmark::State& state) {
  auto previous = compile_yaml(control_plane_routes_yaml(1000));
  const route::RouteSet edited = load_canonical_yaml(compile_yaml(control_plane_routes_yaml(1000, 500))->canonical_json());
  for (auto _ : state) {
    auto table = route::RouteTable::compile(edited, 2, {}, previous.get());
    benchmark::DoNotOptimize(table);
  }
  auto table = route::RouteTable::compile(edited, 2, {}, previous.get());
  const auto& stats = std::get<std::shared_ptr<const route::RouteTable>>(table)->stats();
  if (stats.routes_compiled != 1 || stats.routes_reused != 999) die("expected 1 route compiled, 999 reused");
}
BENCHMARK(BM_Canonical1000CompileOneEdited)->Unit(benchmark::kMillisecond);

// What a router does with the ConfigMap's text of one edit, end to end: load, compile with
// the previous table, check nothing (the hash is computed in compile).
void BM_Canonical1000RouterEdit(benchmark::State& state) {
  auto previous = compile_yaml(control_plane_routes_yaml(1000));
  const std::string text = compile_yaml(control_plane_routes_yaml(1000, 500))->canonical_json();
  for (auto _ : state) {
    route::RouteSet set;
    std::vector<route::SpecError> errors;
    if (!route::load_json(text, "routes.json", set, errors)) die("load_json failed");
    auto table = route::RouteTable::compile(std::move(set), 2, {}, previous.get());
    benchmark::DoNotOptimize(table);
  }
}
BENCHMARK(BM_Canonical1000RouterEdit)->Unit(benchmark::kMillisecond);

// 10,000 patterns, a third each literal, '*' and '>', spread over 50 services so the
// first level fans out the way real subject spaces do, plus two broad patterns. The
// subject matches its entity's three patterns and '*.orders.>'.
void BM_Match10000(benchmark::State& state) {
  constexpr int kPatterns = 10000;
  route::SubjectTrie trie;
  uint32_t value = 0;
  for (int i = 0; i < kPatterns - 2; ++i) {
    const std::string svc = "svc" + std::to_string((i / 3) % 50);
    const std::string entity = "r" + std::to_string(i / 3);
    std::string pattern;
    switch (i % 3) {
      case 0: pattern = svc + ".orders." + entity + ".created"; break;
      case 1: pattern = svc + ".*." + entity + ".created"; break;
      default: pattern = svc + ".orders." + entity + ".>"; break;
    }
    if (!route::validate_subject(pattern, true, nullptr)) die("bad pattern " + pattern);
    trie.insert(pattern, value++);
  }
  trie.insert("*.orders.>", value++);
  trie.insert("svc7.>", value++);
  if (trie.size() != kPatterns) die("expected 10000 distinct patterns");

  const std::string subject = "svc8.orders.r408.created";  // 408 % 50 == 8
  std::vector<uint32_t> out;
  trie.match(subject, out);
  if (out.empty()) die("subject matches nothing");
  const auto matches = out.size();

  for (auto _ : state) {
    out.clear();
    trie.match(subject, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["matches"] = static_cast<double>(matches);
}
BENCHMARK(BM_Match10000);

}  // namespace

BENCHMARK_MAIN();
