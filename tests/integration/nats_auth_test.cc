// NatsClient against nats-server set up for each way of authenticating: user/password,
// token, TLS (server verification, client certificates), NKeys, JWT creds files (the
// server in operator mode); and the router binary, which must never write a credential to
// its log, and which recovers from credentials rotated under it. Everything runs on
// 127.0.0.1; keys, JWTs and certificates are made fresh in a temporary folder.
#include <openssl/evp.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "router/nats_client.h"
#include "tests/support/files.h"
#include "tests/support/http_probe.h"
#include "tests/support/nats_credentials.h"
#include "tests/support/process.h"
#include "tests/support/test_certificates.h"

namespace switchboard::router {
namespace {

using testing::eventually;
using testing::read_file;
using testing::write_file;

using namespace std::chrono_literals;

NatsConfig config_for(const testing::NatsServer& server) {
  NatsConfig cfg;
  cfg.urls = {server.url()};
  cfg.name = "nats-auth-test";
  cfg.reconnect_wait_ms = 50;
  cfg.reconnect_jitter_ms = 50;
  return cfg;
}

// A message there and back on the connection: proves the server let the client in.
bool round_trip(NatsClient& nc) {
  std::mutex mu;
  std::condition_variable cv;
  bool got = false;
  std::string error;
  uint64_t id = nc.subscribe("auth.ping", "", [&](const NatsMessage&) {
    std::lock_guard lock(mu);
    got = true;
    cv.notify_all();
  }, error);
  if (id == 0) return false;
  bool ok = nc.flush(5000) && nc.publish("auth.ping", {}, "ping", error) && nc.flush(5000);
  {
    std::unique_lock lock(mu);
    ok = ok && cv.wait_for(lock, 5s, [&] { return got; });
  }
  nc.unsubscribe(id);
  return ok;
}

// A client that must not get in. With a `reason`, connect() must fail at once and say so.
// Without one, the server tells the client nothing (it hangs up right after the TLS
// handshake, which looks like any dropped connection and is retried), so the connection
// must just never come up.
void expect_refused(const NatsConfig& cfg, const std::string& reason) {
  NatsClient nc;
  std::string error;
  bool started = nc.connect(cfg, error);
  if (!reason.empty()) {
    EXPECT_FALSE(started) << "connect() hid the refusal (" << reason << ")";
    EXPECT_NE(error.find(reason), std::string::npos) << error;
    return;
  }
  if (!started) return;
  auto deadline = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < deadline) {
    ASSERT_FALSE(nc.connected()) << "a refused client got in";
    std::this_thread::sleep_for(50ms);
  }
}

// --- NKeys ---------------------------------------------------------------------------
// Made with OpenSSL by tests/support/nats_credentials.h.

using testing::make_nkey;
using testing::NKey;
using testing::NKeyType;

// The generator checked on its own, against cnats' decoder and OpenSSL's verifier, so a
// failure of the server tests below is not a failure of the test's own key format.
TEST(NKeyGenerator, SeedsSignWhatTheirPublicKeyVerifies) {
  NKey k = make_nkey(NKeyType::User);
  ASSERT_EQ(k.public_key.size(), 56u);
  ASSERT_EQ(k.seed.size(), 58u);
  EXPECT_EQ(k.public_key[0], 'U');
  EXPECT_EQ(k.seed.substr(0, 2), "SU");
  unsigned char* sig = nullptr;
  int sig_len = 0;
  // cnats builds its base32 tables when the library opens, which nothing else here does
  // when this test runs alone.
  ASSERT_EQ(nats_Open(-1), NATS_OK);
  ASSERT_EQ(nats_Sign(k.seed.c_str(), "nonce", &sig, &sig_len), NATS_OK) << nats_GetLastError(nullptr);
  EVP_PKEY* pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, k.raw_public.data(), 32);
  ASSERT_NE(pub, nullptr);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EXPECT_EQ(EVP_DigestVerifyInit(md, nullptr, nullptr, nullptr, pub), 1);
  EXPECT_EQ(EVP_DigestVerify(md, sig, static_cast<size_t>(sig_len), reinterpret_cast<const unsigned char*>("nonce"), 5),
            1);
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(pub);
  free(sig);
}

// --- Servers ------------------------------------------------------------------------------

class NatsAuthTest : public ::testing::Test {
 protected:
  // Certificates are slow-ish to make; one set serves every test.
  static void SetUpTestSuite() { certs_ = std::make_unique<testing::TestCertificates>(); }
  static void TearDownTestSuite() { certs_.reset(); }
  static std::string path(const std::string& name) { return certs_->path(name); }
  static std::string tls_block(bool verify_clients) { return certs_->nats_tls_block(verify_clients); }
  void SetUp() override {
    ASSERT_FALSE(certs_->dir().empty()) << "no temporary folder";
    cert_error_ = certs_->error();
  }

