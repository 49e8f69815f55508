// The real Client against a scripted HTTP server on loopback (cpprest's listener): what
// it sends (methods, content types, query, bodies, the bearer token) and how it reads
// answers that a healthy kube-apiserver rarely gives on cue (410 as an HTTP status, an
// expired continue token, a stream that stays silent, an event split across chunks).
// The same behaviour against a real kube-apiserver is in tests/kube/.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

#include <cpprest/http_listener.h>
#include <cpprest/producerconsumerstream.h>

#include "kube/client.h"
#include "tests/kube/fake_client.h"
#include "tests/support/process.h"

namespace switchboard::kube {
namespace {

using testing::eventually;
using web::http::http_request;
using web::http::http_response;
using web::http::experimental::listener::http_listener;

struct Seen {
  std::string method;
  std::string path;
  std::map<std::string, std::string> query;
  std::string content_type;
  std::string authorization;
  std::string body;
};

class FakeApiServer {
 public:
  // The handler answers; the request has already been recorded, body included.
  using Handler = std::function<void(http_request&, const Seen&)>;

  explicit FakeApiServer(Handler handler)
      : port_(switchboard::testing::free_port()),
        listener_("http://127.0.0.1:" + std::to_string(port_) + "/"),
        handler_(std::move(handler)) {
    listener_.support([this](http_request req) {
      Seen s;
      s.method = req.method();
      s.path = req.relative_uri().path();
      for (const auto& [k, v] : web::uri::split_query(req.relative_uri().query())) {
        s.query[k] = web::uri::decode(v);
      }
      if (req.headers().has("Content-Type")) s.content_type = req.headers()["Content-Type"];
      if (req.headers().has("Authorization")) s.authorization = req.headers()["Authorization"];
      s.body = req.extract_utf8string(true).get();
      {
        std::lock_guard lock(mu_);
        seen_.push_back(s);
      }
      handler_(req, s);
    });
    listener_.open().wait();
  }
  ~FakeApiServer() { listener_.close().wait(); }

  Config config() const {
    Config c;
    c.server = "http://127.0.0.1:" + std::to_string(port_);
    c.timeout_ms = 10000;
    return c;
  }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  int port_;
  http_listener listener_;
  Handler handler_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

void reply_json(http_request& req, int status, const std::string& body) {
  http_response resp(static_cast<web::http::status_code>(status));
  resp.set_body(body, "application/json");
  req.reply(resp).wait();
}

const char* kStatus410 =
    R"json({"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 5 (90)","reason":"Expired","code":410})json";

// A streamed (chunked) response the test writes into as it goes.
struct Stream {
  concurrency::streams::producer_consumer_buffer<uint8_t> buf;
  void write(const std::string& s) {
    buf.putn_nocopy(reinterpret_cast<const uint8_t*>(s.data()), s.size()).wait();
    buf.sync().wait();
  }
  void close() { buf.close(std::ios_base::out).wait(); }
};

void reply_stream(http_request& req, Stream& stream) {
  http_response resp(200);
  resp.set_body(stream.buf.create_istream(), "application/json");
  req.reply(resp);
}

std::string event(const std::string& type, const std::string& name, const std::string& rv) {
  return R"({"type":")" + type + R"(","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":")" + name +
         R"(","namespace":"ns","resourceVersion":")" + rv + R"("}}})" + "\n";
}

TEST(KubeClientHttp, WatchSendsTheWatchQuery) {
  FakeApiServer server([](http_request& req, const Seen&) {
    reply_json(req, 200, event("ADDED", "a", "8"));  // a whole stream in one body
  });
  auto client = make_client(server.config(), ClientOptions{.watch_timeout = std::chrono::seconds(42)});
  std::atomic<bool> stop{false};
  ListOptions opts;
  opts.label_selector = "app in (a,b),tier=web";
  std::vector<std::string> names;
  std::string rv = client->watch(resources::kConfigMaps, "ns", opts, "7",
                                 [&](const WatchEvent& ev) {
                                   names.push_back(name_of(ev.object));
                                   return WatchControl::Continue;
                                 },
                                 stop);
  EXPECT_EQ(rv, "8");
  EXPECT_EQ(names, std::vector<std::string>{"a"});
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].path, "/api/v1/namespaces/ns/configmaps");
  EXPECT_EQ(seen[0].query["watch"], "true");
  EXPECT_EQ(seen[0].query["allowWatchBookmarks"], "true");
  EXPECT_EQ(seen[0].query["resourceVersion"], "7");
  EXPECT_EQ(seen[0].query["timeoutSeconds"], "42");
  EXPECT_EQ(seen[0].query["labelSelector"], "app in (a,b),tier=web");
}

