// Where route tables come from. Every source (a file, a ConfigMap watch) compiles what it
// reads whole and hands the result to the same two callbacks, so the router has one
// reload path whatever the source: apply a compiled table, or record why one was refused
// while the running table stays.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/route/table.h"

namespace switchboard::router {

class TableSource {
 public:
  using Apply = std::function<void(std::shared_ptr<const route::RouteTable>)>;
  using Reject = std::function<void(uint64_t generation, const std::string& error)>;

  virtual ~TableSource() = default;
  // Begins delivering tables; the first may arrive before start() returns (a file) or
  // later (a watch).
  virtual void start() = 0;
  // Stops delivering; no callback runs after stop() returns. Idempotent.
  virtual void stop() = 0;
  // Looks again now (SIGHUP); true when that delivered a new table or refusal.
  virtual bool poll() = 0;
  // "file routes.yaml", "configmap shop/orders-routes": for logs.
  virtual std::string describe() const = 0;
};

}  // namespace switchboard::router