  static inline std::unique_ptr<testing::TestCertificates> certs_;
  std::string cert_error_;  // why the TLS tests cannot run, if they cannot
};

TEST_F(NatsAuthTest, UserAndPassword) {
  testing::NatsServer server(testing::NatsServer::Config{
      R"(authorization { user: "router", password: "pa55-word" })"});
  ASSERT_TRUE(server.ok());
  NatsConfig cfg = config_for(server);
  cfg.user = "router";
  cfg.password = "pa55-word";
  NatsClient nc;
  std::string error;
  ASSERT_TRUE(nc.connect(cfg, error)) << error;
  EXPECT_TRUE(nc.connected());
  EXPECT_TRUE(round_trip(nc));

  cfg.password = "wrong";
  expect_refused(cfg, "Authorization Violation");
  cfg.user.clear();
  cfg.password.clear();
  expect_refused(cfg, "Authorization Violation");
}

TEST_F(NatsAuthTest, Token) {
  testing::NatsServer server(testing::NatsServer::Config{R"(authorization { token: "t0ken-s3cret" })"});
  ASSERT_TRUE(server.ok());
  NatsConfig cfg = config_for(server);
  cfg.token = "t0ken-s3cret";
  NatsClient nc;
  std::string error;
  ASSERT_TRUE(nc.connect(cfg, error)) << error;
  EXPECT_TRUE(round_trip(nc));

  cfg.token = "not-the-token";
  expect_refused(cfg, "Authorization Violation");
}

TEST_F(NatsAuthTest, TlsWithServerVerification) {
  ASSERT_TRUE(cert_error_.empty()) << cert_error_;
  testing::NatsServer server(testing::NatsServer::Config{tls_block(false)});
  ASSERT_TRUE(server.ok()) << read_file(server.log_path());
  NatsConfig cfg = config_for(server);
  cfg.tls_ca_file = path("ca.pem");
  NatsClient nc;
  std::string error;
  ASSERT_TRUE(nc.connect(cfg, error)) << error << "\n" << read_file(server.log_path());
  EXPECT_TRUE(round_trip(nc));

  // A server certificate that the given CA did not sign.
  cfg.tls_ca_file = path("other-ca.pem");
  expect_refused(cfg, "SSL handshake error");
  // No TLS configured: cnats upgrades anyway when the server requires it, and verifies
  // against the system's CAs, which do not know this one.
  expect_refused(config_for(server), "SSL handshake error");
}

TEST_F(NatsAuthTest, TlsWithClientCertificates) {
  ASSERT_TRUE(cert_error_.empty()) << cert_error_;
  testing::NatsServer server(testing::NatsServer::Config{tls_block(true)});
  ASSERT_TRUE(server.ok()) << read_file(server.log_path());
  NatsConfig cfg = config_for(server);
  cfg.tls_ca_file = path("ca.pem");
  cfg.tls_cert_file = path("client.pem");
  cfg.tls_key_file = path("client.key");
  NatsClient nc;
  std::string error;
  ASSERT_TRUE(nc.connect(cfg, error)) << error << "\n" << read_file(server.log_path());
  EXPECT_TRUE(round_trip(nc));

  // Without a client certificate the server hangs up.
  NatsConfig no_cert = config_for(server);
  no_cert.tls_ca_file = path("ca.pem");
  expect_refused(no_cert, "");
  // A client certificate the server's CA did not sign (the server's own CA is trusted by
  // the client, so only the client side is wrong).
  NatsConfig wrong_cert = no_cert;
  wrong_cert.tls_cert_file = path("other-ca.pem");
  wrong_cert.tls_key_file = path("other-ca.key");
  expect_refused(wrong_cert, "");
  // A certificate file that does not exist is a configuration error, said at once.
  NatsConfig missing = cfg;
  missing.tls_cert_file = path("no-such.pem");
  NatsClient bad;
  EXPECT_FALSE(bad.connect(missing, error));
}

