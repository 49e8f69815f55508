// Putting a route table together from a routes ConfigMap (routes.json, or an index and
// its parts), without a cluster: what `run --configmap` does with each version it sees.
#include <gtest/gtest.h>

#include <map>
#include <optional>

#include "core/route/spec_yaml.h"
#include "core/route/table.h"
#include "router/configmap_source.h"

namespace switchboard::router {
namespace {

const char* kRoutesV1 = R"(routes:
  - name: large
    source: {subject: orders.*}
    filter: 'event.amount >= 100.0'
    destinations:
      - subject: 'out.v1.{{ event.region }}'
)";
const char* kRoutesV2 = R"(routes:
  - name: large
    source: {subject: orders.*}
    filter: 'event.amount >= 1.0'
    destinations:
      - subject: 'out.v2.{{ event.region }}'
)";

std::pair<std::string, std::string> canonical(const std::string& yaml) {
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  EXPECT_TRUE(route::load_yaml(yaml, "test.yaml", set, errors));
  std::string text = route::canonical_json(set);
  return {text, "sha256:" + route::sha256_hex(text)};
}


RoutesConfigMap main_map(uint64_t generation, const std::string& hash, std::map<std::string, std::string> data) {
  RoutesConfigMap cm;
  cm.name = "orders-routes";
  cm.annotations = {{kGenerationAnnotation, std::to_string(generation)}, {kHashAnnotation, hash}};
  cm.data = std::move(data);
  return cm;
}

TEST(AssembleRoutes, ReadsRoutesJsonAndChecksTheHash) {
  auto [text, hash] = canonical(kRoutesV1);
  AssembledRoutes out;
  std::string error;
  ASSERT_EQ(assemble_routes(main_map(7, hash, {{"routes.json", text}}), {}, out, error), AssembleResult::Ok)
      << error;
  EXPECT_EQ(out.generation, 7u);
  auto table = compile_routes(out, "cm");
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const route::RouteTable>>(table));
  EXPECT_EQ(std::get<0>(table)->generation(), 7u);
  EXPECT_EQ(std::get<0>(table)->hash(), hash);

  auto [text2, hash2] = canonical(kRoutesV2);
  ASSERT_EQ(assemble_routes(main_map(8, hash2, {{"routes.json", text}}), {}, out, error), AssembleResult::Ok);
  auto mismatch = compile_routes(out, "cm");
  ASSERT_TRUE(std::holds_alternative<std::string>(mismatch));
  EXPECT_NE(std::get<1>(mismatch).find("hash mismatch"), std::string::npos) << std::get<1>(mismatch);
}

// The router keeps the table it compiled last and hands it to the next compile: an
// edited route is compiled, the others are taken over.
TEST(AssembleRoutes, CompileTakesOverUnchangedRoutesFromThePreviousTable) {
  const std::string other = "  - name: other\n    source: {subject: stock.*}\n    filter: 'event.qty > 1'\n"
                            "    destinations: [{subject: stock.out}]\n";
  auto [text1, hash1] = canonical(std::string(kRoutesV1) + other);
  auto [text2, hash2] = canonical(std::string(kRoutesV2) + other);
  AssembledRoutes out;
  std::string error;
  ASSERT_EQ(assemble_routes(main_map(1, hash1, {{"routes.json", text1}}), {}, out, error), AssembleResult::Ok);
  auto first = compile_routes(out, "cm");
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const route::RouteTable>>(first)) << std::get<1>(first);
  ASSERT_EQ(assemble_routes(main_map(2, hash2, {{"routes.json", text2}}), {}, out, error), AssembleResult::Ok);
  auto second = compile_routes(out, "cm", std::get<0>(first).get());
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const route::RouteTable>>(second)) << std::get<1>(second);
  const route::RouteTable& t = *std::get<0>(second);
  EXPECT_EQ(t.hash(), hash2);
  EXPECT_EQ(t.stats().routes_compiled, 1u);
  EXPECT_EQ(t.stats().routes_reused, 1u);
  EXPECT_EQ(&t.routes()[1].filter->source(), &std::get<0>(first)->routes()[1].filter->source());
}

