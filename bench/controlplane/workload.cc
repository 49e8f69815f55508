#include "bench/controlplane/workload.h"

#include <cstdio>

namespace switchboard::bench {

namespace {

using Object = kube::Object;

Object str(const std::string& s) { return Object::string(s); }

Object destinations(int index, const std::string& version) {
  Object headers = Object::object();
  headers["x-route"] = str("\"" + route_name(index) + "\"");
  headers["x-version"] = str("\"" + version + "\"");
  Object d = Object::object();
  d["subject"] = str("bench.out." + std::to_string(index) + ".{{ event.region }}");
  d["headers"] = headers;
  Object list = Object::array(1);
  list[0] = d;
  return list;
}

}  // namespace

std::string route_name(int index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "route-%04d", index);
  return buf;
}

Object router_object(const std::string& ns, int replicas, const std::string& nats_url, const std::string& heartbeat) {
  Object o = Object::object();
  o["apiVersion"] = str("switchboard.dev/v1alpha1");
  o["kind"] = str("EventRouter");
  o["metadata"]["name"] = str(kRouterName);
  o["metadata"]["namespace"] = str(ns);
  o["spec"]["replicas"] = Object::number(replicas);
  Object urls = Object::array(1);
  urls[0] = str(nats_url);
  o["spec"]["nats"]["urls"] = urls;
  o["spec"]["heartbeatInterval"] = str(heartbeat);
  return o;
}

Object route_object(const std::string& ns, int index, const std::string& version) {
  const std::string i = std::to_string(index);
  Object o = Object::object();
  o["apiVersion"] = str("switchboard.dev/v1alpha1");
  o["kind"] = str("EventRoute");
  o["metadata"]["name"] = str(route_name(index));
  o["metadata"]["namespace"] = str(ns);
  Object& spec = o["spec"];
  spec["router"] = str(kRouterName);
  spec["source"]["subject"] = str("bench.in." + i + ".*");
  spec["filter"] = str("event.amount >= " + std::to_string(index % 500) + ".0 && event.currency in [\"EUR\", \"USD\"]");
  Object set = Object::object();
  set["total"] = str("event.amount * 1.2");
  set["region"] = str("event.region.upperAscii()");
  Object remove = Object::array(1);
  remove[0] = str("internal");
  Object steps = Object::array(2);
  steps[0]["set"] = set;
  steps[1]["remove"] = remove;
  spec["transform"] = steps;
  spec["destinations"] = destinations(index, version);
  spec["deadLetter"]["subject"] = str("bench.dlq." + i);
  return o;
}

Object ready_status(const std::string& router, int replicas) {
  const std::string pods = std::to_string(replicas) + "/" + std::to_string(replicas);
  Object ready = Object::object();
  ready["type"] = str("Ready");
  ready["status"] = str("True");
  ready["reason"] = str("Applied");
  ready["message"] = str("every pod of router " + router + " runs it (" + pods + ")");
  ready["lastTransitionTime"] = str("2026-01-01T00:00:00Z");
  ready["observedGeneration"] = Object::number(1);
  Object conditions = Object::array(1);
  conditions[0] = ready;
  Object s = Object::object();
  s["observedGeneration"] = Object::number(1);
  s["applied"] = str(pods);
  s["rejectedBy"] = Object::array(0);
  s["conditions"] = conditions;
  return s;
}

Object version_patch(int index, const std::string& version) {
  Object p = Object::object();
  p["spec"]["destinations"] = destinations(index, version);
  return p;
}

}  // namespace switchboard::bench