TEST_F(NatsAuthTest, NKeyFromSeed) {
  NKey allowed = make_nkey(NKeyType::User);
  NKey other = make_nkey(NKeyType::User);
  ASSERT_FALSE(allowed.seed.empty()) << "OpenSSL could not make an Ed25519 key";
  ASSERT_FALSE(other.seed.empty());
  testing::NatsServer server(testing::NatsServer::Config{
      "authorization { users = [ { nkey: \"" + allowed.public_key + "\" } ] }"});
  ASSERT_TRUE(server.ok()) << read_file(server.log_path());
  write_file(path("user.nk"), allowed.seed + "\n");
  write_file(path("user.nk.pub"), allowed.public_key + "\n");
  NatsConfig cfg = config_for(server);
  cfg.nkey_seed_file = path("user.nk");
  NatsClient nc;
  std::string error;
  ASSERT_TRUE(nc.connect(cfg, error)) << error << "\n" << read_file(server.log_path());
  EXPECT_TRUE(round_trip(nc));

  // The allowed public key, but signed with another seed: the server checks the signature.
  write_file(path("impostor.nk"), other.seed + "\n");
  write_file(path("impostor.nk.pub"), allowed.public_key + "\n");
  cfg.nkey_seed_file = path("impostor.nk");
  expect_refused(cfg, "Authorization Violation");
  // A seed without its ".pub" neighbour is a configuration error that names the file.
  write_file(path("lonely.nk"), allowed.seed + "\n");
  cfg.nkey_seed_file = path("lonely.nk");
  NatsClient lonely;
  EXPECT_FALSE(lonely.connect(cfg, error));
  EXPECT_NE(error.find(path("lonely.nk.pub")), std::string::npos) << error;
}

// --- The router binary and its credentials ------------------------------------------------

std::string router_binary() { return std::string(SWITCHBOARD_BIN_DIR) + "/switchboard-router"; }

constexpr const char* kRoutes = R"(routes:
  - name: copy
    source: {subject: in.>}
    destinations: [{subject: out.copy}]
)";
constexpr const char* kPassword = "Zq8-pw-unlikely-in-any-log-4711";

class RouterCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok()) << read_file(server_.log_path());
    char tmpl[] = "/tmp/switchboard-creds-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    write_file(dir_ + "/routes.yaml", kRoutes);
    write_file(dir_ + "/user", "router\n");
    write_file(dir_ + "/password", std::string(kPassword) + "\n");
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::vector<std::string> argv(const std::vector<std::string>& extra) const {
    std::vector<std::string> a = {router_binary(), "run", "--routes", dir_ + "/routes.yaml", "--nats", server_.url(),
                                  "--name", "creds", "--namespace", "test", "--pod", "creds-0", "--metrics-addr",
                                  "127.0.0.1:" + std::to_string(testing::free_port()), "--heartbeat", "200ms",
                                  "--grace", "2s", "--log-level", "debug"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  testing::NatsServer server_{testing::NatsServer::Config{std::string("authorization { user: \"router\", password: \"") +
                                                          kPassword + "\" }"}};
  std::string dir_;
};

TEST_F(RouterCredentialsTest, PasswordNeverReachesTheLog) {
  // A client with the same credentials hears the router's heartbeat: proof that the
  // router logged in with the password from the file.
  NatsConfig cfg = config_for(server_);
  cfg.user = "router";
  cfg.password = kPassword;
  NatsClient nc;
  std::string error;
  ASSERT_TRUE(nc.connect(cfg, error)) << error;
  std::mutex mu;
  std::condition_variable cv;
  int beats = 0;
  uint64_t id = nc.subscribe("switchboard.status.test.creds", "", [&](const NatsMessage&) {
    std::lock_guard lock(mu);
    ++beats;
    cv.notify_all();
  }, error);
  ASSERT_NE(id, 0u) << error;
  nc.flush(2000);

  const std::string log = dir_ + "/router.log";
  testing::Process router(argv({"--nats-user-file", dir_ + "/user", "--nats-password-file", dir_ + "/password"}), {},
                          log);
  {
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, 15s, [&] { return beats >= 2; })) << read_file(log);
  }
  nc.unsubscribe(id);
  EXPECT_EQ(router.stop(10000), 0);
  std::string text = read_file(log);
  // (The router has no debug lines today; --log-level debug is there for when it does.)
  EXPECT_NE(text.find("router started"), std::string::npos)
      << "the router logged nothing: the check below would prove nothing\n" << text;
  EXPECT_EQ(text.find(kPassword), std::string::npos) << text;
}

