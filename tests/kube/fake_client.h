// A Client for unit tests: each call goes to a std::function the test sets; calls without
// one fail the test loudly.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "kube/client.h"
#include "tests/support/files.h"

namespace switchboard::kube::testing {

class FakeClient : public Client {
 public:
  using WatchFn = std::function<std::string(const std::string& rv,
                                            const std::function<WatchControl(const WatchEvent&)>& on_event,
                                            const std::atomic<bool>& stop)>;
  std::function<Object(const std::string& ns, const std::string& name)> on_get;
  std::function<ObjectList()> on_list;
  WatchFn on_watch;
  std::function<Object(const Object&)> on_replace_status;

  Object get(const Resource&, const std::string& ns, const std::string& name) override {
    if (!on_get) throw unexpected("get");
    return on_get(ns, name);
  }
  ObjectList list(const Resource&, const std::string&, const ListOptions&) override {
    if (!on_list) throw unexpected("list");
    return on_list();
  }
  std::string watch(const Resource&, const std::string&, const ListOptions&, const std::string& rv,
                    const std::function<WatchControl(const WatchEvent&)>& on_event,
                    const std::atomic<bool>& stop) override {
    if (!on_watch) throw unexpected("watch");
    return on_watch(rv, on_event, stop);
  }
  Object apply(const Resource&, const Object&) override { throw unexpected("apply"); }
  Object apply_status(const Resource&, const Object&) override { throw unexpected("apply_status"); }
  Object replace_status(const Resource&, const Object& obj) override {
    if (!on_replace_status) throw unexpected("replace_status");
    return on_replace_status(obj);
  }
  Object merge_patch(const Resource&, const std::string&, const std::string&, const Object&) override {
    throw unexpected("merge_patch");
  }
  Object create(const Resource&, const std::string&, const Object&) override { throw unexpected("create"); }
  bool remove(const Resource&, const std::string&, const std::string&, Propagation) override {
    throw unexpected("remove");
  }
  Object create_subresource(const Resource&, const std::string&, const std::string&, const std::string&,
                            const Object&) override {
    throw unexpected("create_subresource");
  }

 private:
  static std::logic_error unexpected(const char* what) {
    ADD_FAILURE() << "unexpected FakeClient call: " << what;
    return std::logic_error(std::string("unexpected call: ") + what);
  }
};

// Blocks like a quiet watch until stop, looking at it as often as the real one.
inline std::string wait_for_stop(const std::string& rv, const std::atomic<bool>& stop) {
  while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return rv;
}

// Polls until a condition holds or 30 s pass (generous: conditions, not timings, are what
// tests check).
using switchboard::testing::eventually;

inline Object make_object(const std::string& ns, const std::string& name, const std::string& rv,
                          const std::string& data = "") {
  Object o = Object::object();
  o["metadata"]["namespace"] = Object::string(ns);
  o["metadata"]["name"] = Object::string(name);
  o["metadata"]["resourceVersion"] = Object::string(rv);
  if (!data.empty()) o["data"]["v"] = Object::string(data);
  return o;
}

}  // namespace switchboard::kube::testing
