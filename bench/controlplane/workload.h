// What the control-plane benchmark asks of the cluster: one EventRouter and N EventRoutes
// that it runs, and the edits made to them. Every route is distinct (its own subject,
// threshold and output) and has what a real one has: a filter, a transform, a templated
// destination with headers, a dead-letter subject.
#pragma once

#include <string>

#include "kube/client.h"

namespace switchboard::bench {

inline constexpr const char* kRouterName = "bench";

// "route-0007": names sort in creation order.
std::string route_name(int index);

// The EventRouter `bench`: `replicas` pods, connected to `nats_url`, heartbeats every
// `heartbeat` (a duration such as "1s").
kube::Object router_object(const std::string& ns, int replicas, const std::string& nats_url,
                           const std::string& heartbeat);

// EventRoute `index`. `version` is the value of its destination's x-version header: a
// different version is a different spec, so a new generation and a new route table.
kube::Object route_object(const std::string& ns, int index, const std::string& version);

// The status the controller writes on a route that every pod of `router` runs (generation 1).
kube::Object ready_status(const std::string& router, int replicas);

// A JSON merge patch that moves route `index` to `version` (the destinations list, whole:
// a merge patch replaces a list).
kube::Object version_patch(int index, const std::string& version);

}  // namespace switchboard::bench