// routes.json is read by the JSON loader: an error names its line and column.
TEST(AssembleRoutes, ABadTableIsRefusedWithThePosition) {
  const std::string text = "{\"routes\":[{\"name\":\"a\",\"source\":{\"subject\":\"a\"},\"destinations\":[],"
                           "\"maxPayloadBytes\":1}],\"transforms\":[]}";
  AssembledRoutes out;
  std::string error;
  ASSERT_EQ(assemble_routes(main_map(3, "sha256:" + route::sha256_hex(text), {{"routes.json", text}}), {}, out,
                            error),
            AssembleResult::Ok);
  auto refused = compile_routes(out, "cm");
  ASSERT_TRUE(std::holds_alternative<std::string>(refused));
  EXPECT_EQ(std::get<1>(refused), "cm:1:64: route 'a', destinations: needs at least one destination");
}

TEST(AssembleRoutes, RefusesBadAnnotationsAndData) {
  auto [text, hash] = canonical(kRoutesV1);
  AssembledRoutes out;
  std::string error;
  RoutesConfigMap cm = main_map(1, hash, {{"routes.json", text}});
  cm.annotations.erase(kGenerationAnnotation);
  EXPECT_EQ(assemble_routes(cm, {}, out, error), AssembleResult::Invalid);
  EXPECT_NE(error.find("switchboard.dev/generation"), std::string::npos) << error;
  cm = main_map(1, "sha256:xyz", {{"routes.json", text}});
  EXPECT_EQ(assemble_routes(cm, {}, out, error), AssembleResult::Invalid);
  EXPECT_NE(error.find("switchboard.dev/hash"), std::string::npos) << error;
  cm = main_map(1, hash, {});
  EXPECT_EQ(assemble_routes(cm, {}, out, error), AssembleResult::Invalid);
  EXPECT_NE(error.find("neither routes.json nor index.json"), std::string::npos) << error;
  cm = main_map(1, hash, {{"index.json", "{\"generation\":2,\"hash\":\"" + hash + "\",\"parts\":[]}"}});
  EXPECT_EQ(assemble_routes(cm, {}, out, error), AssembleResult::Invalid);
  EXPECT_NE(error.find("generation does not match"), std::string::npos) << error;
}

TEST(AssembleRoutes, JoinsPartsInOrderAndWaitsForMissingOrStaleOnes) {
  auto [text, hash] = canonical(kRoutesV2);
  std::vector<std::string> pieces = {text.substr(0, 10), text.substr(10, 30), text.substr(40)};
  std::string index = "{\"generation\":3,\"hash\":\"" + hash + "\",\"parts\":[";
  std::map<std::string, RoutesConfigMap> parts;
  for (size_t i = 0; i < pieces.size(); ++i) {
    std::string name = "orders-routes-" + std::to_string(i + 1);
    index += (i ? "," : "") + std::string("{\"name\":\"") + name + "\",\"sha256\":\"" + route::sha256_hex(pieces[i]) +
             "\"}";
    parts[name].name = name;
    parts[name].data["part"] = pieces[i];
  }
  index += "]}";
  RoutesConfigMap cm = main_map(3, hash, {{"index.json", index}});
  auto fetch = [&](const std::string& name) -> std::optional<RoutesConfigMap> {
    auto it = parts.find(name);
    if (it == parts.end()) return std::nullopt;
    return it->second;
  };
  AssembledRoutes out;
  std::string error;
  ASSERT_EQ(assemble_routes(cm, fetch, out, error), AssembleResult::Ok) << error;
  EXPECT_EQ(out.text, text);
  EXPECT_EQ(out.parts, 3u);
  EXPECT_TRUE(std::holds_alternative<std::shared_ptr<const route::RouteTable>>(compile_routes(out, "cm")));

  parts["orders-routes-2"].data["part"] = "stale";
  EXPECT_EQ(assemble_routes(cm, fetch, out, error), AssembleResult::Retry);
  EXPECT_NE(error.find("orders-routes-2 has sha256"), std::string::npos) << error;
  parts.erase("orders-routes-3");
  parts["orders-routes-2"].data["part"] = pieces[1];
  EXPECT_EQ(assemble_routes(cm, fetch, out, error), AssembleResult::Retry);
  EXPECT_NE(error.find("orders-routes-3 not found"), std::string::npos) << error;
}

TEST(ConfigMapRef, NeedsNamespaceAndName) {
  std::string ns, name, error;
  EXPECT_TRUE(parse_configmap_ref("shop/orders-routes", ns, name, error));
  EXPECT_EQ(ns, "shop");
  EXPECT_EQ(name, "orders-routes");
  for (const char* bad : {"orders-routes", "/x", "x/", "a/b/c", ""}) {
    EXPECT_FALSE(parse_configmap_ref(bad, ns, name, error)) << bad;
  }
}

}  // namespace
}  // namespace switchboard::router
