// Wires the controller together and runs it until SIGTERM: informers fill the caches
// (on every replica, so that a new leader starts warm), one work queue and one worker per
// kind reconcile while this replica holds the Lease, a ticker ages out silent router pods
// and resyncs, and /metrics /healthz /readyz are served throughout. Services start in
// order and stop in reverse order, here and nowhere else.
#pragma once

#include "controller/options.h"

namespace switchboard::controller {

// Returns the process exit status: 0 after SIGTERM or SIGINT (the Lease released), 1
// when it could not start or lost the Lease to another replica.
int run_controller(const ControllerOptions& options);

}  // namespace switchboard::controller
