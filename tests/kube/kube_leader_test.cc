// Leader election on a real Lease, with short durations (lease 2 s, renew deadline 1.5 s,
// retry 0.3 s): one of two electors leads; stop() releases so the other takes over at
// once; a leader killed without a word is replaced once its lease expires; a leader that
// cannot renew steps down.
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <mutex>

#include "kube/leader.h"
#include "tests/kube/kube_test.h"
#include "tests/support/process.h"

namespace switchboard::kube::testing {
namespace {

using namespace std::chrono_literals;

LeaderElectionConfig short_lease(const std::string& ns, const std::string& identity) {
  return LeaderElectionConfig{ns, "switchboard-controller", identity, 2000ms, 1500ms, 300ms};
}

struct Calls {
  std::atomic<int> started{0};
  std::atomic<int> stopped{0};
  std::function<void()> on_started() {
    return [this] { ++started; };
  }
  std::function<void()> on_stopped() {
    return [this] { ++stopped; };
  }
};

class LeaderTest : public KubeTest {
 protected:
  Object lease() { return client().get(resources::kLeases, ns_, "switchboard-controller"); }
  std::string lease_holder() {
    try {
      return lease()["spec"]["holderIdentity"].as_string();
    } catch (const ApiError&) {
      return "";
    }
  }
  int64_t lease_transitions() { return lease()["spec"]["leaseTransitions"].as_number().to_int64(); }
};

TEST_F(LeaderTest, OneOfTwoLeadsAndStopHandsOverAtOnce) {
  auto client_a = make_client(config_);
  auto client_b = make_client(config_);
  Calls calls_a, calls_b;
  auto a = std::make_unique<LeaderElector>(*client_a, short_lease(ns_, "a"), calls_a.on_started(), calls_a.on_stopped());
  auto b = std::make_unique<LeaderElector>(*client_b, short_lease(ns_, "b"), calls_b.on_started(), calls_b.on_stopped());
  a->start();
  b->start();
  ASSERT_TRUE(eventually([&] { return a->leading() || b->leading(); }));
  // Never both, sampled over a few renewals.
  for (int i = 0; i < 100; ++i) {
    ASSERT_FALSE(a->leading() && b->leading());
    std::this_thread::sleep_for(20ms);
  }
  const bool a_leads = a->leading();
  auto& leader = a_leads ? a : b;
  auto& follower = a_leads ? b : a;
  Calls& leader_calls = a_leads ? calls_a : calls_b;
  const std::string leader_id = a_leads ? "a" : "b";
  const std::string follower_id = a_leads ? "b" : "a";
  EXPECT_EQ(lease_holder(), leader_id);
  EXPECT_EQ(follower->holder(), leader_id);
  Object held = lease();
  EXPECT_EQ(held["spec"]["leaseDurationSeconds"].as_integer(), 2);
  EXPECT_EQ(held["spec"]["renewTime"].as_string().size(), std::string("2006-01-02T15:04:05.000000Z").size());
  const int64_t transitions = lease_transitions();

  leader->stop();
  EXPECT_FALSE(leader->leading());
  EXPECT_EQ(leader_calls.started, 1);
  EXPECT_EQ(leader_calls.stopped, 1);
  // Released on the way out: the lease is free (or already the follower's), so the
  // follower need not wait for it to expire.
  const std::string after = lease_holder();
  EXPECT_TRUE(after.empty() || after == follower_id) << after;
  ASSERT_TRUE(eventually([&] { return follower->leading(); }));
  EXPECT_EQ(lease_holder(), follower_id);
  EXPECT_EQ(lease_transitions(), transitions + 1);
  follower->stop();
  EXPECT_EQ(lease_holder(), "");
}

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST_F(LeaderTest, KilledLeaderIsReplacedAfterItsLeaseExpires) {
  // The leader is another process (this binary in its elector role), so that it can die
  // the hard way: SIGKILL, no release.
  switchboard::testing::Process child(
      {self_exe()}, {"SWITCHBOARD_KUBE_TEST_ELECTOR=" + cp().kubeconfig() + "\n" + ns_ + "\nswitchboard-controller\nchild"},
      "/dev/null");
  ASSERT_TRUE(eventually([&] { return lease_holder() == "child"; }));

  Calls calls;
  LeaderElector survivor(client(), short_lease(ns_, "survivor"), calls.on_started(), calls.on_stopped());
  survivor.start();
  // While the child renews, the survivor only watches.
  for (int i = 0; i < 50; ++i) {
    ASSERT_FALSE(survivor.leading());
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(survivor.holder(), "child");
  const int64_t transitions = lease_transitions();

  child.signal(SIGKILL);
  child.wait(10000);
  EXPECT_EQ(lease_holder(), "child");  // never released
  ASSERT_TRUE(eventually([&] { return survivor.leading(); }));
  EXPECT_EQ(lease_holder(), "survivor");
  EXPECT_EQ(lease_transitions(), transitions + 1);
  EXPECT_EQ(calls.started, 1);
  survivor.stop();
  EXPECT_EQ(calls.stopped, 1);
}

// Forwards to a real client until the test cuts it off; then every call fails as an
// unreachable server would.
class CuttableClient : public Client {
 public:
  explicit CuttableClient(Client& real) : real_(real) {}
  std::atomic<bool> cut{false};

  Object get(const Resource& r, const std::string& ns, const std::string& name) override {
    check();
    return real_.get(r, ns, name);
  }
  ObjectList list(const Resource& r, const std::string& ns, const ListOptions& o) override {
    check();
    return real_.list(r, ns, o);
  }
  std::string watch(const Resource& r, const std::string& ns, const ListOptions& o, const std::string& rv,
                    const std::function<WatchControl(const WatchEvent&)>& f, const std::atomic<bool>& s) override {
    check();
    return real_.watch(r, ns, o, rv, f, s);
  }
  Object apply(const Resource& r, const Object& o) override {
    check();
    return real_.apply(r, o);
  }
  Object apply_status(const Resource& r, const Object& o) override {
    check();
    return real_.apply_status(r, o);
  }
  Object replace_status(const Resource& r, const Object& o) override {
    check();
    return real_.replace_status(r, o);
  }
  Object replace(const Resource& r, const Object& o) override {
    check();
    return real_.replace(r, o);
  }
  Object merge_patch(const Resource& r, const std::string& ns, const std::string& n, const Object& p) override {
    check();
    return real_.merge_patch(r, ns, n, p);
  }
  Object create(const Resource& r, const std::string& ns, const Object& o) override {
    check();
    return real_.create(r, ns, o);
  }
  bool remove(const Resource& r, const std::string& ns, const std::string& n, Propagation p) override {
    check();
    return real_.remove(r, ns, n, p);
  }
  Object create_subresource(const Resource& r, const std::string& ns, const std::string& n, const std::string& s,
                            const Object& b) override {
    check();
    return real_.create_subresource(r, ns, n, s, b);
  }

 private:
  void check() {
    if (cut) throw ApiError(0, "", "connection refused (cut by the test)");
  }
  Client& real_;
};

TEST_F(LeaderTest, LeaderThatCannotRenewStepsDown) {
  CuttableClient cuttable(client());
  Calls calls_a, calls_b;
  LeaderElector a(cuttable, short_lease(ns_, "a"), calls_a.on_started(), calls_a.on_stopped());
  a.start();
  ASSERT_TRUE(eventually([&] { return a.leading(); }));
  auto client_b = make_client(config_);
  LeaderElector b(*client_b, short_lease(ns_, "b"), calls_b.on_started(), calls_b.on_stopped());
  b.start();

  EXPECT_TRUE(a.holds_lease());
  EXPECT_FALSE(b.holds_lease());
  cuttable.cut = true;
  const auto cut_at = std::chrono::steady_clock::now();
  // What writers check: false once the last renewal is older than the renew deadline
  // (1.5 s), whether or not the elector's thread has noticed yet.
  ASSERT_TRUE(eventually([&] { return !a.holds_lease(); }));
  EXPECT_LT(std::chrono::steady_clock::now() - cut_at, 1500ms + 1000ms);
  // a gives up after its renew deadline; b takes over once the lease it last saw
  // renewed has expired.
  ASSERT_TRUE(eventually([&] { return !a.leading() && calls_a.stopped == 1; }));
  ASSERT_TRUE(eventually([&] { return b.leading(); }));
  EXPECT_EQ(lease_holder(), "b");
  EXPECT_TRUE(b.holds_lease());
  EXPECT_FALSE(a.holds_lease());

  // Back on the network, a is a candidate again and finds the lease taken.
  cuttable.cut = false;
  for (int i = 0; i < 50; ++i) {
    ASSERT_FALSE(a.leading());
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(a.holder(), "b");
  EXPECT_EQ(calls_a.started, 1);
  a.stop();
  EXPECT_EQ(calls_a.stopped, 1);  // not again: it was not leading
  b.stop();
}

}  // namespace
}  // namespace switchboard::kube::testing
