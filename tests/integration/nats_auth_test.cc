// NatsClient against nats-server set up for each way of authenticating: user/password,
// token, TLS (server verification, client certificates), NKeys; and the router binary,
// which must never write a credential to its log. Everything runs on 127.0.0.1; keys and
// certificates are made fresh in a temporary folder.
#include <openssl/evp.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "router/nats_client.h"
#include "tests/support/process.h"

namespace switchboard::router {
namespace {

using namespace std::chrono_literals;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

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

// --- NKeys -------------------------------------------------------------------------------
// An NKey is an Ed25519 key in base32 (RFC 4648, no padding) with a one-byte type prefix
// and a CRC-16/XMODEM (little-endian) over prefix and key. A user's public key has prefix
// 20<<3 ('U'); a seed packs the seed type 18<<3 ('S') and the user type into two bytes
// ("SU..."), followed by the 32-byte Ed25519 private seed.

uint16_t crc16_xmodem(const std::vector<uint8_t>& data) {
  uint16_t crc = 0;
  for (uint8_t byte : data) {
    crc = static_cast<uint16_t>(crc ^ (byte << 8));
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
  }
  return crc;
}

std::string base32(const std::vector<uint8_t>& data) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t byte : data) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (5 - bits)) & 31];
  return out;
}

std::string nkey_encode(std::vector<uint8_t> prefix, const uint8_t* key) {
  prefix.insert(prefix.end(), key, key + 32);
  uint16_t crc = crc16_xmodem(prefix);
  prefix.push_back(static_cast<uint8_t>(crc & 0xff));
  prefix.push_back(static_cast<uint8_t>(crc >> 8));
  return base32(prefix);
}

struct UserNKey {
  std::string seed;        // SU...
  std::string public_key;  // U...
  std::vector<uint8_t> raw_public;
};

UserNKey make_user_nkey() {
  UserNKey out;
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &key) != 1) {
    EVP_PKEY_CTX_free(ctx);
    return out;
  }
  EVP_PKEY_CTX_free(ctx);
  uint8_t seed[32], pub[32];
  size_t seed_len = sizeof seed, pub_len = sizeof pub;
  bool ok = EVP_PKEY_get_raw_private_key(key, seed, &seed_len) == 1 &&
            EVP_PKEY_get_raw_public_key(key, pub, &pub_len) == 1 && seed_len == 32 && pub_len == 32;
  EVP_PKEY_free(key);
  if (!ok) return out;
  constexpr uint8_t kUser = 20 << 3;
  constexpr uint8_t kSeed = 18 << 3;
  out.public_key = nkey_encode({kUser}, pub);
  out.seed = nkey_encode({static_cast<uint8_t>(kSeed | (kUser >> 5)), static_cast<uint8_t>((kUser & 31) << 3)},
                         seed);
  out.raw_public.assign(pub, pub + 32);
  return out;
}

// The generator checked on its own, against cnats' decoder and OpenSSL's verifier, so a
// failure of the server tests below is not a failure of the test's own key format.
TEST(NKeyGenerator, SeedsSignWhatTheirPublicKeyVerifies) {
  UserNKey k = make_user_nkey();
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
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/switchboard-auth-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    if (std::system("openssl version >/dev/null 2>&1") != 0) {
      cert_error_ = "the openssl command is missing: install openssl to run the TLS tests";
      return;
    }
    const std::string d = dir_;
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string ca_ext = " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
    write_file(d + "/server.ext", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    write_file(d + "/client.ext", "extendedKeyUsage=clientAuth\n");
    const std::string script =
        "set -e; cd '" + d + "'; exec >openssl.log 2>&1\n"
        "openssl req -x509" + ec + " -keyout ca.key -out ca.pem -days 2 -subj /CN=switchboard-test-ca" + ca_ext + "\n"
        "openssl req -x509" + ec + " -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=some-other-ca" + ca_ext + "\n"
        "openssl req" + ec + " -keyout server.key -out server.csr -subj /CN=127.0.0.1\n"
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 -extfile server.ext -out server.pem\n"
        "openssl req" + ec + " -keyout client.key -out client.csr -subj /CN=switchboard-router\n"
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial 3 -days 2 -extfile client.ext -out client.pem\n";
    write_file(d + "/make-certs.sh", script);
    if (std::system(("sh '" + d + "/make-certs.sh'").c_str()) != 0) {
      cert_error_ = "openssl failed to make the test certificates:\n" + read_file(d + "/openssl.log");
    }
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }
  static std::string tls_block(bool verify_clients) {
    return "tls {\n  cert_file: \"" + path("server.pem") + "\"\n  key_file: \"" + path("server.key") +
           "\"\n  ca_file: \"" + path("ca.pem") + "\"\n  verify: " + (verify_clients ? "true" : "false") +
           "\n  timeout: 3\n}\n";
  }
  void SetUp() override {
    ASSERT_FALSE(dir_.empty()) << "no temporary folder";
  }

  static inline std::string dir_;
  static inline std::string cert_error_;  // why the TLS tests cannot run, if they cannot
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
  UserNKey allowed = make_user_nkey();
  UserNKey other = make_user_nkey();
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

}  // namespace
}  // namespace switchboard::router