TEST_F(RouterCredentialsTest, WrongPasswordFailsFastWithoutEchoingIt) {
  const std::string log = dir_ + "/router.log";
  const std::string wrong = "wr0ng-" + std::string(kPassword);
  // Credentials from the environment this time.
  testing::Process router(argv({}), {"SWITCHBOARD_NATS_USER=router", "SWITCHBOARD_NATS_PASSWORD=" + wrong}, log);
  int status = router.wait(15000);
  std::string text = read_file(log);
  EXPECT_EQ(status, 1) << "a refused login must stop the router, not leave it retrying in silence\n" << text;
  EXPECT_NE(text.find("Authorization Violation"), std::string::npos) << text;
  EXPECT_EQ(text.find(wrong), std::string::npos) << text;
  EXPECT_EQ(text.find(kPassword), std::string::npos) << text;
}

TEST_F(RouterCredentialsTest, APasswordInTheUrlStaysOutOfTheLogAcrossAReconnect) {
  // cnats names the server it reconnected to by the URL it was given, user information
  // included, and the router logs that URL: it must come out redacted.
  const std::string url = "nats://router:" + std::string(kPassword) + "@127.0.0.1:" + std::to_string(server_.port());
  std::vector<std::string> a = argv({});
  *std::find(a.begin(), a.end(), server_.url()) = url;
  const std::string log = dir_ + "/router.log";
  testing::Process router(a, {}, log);
  ASSERT_TRUE(eventually([&] { return read_file(log).find("router started") != std::string::npos; }, 15s))
      << read_file(log);
  server_.restart();
  ASSERT_TRUE(server_.ready_on_its_port()) << read_file(server_.log_path());
  EXPECT_TRUE(eventually([&] { return read_file(log).find("NATS connection back") != std::string::npos; },
                                  20s))
      << read_file(log);
  EXPECT_EQ(router.stop(10000), 0);
  const std::string text = read_file(log);
  EXPECT_NE(text.find("nats://***@127.0.0.1:" + std::to_string(server_.port())), std::string::npos) << text;
  EXPECT_EQ(text.find(kPassword), std::string::npos) << text;
}

