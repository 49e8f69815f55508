// A destination whose publish acknowledgements are slow. The destination subject is served
// by a SlowStream below: it stores each message in a real stream (so Nats-Msg-Id still
// drops repeats) and answers the publisher only after a delay and no faster than a set
// rate, which is what a slow or overloaded JetStream looks like to a publisher. The source
// is produced to far faster than that. The router must hold a bounded amount in memory
// (its in-flight window, one batch, the consumer's maxAckPending) and leave the backlog in
// the source stream; once the destination is fast again everything arrives, once.
#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>

#include "tests/chaos/rig.h"
#include "tests/chaos/scenarios.h"

namespace switchboard::chaos {

namespace {

constexpr int kInflightLimit = 64;    // --jetstream-max-inflight
constexpr int kMaxAckPending = 1024;  // the route's consumer
constexpr size_t kPad = 4096;         // bytes per event, so that the backlog weighs something

class SlowStream {
 public:
  SlowStream(std::string in_prefix, std::string store_prefix)
      : in_prefix_(std::move(in_prefix)), store_prefix_(std::move(store_prefix)) {}
  ~SlowStream() { stop(); }

  bool start(const std::string& url, std::string& error) {
    if (!connect_client(in_, url, "chaos-slow-in") || !connect_client(store_, url, "chaos-slow-store")) {
      error = "cannot connect the slow stream";
      return false;
    }
    sub_ = in_.subscribe(in_prefix_ + ".>", "", [this](const router::NatsMessage& m) {
      const char* reply = natsMsg_GetReply(m.msg);
      std::lock_guard lock(mu_);
      queue_.push_back(Held{reply == nullptr ? "" : reply, std::string(m.subject), *m.headers, std::string(m.data),
                            Clock::now()});
      max_queue_ = std::max(max_queue_, queue_.size());
      ++received_;
      cv_.notify_all();
    }, error);
    if (sub_ == 0) return false;
    in_.flush(2000);
    worker_ = std::thread([this] { work(); });
    return true;
  }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    if (sub_ != 0) in_.unsubscribe(sub_);
    sub_ = 0;
  }
  // Answers per second; 0: as fast as the real stream answers.
  void set_rate(double per_second) {
    std::lock_guard lock(mu_);
    rate_ = per_second;
  }
  struct Stats {
    uint64_t received = 0, stored = 0, duplicates = 0, refused = 0;
    size_t max_queue = 0;
  };
  Stats stats() {
    std::lock_guard lock(mu_);
    return Stats{received_, stored_, duplicates_, refused_, max_queue_};
  }

 private:
  struct Held {
    std::string reply, subject;
    router::NatsHeaders headers;
    std::string data;
    Clock::time_point arrived;
  };
  static constexpr auto kDelay = std::chrono::milliseconds(50);