TEST(KubeClientHttp, WatchAnswered410IsGone) {
  FakeApiServer server([](http_request& req, const Seen&) { reply_json(req, 410, kStatus410); });
  auto client = make_client(server.config());
  std::atomic<bool> stop{false};
  try {
    client->watch(resources::kConfigMaps, "ns", {}, "5", [](const WatchEvent&) { return WatchControl::Continue; },
                  stop);
    ADD_FAILURE() << "no ApiError";
  } catch (const ApiError& e) {
    EXPECT_TRUE(e.gone());
    EXPECT_EQ(e.reason(), "Expired");
    EXPECT_EQ(e.message(), "too old resource version: 5 (90)");
  }
}

TEST(KubeClientHttp, WatchReadsEventsAsTheyArriveEvenSplitAcrossChunks) {
  Stream stream;
  std::promise<void> connected;
  FakeApiServer server([&](http_request& req, const Seen&) {
    reply_stream(req, stream);
    connected.set_value();
  });
  auto client = make_client(server.config());
  std::atomic<bool> stop{false};
  std::atomic<int> received{0};
  std::vector<WatchEvent> events;
  auto watch = std::async(std::launch::async, [&] {
    return client->watch(resources::kConfigMaps, "ns", {}, "1",
                         [&](const WatchEvent& ev) {
                           events.push_back(ev);
                           ++received;
                           return WatchControl::Continue;
                         },
                         stop);
  });
  connected.get_future().wait();
  stream.write(event("ADDED", "a", "2"));
  // The first event is handed over before the second is even written.
  ASSERT_TRUE(eventually([&] { return received == 1; }));
  const std::string second = event("MODIFIED", "a", "3");
  stream.write(second.substr(0, 20));
  stream.write(second.substr(20));
  stream.write(R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"9"}}})"
               "\n");
  stream.write(event("DELETED", "a", "10"));
  stream.close();  // the server ends the stream
  EXPECT_EQ(watch.get(), "10");
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].type, WatchEvent::Type::Added);
  EXPECT_EQ(events[1].type, WatchEvent::Type::Modified);
  EXPECT_EQ(events[2].type, WatchEvent::Type::Bookmark);
  EXPECT_EQ(events[3].type, WatchEvent::Type::Deleted);
  EXPECT_EQ(resource_version_of(events[1].object), "3");
}

TEST(KubeClientHttp, WatchErrorEventWith410IsGone) {
  Stream stream;
  FakeApiServer server([&](http_request& req, const Seen&) {
    reply_stream(req, stream);
    stream.write(event("ADDED", "a", "2"));
    stream.write(std::string(R"({"type":"ERROR","object":)") + kStatus410 + "}\n");
  });
  auto client = make_client(server.config());
  std::atomic<bool> stop{false};
  int added = 0;
  try {
    client->watch(resources::kConfigMaps, "ns", {}, "1",
                  [&](const WatchEvent&) {
                    ++added;
                    return WatchControl::Continue;
                  },
                  stop);
    ADD_FAILURE() << "no ApiError";
  } catch (const ApiError& e) {
    EXPECT_TRUE(e.gone());
    EXPECT_EQ(e.reason(), "Expired");
  }
  EXPECT_EQ(added, 1);
  stream.close();
}

TEST(KubeClientHttp, WatchStopDoesNotWaitForTheServer) {
  Stream stream;  // headers, then silence
  std::promise<void> connected;
  FakeApiServer server([&](http_request& req, const Seen&) {
    reply_stream(req, stream);
    connected.set_value();
  });
  auto client = make_client(server.config());
  std::atomic<bool> stop{false};
  auto watch = std::async(std::launch::async, [&] {
    return client->watch(resources::kConfigMaps, "ns", {}, "5", [](const WatchEvent&) { return WatchControl::Continue; },
                         stop);
  });
  connected.get_future().wait();
  stop = true;
  // Returns although the server never sends a byte more (the test would time out).
  EXPECT_EQ(watch.get(), "5");
  stream.close();
}

TEST(KubeClientHttp, WatchCallbackCanStopIt) {
  Stream stream;
  FakeApiServer server([&](http_request& req, const Seen&) {
    reply_stream(req, stream);
    stream.write(event("ADDED", "a", "2"));
    stream.write(event("ADDED", "b", "3"));
  });
  auto client = make_client(server.config());
  std::atomic<bool> stop{false};
  int calls = 0;
  std::string rv = client->watch(resources::kConfigMaps, "ns", {}, "1",
                                 [&](const WatchEvent&) {
                                   ++calls;
                                   return WatchControl::Stop;
                                 },
                                 stop);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(rv, "2");
  stream.close();
}

