// libFuzzer target for the route pipeline as a router meets it: untrusted YAML is loaded,
// compiled, and the resulting table runs a real event. Whatever a user or a compromised
// controller ships, the router must refuse it with errors or run it within limits; it must
// never crash, leak or spin.
//
// Beyond "does not crash", it checks the promises callers rely on: a refusal always says
// why, a table's canonical JSON and every published payload are valid JSON, and a
// published subject is one NATS would accept; and that the table's canonical JSON, read
// back with the JSON loader as a router reads its ConfigMap, is the same table.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>


#include "core/json/document.h"
#include "core/route/processor.h"
#include "core/route/spec.h"
#include "core/route/spec_json.h"
#include "core/route/spec_yaml.h"
#include "core/route/subject.h"
#include "core/route/table.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace json = switchboard::json;
namespace route = switchboard::route;

// The event every accepted table runs. It has the shapes expressions reach for: nested
// objects, a large integer id, a fractional amount, an array, and an escaped string.
constexpr std::string_view kPayload =
    R"({"id":"ord-1234567890","customer":{"id":98765432101234,"tier":"gold","region":"eu-west"},)"
    R"("amount":1234.5,"currency":"EUR","items":[{"sku":"A-1","qty":2},{"sku":"B-22","qty":1}],)"
    R"("note":"line\nbreak \u00e9","pad":"xxxxxxxx"})";
constexpr std::string_view kSubject = "orders.eu-west.created";

// process() only runs routes whose source matches kSubject, which most mutated inputs will
// not; running a bounded number of routes directly keeps their filters and transforms
// under test too.
constexpr size_t kMaxDirectRoutes = 16;

bool valid_json(std::string_view text) {
  static json::Document doc;
  return doc.parse(text);
}

void check_result(const route::RouteTable& table, const route::Result& r) {
  FUZZ_CHECK(r.route < table.routes().size());
  const route::CompiledRoute& compiled = table.routes()[r.route];
  switch (r.outcome) {
    case route::Result::Outcome::Published:
      FUZZ_CHECK(r.outputs.size() == compiled.destinations.size());
      for (const auto& out : r.outputs) {
        FUZZ_CHECK(route::validate_subject(out.subject, false, nullptr));
        for (const auto& [name, value] : out.headers) {
          FUZZ_CHECK(value.find_first_of("\r\n") == std::string::npos);
        }
        // Untransformed payloads are passed through as received; anything the encoder
        // wrote must parse.
        if (!compiled.steps.empty()) FUZZ_CHECK(valid_json(out.payload));
      }
      break;
    case route::Result::Outcome::Filtered:
      FUZZ_CHECK(compiled.filter.has_value());
      FUZZ_CHECK(r.outputs.empty());
      break;
    case route::Result::Outcome::Failed:
      FUZZ_CHECK(!r.error.empty());
      FUZZ_CHECK(!route::reason_label(r.reason).empty());
      FUZZ_CHECK(r.outputs.empty());
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  route::RouteSet set;
  std::vector<route::SpecError> errors;
  const bool loaded = route::load_yaml(input, "fuzz.yaml", set, errors);
  for (const auto& e : errors) FUZZ_CHECK(!e.render().empty());
  if (!loaded) {
    FUZZ_CHECK(!errors.empty());
    return 0;
  }
  FUZZ_CHECK(errors.empty());

  auto compiled = route::RouteTable::compile(std::move(set), 1);
  if (auto* refused = std::get_if<std::vector<route::SpecError>>(&compiled)) {
    FUZZ_CHECK(!refused->empty());
    for (const auto& e : *refused) FUZZ_CHECK(!e.render().empty());
    return 0;
  }
  const auto table = std::get<std::shared_ptr<const route::RouteTable>>(std::move(compiled));
  FUZZ_CHECK(table != nullptr);
  FUZZ_CHECK(valid_json(table->canonical_json()));

  // A router in a cluster reads this canonical JSON with the JSON loader and compiles it
  // against the table it runs: the same set again, every route taken over, the same hash.
  route::RouteSet again;
  std::vector<route::SpecError> json_errors;
  FUZZ_CHECK(route::load_json(table->canonical_json(), "routes.json", again, json_errors));
  FUZZ_CHECK(route::canonical_json(again) == table->canonical_json());
  auto recompiled = route::RouteTable::compile(std::move(again), 2, {}, table.get());
  const auto* same = std::get_if<std::shared_ptr<const route::RouteTable>>(&recompiled);
  FUZZ_CHECK(same != nullptr && (*same)->hash() == table->hash());
  FUZZ_CHECK((*same)->stats().routes_reused == table->routes().size());

  // One long-lived Processor, as a router thread keeps one, so that state carried from one
  // input to the next is exercised under the sanitizers too.
  static route::Processor processor;
  const route::Headers headers = {{"Nats-Msg-Id", "ord-1234567890"}, {"X-Tenant", "acme"}};
  const route::Message msg{kSubject, &headers, kPayload};

  std::vector<route::Result> results;
  processor.process(*table, msg, results);
  for (const auto& r : results) check_result(*table, r);

  const size_t direct = std::min(table->routes().size(), kMaxDirectRoutes);
  for (uint32_t i = 0; i < direct; ++i) check_result(*table, processor.process_route(*table, i, msg));
  return 0;
}