  void work() {
    Clock::time_point next = Clock::now();
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      Held h = std::move(queue_.front());
      queue_.pop_front();
      double rate = rate_;
      lock.unlock();
      auto now = Clock::now();
      if (h.arrived + kDelay > now) std::this_thread::sleep_for(h.arrived + kDelay - now);
      if (rate > 0) {
        next = std::max(next + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate)),
                        Clock::now() - std::chrono::seconds(1));
        if (next > Clock::now()) std::this_thread::sleep_for(next - Clock::now());
      }
      std::string answer = store(h);
      if (!h.reply.empty()) {
        std::string error;
        in_.publish(h.reply, {}, answer, error);
      }
      lock.lock();
    }
  }

  // Stores the message in the real stream and returns the stream's answer for the publisher.
  std::string store(const Held& h) {
    std::string subject = store_prefix_ + h.subject.substr(in_prefix_.size());
    natsMsg* m = nullptr;
    natsMsg_Create(&m, subject.c_str(), nullptr, h.data.data(), static_cast<int>(h.data.size()));
    for (const auto& [k, v] : h.headers) natsMsgHeader_Add(m, k.c_str(), v.c_str());
    jsPubAck* ack = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 5000;
    jsCtx* js = store_.jetstream();
    natsStatus s = js == nullptr ? NATS_ERR : js_PublishMsg(&ack, js, m, &po, &code);
    natsMsg_Destroy(m);
    std::string answer;
    std::lock_guard lock(mu_);
    if (s == NATS_OK && ack != nullptr) {
      ++stored_;
      if (ack->Duplicate) ++duplicates_;
      answer = std::string("{\"stream\":\"") + ack->Stream + "\",\"seq\":" + std::to_string(ack->Sequence) +
               (ack->Duplicate ? ",\"duplicate\":true}" : "}");
    } else {
      ++refused_;
      answer = "{\"error\":{\"code\":503,\"description\":\"slow stream: " + std::string(natsStatus_GetText(s)) +
               "\"}}";
    }
    jsPubAck_Destroy(ack);
    return answer;
  }

  std::string in_prefix_, store_prefix_;
  router::NatsClient in_, store_;
  uint64_t sub_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Held> queue_;
  bool stopping_ = false;
  double rate_ = 0;
  uint64_t received_ = 0, stored_ = 0, duplicates_ = 0, refused_ = 0;
  size_t max_queue_ = 0;
  std::thread worker_;
};

const char* kRoutes = R"(# The chaos suite's slow destination (tests/chaos/slow_destination.cc).
routes:
  - name: slow
    source:
      subject: chaos.slow.in.*
      jetstream: {stream: SLOW_SRC, durable: slow, ackWait: 30s, maxDeliver: 1000, backoff: [1s], batch: 64, maxAckPending: 1024}
    transform:
      - set: {routedBy: '"switchboard-chaos"'}
      - remove: [pad]
    destinations:
      - subject: 'chaos.slow.dst.{{ event.kind }}'
        jetstream: true
    deadLetter: {subject: chaos.dlq.slow}
)";


}  // namespace