TEST(KubeClientHttp, ListFollowsContinueAndRestartsWhenTheTokenExpired) {
  FakeApiServer server([](http_request& req, const Seen& s) {
    auto cont = s.query.find("continue");
    if (s.query.count("limit") && cont == s.query.end()) {
      reply_json(req, 200,
                 R"({"kind":"ConfigMapList","metadata":{"resourceVersion":"50","continue":"t1"},"items":[{"metadata":{"name":"a"}}]})");
    } else if (cont != s.query.end() && cont->second == "t1") {
      reply_json(req, 200,
                 R"({"kind":"ConfigMapList","metadata":{"resourceVersion":"50","continue":"t2"},"items":[{"metadata":{"name":"b"}}]})");
    } else if (cont != s.query.end()) {
      reply_json(req, 410,
                 R"({"kind":"Status","code":410,"reason":"Expired","message":"The provided continue parameter is too old"})");
    } else {  // no limit: everything at once
      reply_json(req, 200,
                 R"({"kind":"ConfigMapList","metadata":{"resourceVersion":"60"},"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}},{"metadata":{"name":"c"}}]})");
    }
  });
  auto client = make_client(server.config());
  ListOptions opts;
  opts.limit = 1;
  ObjectList list = client->list(resources::kConfigMaps, "ns", opts);
  ASSERT_EQ(list.items.size(), 3u);
  EXPECT_EQ(list.resource_version, "60");
  EXPECT_EQ(list.items[2]["kind"].as_string(), "ConfigMap");  // filled in
  EXPECT_EQ(list.items[2]["apiVersion"].as_string(), "v1");
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].query["limit"], "1");
  EXPECT_EQ(seen[1].query["continue"], "t1");
  EXPECT_EQ(seen[2].query["continue"], "t2");
  EXPECT_EQ(seen[3].query.count("limit"), 0u);
}

TEST(KubeClientHttp, WritesUseTheRightMethodsAndContentTypes) {
  FakeApiServer server([](http_request& req, const Seen& s) {
    if (s.method == "DELETE" && s.path.ends_with("/missing")) {
      reply_json(req, 404, R"({"kind":"Status","code":404,"reason":"NotFound","message":"configmaps \"missing\" not found"})");
      return;
    }
    reply_json(req, 200, s.body.empty() ? "{}" : s.body);
  });
  auto client = make_client(server.config());
  Object cm = Object::parse(R"({"metadata":{"name":"a","namespace":"ns"},"data":{"k":"v"}})");
  client->apply(resources::kConfigMaps, cm);
  client->apply_status(resources::kEventRoutes, cm);
  client->replace_status(resources::kEventRoutes, cm);
  client->replace(resources::kLeases, cm);
  client->merge_patch(resources::kConfigMaps, "ns", "a", Object::parse(R"({"metadata":{"finalizers":null}})"));
  client->create(resources::kConfigMaps, "ns", cm);
  EXPECT_TRUE(client->remove(resources::kConfigMaps, "ns", "a", Propagation::Foreground));
  EXPECT_FALSE(client->remove(resources::kConfigMaps, "ns", "missing"));
  client->create_subresource(resources::kServiceAccounts, "ns", "robot", "token", Object::parse(R"({"spec":{}})"));

  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 9u);
  // Server-side apply.
  EXPECT_EQ(seen[0].method, "PATCH");
  EXPECT_EQ(seen[0].path, "/api/v1/namespaces/ns/configmaps/a");
  EXPECT_EQ(seen[0].content_type, "application/apply-patch+yaml");
  EXPECT_EQ(seen[0].query["fieldManager"], "switchboard");
  EXPECT_EQ(seen[0].query["force"], "true");
  Object applied = Object::parse(seen[0].body);
  EXPECT_EQ(applied["apiVersion"].as_string(), "v1");  // filled from the resource
  EXPECT_EQ(applied["kind"].as_string(), "ConfigMap");
  EXPECT_EQ(applied["data"]["k"].as_string(), "v");
  EXPECT_EQ(seen[1].path, "/apis/switchboard.dev/v1alpha1/namespaces/ns/eventroutes/a/status");
  EXPECT_EQ(seen[1].content_type, "application/apply-patch+yaml");
  EXPECT_EQ(Object::parse(seen[1].body)["kind"].as_string(), "EventRoute");
  // Replace.
  EXPECT_EQ(seen[2].method, "PUT");
  EXPECT_EQ(seen[2].path, "/apis/switchboard.dev/v1alpha1/namespaces/ns/eventroutes/a/status");
  EXPECT_EQ(seen[3].method, "PUT");
  EXPECT_EQ(seen[3].path, "/apis/coordination.k8s.io/v1/namespaces/ns/leases/a");
  // Merge patch.
  EXPECT_EQ(seen[4].method, "PATCH");
  EXPECT_EQ(seen[4].content_type, "application/merge-patch+json");
  EXPECT_TRUE(Object::parse(seen[4].body)["metadata"]["finalizers"].is_null());
  // Create.
  EXPECT_EQ(seen[5].method, "POST");
  EXPECT_EQ(seen[5].path, "/api/v1/namespaces/ns/configmaps");
  // Delete with DeleteOptions.
  EXPECT_EQ(seen[6].method, "DELETE");
  Object del = Object::parse(seen[6].body);
  EXPECT_EQ(del["kind"].as_string(), "DeleteOptions");
  EXPECT_EQ(del["propagationPolicy"].as_string(), "Foreground");
  EXPECT_EQ(Object::parse(seen[7].body)["propagationPolicy"].as_string(), "Background");
  // Subresource.
  EXPECT_EQ(seen[8].method, "POST");
  EXPECT_EQ(seen[8].path, "/api/v1/namespaces/ns/serviceaccounts/robot/token");
}

