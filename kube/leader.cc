// Leader election on a Lease: a candidate loop (try every retry period, with jitter), a
// leader loop (renew every retry period, each renewal bounded by the renew deadline), and
// a release on stop.
#include "kube/leader.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <future>
#include <random>

namespace switchboard::kube {

namespace {

using std::chrono::steady_clock;

// metav1.MicroTime: "2006-01-02T15:04:05.000000Z".
std::string micro_time(std::chrono::system_clock::time_point t) {
  const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(us / 1000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us % 1000000));
  return buf;
}

std::string spec_string(const Object& spec, const char* key) {
  return spec.has_field(key) && spec.at(key).is_string() ? spec.at(key).as_string() : "";
}

int64_t spec_int(const Object& spec, const char* key) {
  return spec.has_field(key) && spec.at(key).is_integer() ? spec.at(key).as_number().to_int64() : 0;
}

}  // namespace

LeaderElector::LeaderElector(Client& client, LeaderElectionConfig config, std::function<void()> on_started_leading,
                             std::function<void()> on_stopped_leading)
    : client_(client),
      config_(std::move(config)),
      on_started_(std::move(on_started_leading)),
      on_stopped_(std::move(on_stopped_leading)) {}

LeaderElector::~LeaderElector() { stop(); }

void LeaderElector::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void LeaderElector::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string LeaderElector::holder() const {
  std::lock_guard lock(mu_);
  return holder_;
}

void LeaderElector::set_holder(const std::string& holder) {
  std::lock_guard lock(mu_);
  holder_ = holder;
}

bool LeaderElector::wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return stop_.load(); });
}

namespace {

Object to_spec(const std::string& holder, int64_t duration_s, const std::string& acquire, const std::string& renew,
               int64_t transitions) {
  Object spec = Object::object();
  spec["holderIdentity"] = Object::string(holder);
  spec["leaseDurationSeconds"] = Object::number(duration_s);
  spec["acquireTime"] = Object::string(acquire);
  spec["renewTime"] = Object::string(renew);
  spec["leaseTransitions"] = Object::number(transitions);
  return spec;
}

}  // namespace

bool LeaderElector::try_acquire_or_renew() {
  const std::string now_text = micro_time(std::chrono::system_clock::now());
  const auto duration_ms = static_cast<double>(config_.lease_duration.count());
  const auto duration_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(duration_ms / 1000.0)));
  Object lease;
  try {
    lease = client_.get(resources::kLeases, config_.ns, config_.name);
  } catch (const ApiError& e) {
    if (!e.not_found()) return false;
    Object fresh = Object::object();
    fresh["apiVersion"] = Object::string(resources::kLeases.api_version());
    fresh["kind"] = Object::string(resources::kLeases.kind);
    fresh["metadata"] = Object::object();
    fresh["metadata"]["name"] = Object::string(config_.name);
    fresh["metadata"]["namespace"] = Object::string(config_.ns);
    fresh["spec"] = to_spec(config_.identity, duration_s, now_text, now_text, 0);
    try {
      client_.create(resources::kLeases, config_.ns, fresh);
    } catch (const ApiError&) {
      return false;  // another candidate created it first
    }
    observed_ = Record{config_.identity, duration_s, now_text, now_text, 0};
    observed_at_ = steady_clock::now();
    set_holder(config_.identity);
    return true;
  }

  const Object spec = lease.has_object_field("spec") ? lease.at("spec") : Object::object();
  Record current{spec_string(spec, "holderIdentity"), spec_int(spec, "leaseDurationSeconds"),
                 spec_string(spec, "acquireTime"), spec_string(spec, "renewTime"), spec_int(spec, "leaseTransitions")};
  const auto now = steady_clock::now();
  if (!observed_ || !(*observed_ == current)) {
    observed_ = current;
    observed_at_ = now;
  }
  set_holder(current.holder);
  const bool held_by_other = !current.holder.empty() && current.holder != config_.identity;
  if (held_by_other && now < observed_at_ + std::chrono::seconds(current.lease_duration_s)) return false;

  Record next{config_.identity, duration_s, now_text, now_text, current.transitions};
  if (current.holder == config_.identity) {
    next.acquire_time = current.acquire_time;
  } else {
    ++next.transitions;
  }
  // The Lease as read, resourceVersion included: if anyone wrote it since, this fails
  // with a conflict and the race is lost.
  lease["spec"] = to_spec(next.holder, next.lease_duration_s, next.acquire_time, next.renew_time, next.transitions);
  try {
    client_.replace(resources::kLeases, lease);
  } catch (const ApiError&) {
    return false;
  }
  observed_ = next;
  observed_at_ = steady_clock::now();
  set_holder(config_.identity);
  return true;
}

void LeaderElector::release() {
  try {
    Object lease = client_.get(resources::kLeases, config_.ns, config_.name);
    const Object spec = lease.has_object_field("spec") ? lease.at("spec") : Object::object();
    if (spec_string(spec, "holderIdentity") != config_.identity) return;
    const std::string now_text = micro_time(std::chrono::system_clock::now());
    // An empty holder is free at once; the one-second duration covers candidates that
    // only look at expiry.
    lease["spec"] = to_spec("", 1, now_text, now_text, spec_int(spec, "leaseTransitions"));
    client_.replace(resources::kLeases, lease);
    set_holder("");
  } catch (const ApiError&) {
    // Not released: the others wait for the lease to expire instead.
  }
}

bool LeaderElector::holds_lease() const {
  if (!leading_.load()) return false;
  const auto last = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(last_renew_ns_.load()));
  return std::chrono::steady_clock::now() < last + config_.renew_deadline;
}

void LeaderElector::run() {
  std::mt19937 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(1.0, 1.2);
  while (!stop_) {
    if (!try_acquire_or_renew()) {
      const double ms = static_cast<double>(config_.retry_period.count()) * jitter(rng);
      wait(std::chrono::milliseconds(static_cast<int64_t>(ms)));
      continue;
    }
    auto last_renew = steady_clock::now();
    last_renew_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(last_renew.time_since_epoch()).count();
    leading_ = true;
    if (on_started_) on_started_();

    bool lost = false;
    while (!lost && wait(config_.retry_period)) {
      const auto attempt_start = steady_clock::now();
      // On its own thread, so that a request that hangs cannot keep this replica leading
      // past the renew deadline.
      auto attempt = std::async(std::launch::async, [this] { return try_acquire_or_renew(); });
      const auto deadline = last_renew + config_.renew_deadline;
      bool renewed = false;
      for (;;) {
        const auto until = std::min(deadline, steady_clock::now() + std::chrono::milliseconds(100));
        if (attempt.wait_until(until) == std::future_status::ready) {
          renewed = attempt.get();
          break;
        }
        if (steady_clock::now() >= deadline) {
          lost = true;
          break;
        }
      }
      if (lost) {
        // Step down now; the renewal still in flight is waited for by the future.
        leading_ = false;
        if (on_stopped_) on_stopped_();
        break;
      }
      if (renewed) {
        last_renew = attempt_start;
        last_renew_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(last_renew.time_since_epoch()).count();
        continue;
      }
      const std::string seen = holder();
      if ((!seen.empty() && seen != config_.identity) || steady_clock::now() >= deadline) {
        lost = true;
        leading_ = false;
        if (on_stopped_) on_stopped_();
      }
    }
    if (stop_) break;
  }
  if (leading_) {
    release();
    leading_ = false;
    if (on_stopped_) on_stopped_();
  }
}

}  // namespace switchboard::kube