TEST(RedactUrlCredentials, HidesUserInformationAndNothingElse) {
  EXPECT_EQ(redact_url_credentials("nats://alice:s3cret@nats.example:4222"), "nats://***@nats.example:4222");
  EXPECT_EQ(redact_url_credentials("tls://tok3n@h:1"), "tls://***@h:1");
  EXPECT_EQ(redact_url_credentials("nats://a:b@h1:1,nats://h2:2,tls://c:d@h3:3"),
            "nats://***@h1:1,nats://h2:2,tls://***@h3:3");
  EXPECT_EQ(redact_url_credentials("connect to nats://u:p@h:4222 failed: refused"),
            "connect to nats://***@h:4222 failed: refused");
  // A password may hold '@' itself: everything up to the last one of the authority goes.
  EXPECT_EQ(redact_url_credentials("nats://u:p@ss@h:4222/x"), "nats://***@h:4222/x");
  // No user information, or an '@' outside the authority: unchanged.
  EXPECT_EQ(redact_url_credentials("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
  EXPECT_EQ(redact_url_credentials("http://h/path@x and mail a@b"), "http://h/path@x and mail a@b");
  EXPECT_EQ(redact_url_credentials(""), "");
  EXPECT_EQ(redact_url_credentials("nats://"), "nats://");
}

// --- JWT: operator mode -----------------------------------------------------------------

std::string base64url_decode(std::string_view in) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : in) {
    size_t v = kAlphabet.find(c);
    if (v == std::string::npos) return "";
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      out += static_cast<char>((buffer >> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return out;
}

std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

// The JWT maker checked on its own: the header names the NKey algorithm, the claims name
// issuer, subject and type, and the issuer's public key verifies the signature over the
// first two parts. (That nats-server accepts them is what the tests below show.)
TEST(NatsJwtGenerator, ClaimsSignedByTheIssuer) {
  NKey op = make_nkey(NKeyType::Operator);
  NKey account = make_nkey(NKeyType::Account);
  ASSERT_TRUE(op.ok() && account.ok());
  EXPECT_EQ(op.public_key[0], 'O');
  EXPECT_EQ(op.seed.substr(0, 2), "SO");
  EXPECT_EQ(account.public_key[0], 'A');
  EXPECT_EQ(account.seed.substr(0, 2), "SA");
  const std::string jwt = testing::account_jwt(op, account, "routing");
  std::vector<std::string> parts = split_dots(jwt);
  ASSERT_EQ(parts.size(), 3u) << jwt;
  EXPECT_EQ(base64url_decode(parts[0]), R"({"typ":"JWT","alg":"ed25519-nkey"})");
  const std::string claims = base64url_decode(parts[1]);
  EXPECT_NE(claims.find("\"iss\":\"" + op.public_key + "\""), std::string::npos) << claims;
  EXPECT_NE(claims.find("\"sub\":\"" + account.public_key + "\""), std::string::npos) << claims;
  EXPECT_NE(claims.find("\"type\":\"account\",\"version\":2"), std::string::npos) << claims;
  EXPECT_NE(claims.find("\"jti\":\""), std::string::npos) << claims;
  const std::string sig = base64url_decode(parts[2]);
  ASSERT_EQ(sig.size(), 64u);
  EVP_PKEY* pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, op.raw_public.data(), 32);
  ASSERT_NE(pub, nullptr);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  const std::string signed_part = parts[0] + "." + parts[1];
  EXPECT_EQ(EVP_DigestVerifyInit(md, nullptr, nullptr, nullptr, pub), 1);
  EXPECT_EQ(EVP_DigestVerify(md, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()),
            1);
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(pub);
}

// nats-server in operator mode: an operator JWT it trusts, one account JWT preloaded in a
// memory resolver, and creds files for users of that account.
class NatsJwtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/switchboard-jwt-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    op_ = make_nkey(NKeyType::Operator);
    account_ = make_nkey(NKeyType::Account);
    router_user_ = make_nkey(NKeyType::User);
    tester_user_ = make_nkey(NKeyType::User);
    ASSERT_TRUE(op_.ok() && account_.ok() && router_user_.ok() && tester_user_.ok()) << "OpenSSL made no key";
    write_file(path("operator.jwt"), testing::operator_jwt(op_, "switchboard-test"));
    // Debug logging: the server's log says why it refused a client (shown on failure).
    server_ = testing::start_nats_server(
        testing::NatsServer::Config{testing::operator_mode_config(
            path("operator.jwt"), {{account_.public_key, testing::account_jwt(op_, account_, "routing")}})},
        {"-D"});
    ASSERT_NE(server_, nullptr) << "nats-server did not start in operator mode";
    router_jwt_ = testing::user_jwt(account_, router_user_, "router");
    write_file(path("router.creds"), testing::creds_file(router_jwt_, router_user_.seed));
    write_file(path("tester.creds"),
               testing::creds_file(testing::user_jwt(account_, tester_user_, "tester"), tester_user_.seed));
  }
  void TearDown() override {
    if (HasFailure() && server_) std::cerr << "--- nats-server log ---\n" << read_file(server_->log_path());
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  NatsConfig config_with(const std::string& creds) const {
    NatsConfig cfg = config_for(*server_);
    cfg.creds_file = creds;
    return cfg;
  }
  // What of the router's credentials must never be seen outside its creds file.
  std::vector<std::string> secrets() const {
    std::vector<std::string> out = {router_user_.seed, router_jwt_};
    for (const auto& part : split_dots(router_jwt_)) out.push_back(part);
    return out;
  }

  std::string dir_;
  NKey op_, account_, router_user_, tester_user_;
  std::string router_jwt_;
  std::unique_ptr<testing::NatsServer> server_;
};

TEST_F(NatsJwtTest, CredsFileConnects) {
  NatsClient nc;
  std::string error;
  ASSERT_TRUE(nc.connect(config_with(path("router.creds")), error)) << error << "\n" << read_file(server_->log_path());
  EXPECT_TRUE(nc.connected());
  EXPECT_TRUE(round_trip(nc));
}

// cnats 3.4.1 leaves the nonce signature out of CONNECT when its first byte is zero, 1
// connection in 256 (NatsClient::open says more): good credentials must connect every time
// anyway. Without the retry, 800 connections pass with a chance of (255/256)^800, 4 %.
TEST_F(NatsJwtTest, EveryConnectionSucceedsThoughCnatsLeavesSomeSignaturesOut) {
  uint64_t retries = 0;
  for (int i = 0; i < 800; ++i) {
    NatsClient nc;
    std::string error;
    ASSERT_TRUE(nc.connect(config_with(path("router.creds")), error)) << "connection " << i << ": " << error;
    retries += nc.signature_retries();
  }
  std::cout << "connections made again for a left-out signature: " << retries << " of 800\n";
}

TEST_F(NatsAuthTest, EveryNKeyConnectionSucceedsThoughCnatsLeavesSomeSignaturesOut) {
  NKey user = make_nkey(NKeyType::User);
  ASSERT_FALSE(user.seed.empty());
  testing::NatsServer server(
      testing::NatsServer::Config{"authorization { users = [ { nkey: \"" + user.public_key + "\" } ] }"});
  ASSERT_TRUE(server.ok()) << read_file(server.log_path());
  write_file(path("user.nk"), user.seed + "\n");
  write_file(path("user.nk.pub"), user.public_key + "\n");
  NatsConfig cfg = config_for(server);
  cfg.nkey_seed_file = path("user.nk");
  uint64_t retries = 0;
  for (int i = 0; i < 800; ++i) {
    NatsClient nc;
    std::string error;
    ASSERT_TRUE(nc.connect(cfg, error)) << "connection " << i << ": " << error;
    retries += nc.signature_retries();
  }
  std::cout << "connections made again for a left-out signature: " << retries << " of 800\n";
}

TEST_F(NatsJwtTest, CredentialsTheServerDoesNotTrustAreRefused) {
  // A user of an account the operator never signed for the server.
  NKey stranger_account = make_nkey(NKeyType::Account);
  NKey stranger = make_nkey(NKeyType::User);
  write_file(path("stranger.creds"),
             testing::creds_file(testing::user_jwt(stranger_account, stranger, "stranger"), stranger.seed));
  expect_refused(config_with(path("stranger.creds")), "Authorization Violation");
  // The right JWT with another user's seed: the nonce signature does not match.
  write_file(path("impostor.creds"), testing::creds_file(router_jwt_, tester_user_.seed));
  expect_refused(config_with(path("impostor.creds")), "Authorization Violation");
  // Claims edited after signing.
  std::vector<std::string> parts = split_dots(router_jwt_);
  std::string claims = base64url_decode(parts[1]);
  claims.replace(claims.find("\"router\""), 8, "\"admin_\"");
  write_file(path("tampered.creds"),
             testing::creds_file(parts[0] + "." + testing::base64url(claims) + "." + parts[2], router_user_.seed));
  expect_refused(config_with(path("tampered.creds")), "Authorization Violation");
}

// A creds file that is not one is a configuration error, said at once, naming the file and
// what is wrong with it and never its content; nothing of it is sent to the server.
TEST_F(NatsJwtTest, GarbledCredsFileIsRefusedBeforeConnecting) {
  struct Case {
    std::string name, content, reason;
  };
  const std::vector<Case> cases = {
      {"plain.creds", router_jwt_ + "\n" + router_user_.seed + "\n", "no user JWT"},
      {"truncated.creds", testing::creds_file(router_jwt_.substr(0, router_jwt_.rfind('.')), router_user_.seed),
       "not a JWT"},
      {"no-seed.creds", "-----BEGIN NATS USER JWT-----\n" + router_jwt_ + "\n------END NATS USER JWT------\n",
       "no user NKey seed"},
      {"bad-seed.creds", testing::creds_file(router_jwt_, "SU" + router_user_.seed.substr(3)), "not valid"},
      // A good file saved on Windows: cnats 3.4.1 finds nothing in it and would send it whole.
      {"crlf.creds", std::regex_replace(testing::creds_file(router_jwt_, router_user_.seed), std::regex("\n"), "\r\n"),
       "Windows line endings (CRLF)"},
  };
  for (const auto& c : cases) {
    write_file(path(c.name), c.content);
    NatsClient nc;
    std::string error;
    EXPECT_FALSE(nc.connect(config_with(path(c.name)), error)) << c.name;
    EXPECT_NE(error.find(path(c.name)), std::string::npos) << c.name << ": " << error;
    EXPECT_NE(error.find(c.reason), std::string::npos) << c.name << ": " << error;
    for (const auto& secret : secrets()) EXPECT_EQ(error.find(secret), std::string::npos) << c.name << ": " << error;
  }
  NatsClient nc;
  std::string error;
  EXPECT_FALSE(nc.connect(config_with(path("no-such.creds")), error));
  EXPECT_NE(error.find("cannot read " + path("no-such.creds")), std::string::npos) << error;
}

// The router binary with a creds file: it routes, and what the file holds stays out of its
// log, also at debug level and also when the server refuses it.
class RouterJwtTest : public NatsJwtTest {
 protected:
  void SetUp() override {
    NatsJwtTest::SetUp();
    if (HasFatalFailure()) return;
    write_file(path("routes.yaml"), kRoutes);
  }
  std::vector<std::string> argv(const std::string& creds) const {
    return {router_binary(), "run", "--routes", path("routes.yaml"), "--nats", server_->url(), "--name", "jwt",
            "--namespace", "test", "--pod", "jwt-0", "--metrics-addr",
            "127.0.0.1:" + std::to_string(testing::free_port()), "--heartbeat", "200ms", "--grace", "2s",
            "--log-level", "debug", "--nats-creds-file", creds};
  }
  void expect_no_secret(const std::string& log) const {
    for (const auto& secret : secrets()) EXPECT_EQ(log.find(secret), std::string::npos) << log;
  }
};

TEST_F(RouterJwtTest, CredsFileRoutesEventsAndStaysOutOfTheLog) {
  NatsClient tester;
  std::string error;
  ASSERT_TRUE(tester.connect(config_with(path("tester.creds")), error)) << error;
  std::mutex mu;
  std::condition_variable cv;
  int beats = 0;
  std::vector<std::string> copies;
  uint64_t beat_id = tester.subscribe("switchboard.status.test.jwt", "", [&](const NatsMessage&) {
    std::lock_guard lock(mu);
    ++beats;
    cv.notify_all();
  }, error);
  uint64_t out_id = tester.subscribe("out.copy", "", [&](const NatsMessage& m) {
    std::lock_guard lock(mu);
    copies.emplace_back(m.data);
    cv.notify_all();
  }, error);
  ASSERT_NE(beat_id, 0u);
  ASSERT_NE(out_id, 0u);
  tester.flush(2000);

  const std::string log = path("router.log");
  testing::Process router(argv(path("router.creds")), {}, log);
  {
    // A heartbeat follows the subscriptions on the same connection: they are in place.
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 15s, [&] { return beats >= 1; })) << read_file(log);
  }
  ASSERT_TRUE(tester.publish("in.jwt", {}, R"({"n":1})", error)) << error;
  tester.flush(2000);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 15s, [&] { return !copies.empty(); })) << read_file(log);
    EXPECT_EQ(copies[0], R"({"n":1})");
  }
  tester.unsubscribe(beat_id);
  tester.unsubscribe(out_id);
  EXPECT_EQ(router.stop(10000), 0);
  std::string text = read_file(log);
  EXPECT_NE(text.find("router started"), std::string::npos) << text;
  expect_no_secret(text);
}