bool run_slow_destination(const Options& o, Report& report) {
  const double slow_s = o.duration_s > 0 ? o.duration_s : default_duration("slow-destination", o.quick);
  const double produce_rate = o.rate > 0 ? o.rate : 250;
  const double slow_rate = 40;     // acknowledgements per second while slow ...
  const double stalled_rate = 8;   // ... and then slower than the publish timeout allows:
                                   // 64 in flight at 8/s wait 8 s for an answer
  WorkDir dir("slow");
  if (o.keep) dir.keep();
  report.set_work_dir(dir.path());
  NatsNode nats(dir.path(), "nats");
  router::NatsClient admin;
  if (!nats.start() || !connect_client(admin, nats.url(), "chaos-admin")) {
    report.violation("nats-server did not start");
    dir.keep();
    return false;
  }
  std::string error;
  for (const StreamConfig& s : {StreamConfig{"SLOW_SRC", {"chaos.slow.in.>"}}, StreamConfig{"SLOW_DST", {"chaos.slow.store.>"}},
                                StreamConfig{"SLOW_DLQ", {"chaos.dlq.>"}}}) {
    if (!add_stream(admin, s, error)) {
      report.violation(error);
      dir.keep();
      return false;
    }
  }
  SlowStream slow("chaos.slow.dst", "chaos.slow.store");
  if (!slow.start(nats.url(), error)) {
    report.violation(error);
    dir.keep();
    return false;
  }
  const std::string routes = dir.path() + "/routes.yaml";
  std::ofstream(routes) << kRoutes;
  RouterNode router(o.bin_dir + "/switchboard-router", "router-0",
                    {"--routes", routes, "--nats", nats.url(), "--name", "slow", "--namespace", "chaos", "--grace", "5s",
                     "--jetstream-max-inflight", std::to_string(kInflightLimit)},
                    dir.path() + "/router-0.log");
  router.start();
  if (!wait_until([&] { return router.ready(); }, 60) ||
      !wait_until([&] { return consumer_state(admin, "SLOW_SRC", "slow").has_value(); }, 60)) {
    report.violation("the router did not become ready (log " + router.log_path() + ")");
    dir.keep();
    return false;
  }

  JetStreamProducer::Config pc;
  pc.url = nats.url();
  pc.tag = "s";
  pc.subject_prefix = "chaos.slow.in";
  pc.seed = o.seed;
  pc.rate = produce_rate;
  pc.mixed = false;
  pc.pad = kPad;
  JetStreamProducer producer(pc);
  auto epoch = Clock::now();
  producer.start();

  // Warm up with a fast destination: the router's memory when it is busy and healthy.
  sleep_for(o.quick ? 4 : 8);
  int64_t rss_base = router.rss_kib();
  uint64_t produced_before_slow = producer.confirmed();

  // Slow: the backlog must grow in the source stream, not in the router.
  slow.set_rate(slow_rate);
  double slow_from = since(epoch);
  int64_t rss_peak = rss_base;
  int64_t ack_pending_peak = 0;
  uint64_t backlog_peak = 0, backlog_bytes_peak = 0;
  double inflight_max = 0, inflight_limit = 0;
  std::string rss_series = "[";
  auto sample = [&] {
    int64_t rss = router.rss_kib();
    rss_peak = std::max(rss_peak, rss);
    auto c = consumer_state(admin, "SLOW_SRC", "slow");
    auto src = stream_state(admin, "SLOW_SRC");
    if (c) {
      ack_pending_peak = std::max(ack_pending_peak, c->ack_pending);
      backlog_peak = std::max<uint64_t>(backlog_peak, c->pending);
      if (src && src->msgs > 0) {
        backlog_bytes_peak = std::max<uint64_t>(backlog_bytes_peak, src->bytes / src->msgs * c->pending);
      }
    }
    return std::make_pair(rss, c ? c->pending : 0);
  };
  int tick = 0;
  bool stalled = false;
  while (!interrupted() && since(epoch) < slow_from + slow_s) {
    if (!stalled && since(epoch) >= slow_from + slow_s * 0.6) {
      slow.set_rate(stalled_rate);
      stalled = true;
    }
    auto [rss, pending] = sample();
    if (tick++ % 4 == 0) {
      rss_series += (rss_series.size() > 1 ? "," : "") + std::string("[") + fmt("%.1f", since(epoch)) + "," +
                    std::to_string(rss) + "," + std::to_string(pending) + "]";
    }
    sleep_for(0.5);
  }
  rss_series += "]";
  uint64_t produced_in_slow = producer.confirmed() - produced_before_slow;
  std::string page = router.metrics();
  if (auto v = metric(page, "switchboard_router_jetstream_publish_inflight_max")) inflight_max = *v;
  if (auto v = metric(page, "switchboard_router_jetstream_publish_inflight_limit")) inflight_limit = *v;
  producer.stop();

  // Fast again: everything drains, once.
  slow.set_rate(0);
  double drain_from = since(epoch);
  bool drained = wait_until([&] {
    sample();
    auto c = consumer_state(admin, "SLOW_SRC", "slow");
    return c && c->pending == 0 && c->ack_pending == 0;
  }, o.quick ? 180 : 600);
  double drain_s = since(epoch) - drain_from;
  if (!drained) report.violation("the backlog did not drain within the time allowed");

  JetStreamRouteCheck check;
  check.source = "SLOW_SRC";
  check.destination = "SLOW_DST";
  check.dead_letters = "SLOW_DLQ";
  check.route = "slow";
  check.tag = "s";
  check.seed = o.seed;
  check.mixed = false;
  check.producer = &producer;
  account_jetstream_route(admin, check, report);

  // The bound: the router's memory may grow by what it holds by design (one batch, the
  // in-flight window, buffers), never by the backlog. 64 MiB is far above the first and, in
  // the full run, far below the second.
  const int64_t growth_bound_kib = 64 * 1024;
  int64_t growth = rss_peak - rss_base;
  SlowStream::Stats st = slow.stats();
  report.figure("memory", "{\"rssBaselineKiB\":" + std::to_string(rss_base) + ",\"rssPeakKiB\":" +
                              std::to_string(rss_peak) + ",\"growthKiB\":" + std::to_string(growth) +
                              ",\"growthBoundKiB\":" + std::to_string(growth_bound_kib) + "}");
  report.figure("backPressure",
                "{\"produceRate\":" + fmt("%.0f", produce_rate) + ",\"slowAckRate\":" + fmt("%.0f", slow_rate) +
                    ",\"stalledAckRate\":" + fmt("%.0f", stalled_rate) +
                    ",\"slowSeconds\":" + fmt("%.0f", slow_s) + ",\"producedWhileSlow\":" + std::to_string(produced_in_slow) +
                    ",\"backlogPeak\":" + std::to_string(backlog_peak) + ",\"backlogPeakBytes\":" +
                    std::to_string(backlog_bytes_peak) + ",\"ackPendingPeak\":" + std::to_string(ack_pending_peak) +
                    ",\"maxAckPending\":" + std::to_string(kMaxAckPending) + ",\"publishInflightMax\":" +
                    fmt("%.0f", inflight_max) + ",\"publishInflightLimit\":" + fmt("%.0f", inflight_limit) +
                    ",\"drainSeconds\":" + fmt("%.1f", drain_s) + "}");
  report.figure("slowStream", "{\"received\":" + std::to_string(st.received) + ",\"stored\":" +
                                  std::to_string(st.stored) + ",\"duplicatesDropped\":" + std::to_string(st.duplicates) +
                                  ",\"refused\":" + std::to_string(st.refused) + ",\"maxQueue\":" +
                                  std::to_string(st.max_queue) + "}");
  report.figure("rssSeries", rss_series);
  if (rss_base <= 0) report.violation("could not read the router's memory");
  if (growth > growth_bound_kib) {
    report.violation("router memory grew by " + std::to_string(growth / 1024) + " MiB while the destination was slow");
  }
  // Back pressure: most of what was produced while slow waited in the source stream. A
  // machine too busy to produce much faster than the slow destination acknowledges builds
  // no backlog worth the name: then the bound was not put to the test, which is said, but
  // nothing was broken.
  const double slow_capacity = slow_rate * slow_s * 0.6 + stalled_rate * slow_s * 0.4;
  if (static_cast<double>(produced_in_slow) < 2 * slow_capacity) {
    report.note("only " + std::to_string(produced_in_slow) + " events produced while slow (the destination could take " +
                fmt("%.0f", slow_capacity) + "): too little backlog to test the memory bound");
  } else if (backlog_peak * 4 < produced_in_slow) {
    report.violation("the backlog stayed small (" + std::to_string(backlog_peak) + " of " +
                     std::to_string(produced_in_slow) + "): the router took in what the destination could not take");
  }
  if (inflight_limit > 0 && inflight_max > inflight_limit) {
    report.violation("publishes in flight reached " + fmt("%.0f", inflight_max) + ", over the limit " +
                     fmt("%.0f", inflight_limit));
  }
  if (ack_pending_peak > kMaxAckPending) {
    report.violation("ack pending reached " + std::to_string(ack_pending_peak) + ", over maxAckPending");
  }
  slow.stop();
  if (router.died()) report.violation("the router died on its own (" + router.death_notice() + ")");
  int64_t took = 0;
  int status = router.stop(SIGTERM, 15000, took);
  if (status != 0) report.violation("the router exited " + std::to_string(status) + " on SIGTERM");
  if (!report.passed()) dir.keep();
  return report.passed();
}

}  // namespace switchboard::chaos