TEST(KubeClientHttp, ErrorsCarryStatusReasonAndMessage) {
  FakeApiServer server([](http_request& req, const Seen& s) {
    if (s.path.ends_with("/invalid")) {
      reply_json(req, 422,
                 R"({"kind":"Status","code":422,"reason":"Invalid","message":"ConfigMap \"A_b\" is invalid: metadata.name: Invalid value"})");
    } else {
      http_response resp(502);
      resp.set_body("<html>bad gateway</html>", "text/html");
      req.reply(resp).wait();
    }
  });
  auto client = make_client(server.config());
  try {
    client->get(resources::kConfigMaps, "ns", "invalid");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 422);
    EXPECT_EQ(e.reason(), "Invalid");
    EXPECT_EQ(e.message(), "ConfigMap \"A_b\" is invalid: metadata.name: Invalid value");
    EXPECT_FALSE(e.transient());
  }
  try {
    client->get(resources::kConfigMaps, "ns", "proxy");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 502);
    EXPECT_NE(e.message().find("bad gateway"), std::string::npos);
    EXPECT_TRUE(e.transient());
  }
}

TEST(KubeClientHttp, NothingListeningIsATransportError) {
  Config cfg;
  const int port = switchboard::testing::free_port();
  cfg.server = "http://127.0.0.1:" + std::to_string(port);
  auto client = make_client(cfg);
  try {
    client->get(resources::kConfigMaps, "ns", "a");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 0);
    EXPECT_TRUE(e.transient());
    EXPECT_NE(e.message().find("127.0.0.1:" + std::to_string(port)), std::string::npos) << e.message();
  }
  std::atomic<bool> stop{false};
  EXPECT_THROW(client->watch(resources::kConfigMaps, "ns", {}, "1",
                             [](const WatchEvent&) { return WatchControl::Continue; }, stop),
               ApiError);
}

TEST(KubeClientHttp, TokenFileIsReadAgainWhenItChanges) {
  FakeApiServer server([](http_request& req, const Seen&) { reply_json(req, 200, "{}"); });
  char tmpl[] = "/tmp/switchboard-token-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string token_file = dir + "/token";
  auto write_token = [&](const std::string& t) {
    // As the kubelet does: a new file moved into place.
    std::ofstream(dir + "/token.new") << t << "\n";
    std::filesystem::rename(dir + "/token.new", token_file);
  };
  write_token("first");
  Config cfg = server.config();
  cfg.token_file = token_file;
  auto client = make_client(cfg);
  client->get(resources::kConfigMaps, "ns", "a");
  client->get(resources::kConfigMaps, "ns", "a");
  write_token("second");
  client->get(resources::kConfigMaps, "ns", "a");
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].authorization, "Bearer first");
  EXPECT_EQ(seen[1].authorization, "Bearer first");
  EXPECT_EQ(seen[2].authorization, "Bearer second");
  std::filesystem::remove_all(dir);
}

TEST(KubeClientHttp, BadConfigurationIsAConfigError) {
  Config cfg;
  EXPECT_THROW(make_client(cfg), ConfigError);  // no server
  cfg.server = "127.0.0.1:6443";
  EXPECT_THROW(make_client(cfg), ConfigError);
  cfg.server = "https://127.0.0.1:6443";
  cfg.ca_pem = "not a certificate";
  EXPECT_THROW(make_client(cfg), ConfigError);
  cfg.ca_pem.clear();
  cfg.client_cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  EXPECT_THROW(make_client(cfg), ConfigError);  // no key
}

}  // namespace
}  // namespace switchboard::kube