TEST_F(RouterJwtTest, GarbledCredsFileStopsStartUpWithTheReason) {
  write_file(path("garbled.creds"),
             testing::creds_file(router_jwt_.substr(0, router_jwt_.rfind('.')), router_user_.seed));
  const std::string log = path("router.log");
  testing::Process router(argv(path("garbled.creds")), {}, log);
  int status = router.wait(15000);
  std::string text = read_file(log);
  EXPECT_EQ(status, 1) << text;
  EXPECT_NE(text.find("cannot start"), std::string::npos) << text;
  EXPECT_NE(text.find("creds file " + path("garbled.creds") + ": the user JWT is not a JWT"), std::string::npos)
      << text;
  expect_no_secret(text);
}

TEST_F(RouterJwtTest, CredsTheServerRefusesStopStartUpWithItsReason) {
  NKey stranger_account = make_nkey(NKeyType::Account);
  write_file(path("stranger.creds"),
             testing::creds_file(testing::user_jwt(stranger_account, router_user_, "router"), router_user_.seed));
  const std::string log = path("router.log");
  testing::Process router(argv(path("stranger.creds")), {}, log);
  int status = router.wait(15000);
  std::string text = read_file(log);
  EXPECT_EQ(status, 1) << text;
  EXPECT_NE(text.find("Authorization Violation"), std::string::npos) << text;
  expect_no_secret(text);
  EXPECT_EQ(text.find(router_user_.seed), std::string::npos) << text;
}

