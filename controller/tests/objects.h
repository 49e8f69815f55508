// Objects for tests, as the API server would return them (defaults filled in).
#pragma once

#include <string>

#include "controller/json_util.h"

namespace switchboard::controller::testing {

inline Json parse(const std::string& text) { return Json::parse(text); }

inline Json router_object(const std::string& name = "orders", const std::string& ns = "shop",
                          const std::string& extra_spec = "") {
  return parse(R"({"apiVersion":"switchboard.dev/v1alpha1","kind":"EventRouter",
    "metadata":{"name":")" + name + R"(","namespace":")" + ns + R"(","uid":"uid-)" + name + R"(","generation":1},
    "spec":{"replicas":2,"nats":{"urls":["nats://nats-1:4222","nats://nats-2:4222"]},
            "logLevel":"info","heartbeatInterval":"5s","shutdownGracePeriod":"20s","metricsPort":9090)" +
               extra_spec + R"(}})");
}

// An EventRoute with this spec (JSON text), in namespace shop.
inline Json route_object(const std::string& name, const std::string& spec, const std::string& labels = "{}",
                         const std::string& ns = "shop") {
  return parse(R"({"apiVersion":"switchboard.dev/v1alpha1","kind":"EventRoute",
    "metadata":{"name":")" + name + R"(","namespace":")" + ns + R"(","generation":1,"labels":)" + labels + R"(},
    "spec":)" + spec + "}");
}

inline Json transform_object(const std::string& name, const std::string& spec, const std::string& ns = "shop") {
  return parse(R"({"apiVersion":"switchboard.dev/v1alpha1","kind":"EventTransform",
    "metadata":{"name":")" + name + R"(","namespace":")" + ns + R"(","generation":1},
    "spec":)" + spec + "}");
}

// A valid route spec for router `router`, consuming `subject`.
inline std::string simple_spec(const std::string& router = "orders", const std::string& subject = "orders.*.created") {
  return R"({"router":")" + router + R"(","source":{"subject":")" + subject +
         R"("},"filter":"event.amount >= 100.0","destinations":[{"subject":"orders.large"}],"maxPayloadBytes":1048576})";
}

}  // namespace switchboard::controller::testing