// --- Rotated credentials ------------------------------------------------------------------
// The server's password for the router changes (a config reload), and only later the
// Secret the router reads it from. In between, cnats is refused twice and closes the
// connection for good; the router is not ready, says why, and after
// --nats-unhealthy-after fails /healthz so that Kubernetes would restart it. Once the file
// holds the new password, the next rebuild reads it: ready again, healthy again, routing.
class RouterRotationTest : public ::testing::Test {
 protected:
  static testing::NatsServer::Config server_config(const std::string& router_password) {
    return {"authorization { users = [\n  { user: router, password: \"" + router_password +
            "\" }\n  { user: tester, password: \"tester-Pw-33\" }\n] }\n"};
  }
  void SetUp() override {
    server_ptr_ = testing::start_nats_server(server_config(kOldPassword));
    ASSERT_NE(server_ptr_, nullptr) << "nats-server did not start";
    char tmpl[] = "/tmp/switchboard-rotation-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    write_file(dir_ + "/routes.yaml", kRoutes);
    write_file(dir_ + "/user", "router\n");
    write_file(dir_ + "/password", std::string(kOldPassword) + "\n");
    port_ = testing::free_port();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  testing::HttpReply get(const std::string& p) const { return testing::http_get(port_, p); }

  static constexpr const char* kOldPassword = "old-Pw-rotated-away-9157";
  static constexpr const char* kNewPassword = "new-Pw-from-the-secret-2648";
  std::unique_ptr<testing::NatsServer> server_ptr_;
  testing::NatsServer& server() { return *server_ptr_; }
  std::string dir_;
  int port_ = 0;
};

TEST_F(RouterRotationTest, RecoversFromTheRotatedSecretAndFailsLivenessMeanwhile) {
  NatsConfig cfg = config_for(server());
  cfg.user = "tester";
  cfg.password = "tester-Pw-33";
  NatsClient tester;
  std::string error;
  ASSERT_TRUE(tester.connect(cfg, error)) << error;
  std::mutex mu;
  std::condition_variable cv;
  int copies = 0;
  uint64_t id = tester.subscribe("out.copy", "", [&](const NatsMessage&) {
    std::lock_guard lock(mu);
    ++copies;
    cv.notify_all();
  }, error);
  ASSERT_NE(id, 0u) << error;
  tester.flush(2000);
  // Routes an event and waits for its copy; the router may still be subscribing, so the
  // event is sent again until one arrives.
  auto routed = [&] {
    int before;
    {
      std::lock_guard lock(mu);
      before = copies;
    }
    return eventually([&] {
      std::string e;
      tester.publish("in.rotation", {}, R"({"n":1})", e);
      tester.flush(2000);
      std::unique_lock lock(mu);
      return cv.wait_for(lock, 500ms, [&] { return copies > before; });
    });
  };

  const std::string log = dir_ + "/router.log";
  testing::Process router({router_binary(), "run", "--routes", dir_ + "/routes.yaml", "--nats", server().url(),
                           "--name", "rotation", "--namespace", "test", "--pod", "rotation-0", "--metrics-addr",
                           "127.0.0.1:" + std::to_string(port_), "--heartbeat", "200ms", "--grace", "2s",
                           "--log-level", "debug", "--nats-user-file", dir_ + "/user", "--nats-password-file",
                           dir_ + "/password", "--nats-unhealthy-after", "2s"},
                          {}, log);
  ASSERT_TRUE(eventually([&] { return get("/readyz").status == 200; })) << read_file(log);
  ASSERT_TRUE(routed()) << read_file(log);

  // The server first.
  ASSERT_TRUE(server().reload(server_config(kNewPassword))) << read_file(server().log_path());
  ASSERT_TRUE(eventually([&] { return get("/readyz").body.find("NATS connection closed") != std::string::npos; }))
      << get("/readyz").body << "\n" << read_file(log);
  EXPECT_EQ(get("/readyz").status, 503);
  EXPECT_NE(get("/readyz").body.find("Authorization Violation"), std::string::npos) << get("/readyz").body;
  // Still refused with the old password: after the bound, the liveness probe fails.
  ASSERT_TRUE(eventually([&] { return get("/healthz").status == 503; })) << get("/healthz").body;
  EXPECT_NE(get("/healthz").body.find("NATS connection closed for"), std::string::npos) << get("/healthz").body;
  ASSERT_TRUE(eventually([&] {
    auto failed = testing::metric(get("/metrics").body, "switchboard_router_nats_rebuilds_total{result=\"failed\"}");
    return failed && *failed >= 1;
  })) << get("/metrics").body;

  // Then the Secret, swapped the way Kubernetes swaps a mounted file.
  write_file(dir_ + "/password.tmp", std::string(kNewPassword) + "\n");
  std::filesystem::rename(dir_ + "/password.tmp", dir_ + "/password");
  ASSERT_TRUE(eventually([&] { return get("/readyz").status == 200; })) << get("/readyz").body << "\n"
                                                                         << read_file(log);
  EXPECT_EQ(get("/healthz").status, 200);
  EXPECT_EQ(get("/healthz").body, "ok");
  EXPECT_EQ(testing::metric(get("/metrics").body, "switchboard_router_nats_rebuilds_total{result=\"ok\"}"), 1.0);
  // Subscriptions were made again on the new connection.
  EXPECT_TRUE(routed()) << read_file(log);

  tester.unsubscribe(id);
  EXPECT_EQ(router.stop(10000), 0);
  std::string text = read_file(log);
  EXPECT_NE(text.find("NATS closed the connection"), std::string::npos) << text;
  EXPECT_NE(text.find("NATS connection made again"), std::string::npos) << text;
  EXPECT_EQ(text.find(kOldPassword), std::string::npos) << text;
  EXPECT_EQ(text.find(kNewPassword), std::string::npos) << text;
}

}  // namespace
}  // namespace switchboard::router
