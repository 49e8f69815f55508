// Test support: a certificate authority, a server certificate for 127.0.0.1 and a client
// certificate, made with the openssl command in a temporary folder (removed by the
// destructor); and another CA that signed none of them, for the cases that must fail.
//
//   ca.pem / ca.key              the CA that signed server.pem and client.pem
//   other-ca.pem / other-ca.key  a CA that signed nothing here
//   server.pem / server.key      CN and subjectAltName IP 127.0.0.1, serverAuth
//   client.pem / client.key      CN switchboard-router, clientAuth
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "tests/support/files.h"

namespace switchboard::testing {

class TestCertificates {
 public:
  TestCertificates() {
    char tmpl[] = "/tmp/switchboard-test-certs-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      error_ = "cannot make a temporary folder for the test certificates";
      return;
    }
    dir_ = tmpl;
    if (std::system("openssl version >/dev/null 2>&1") != 0) {
      error_ = "the openssl command is missing: install openssl to run the TLS tests";
      return;
    }
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string ca_ext =
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
    write_file(path("server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    write_file(path("client.ext"), "extendedKeyUsage=clientAuth\n");
    const std::string script =
        "set -e; cd '" + dir_ + "'; exec >openssl.log 2>&1\n"
        "openssl req -x509" + ec + " -keyout ca.key -out ca.pem -days 2 -subj /CN=switchboard-test-ca" + ca_ext + "\n"
        "openssl req -x509" + ec + " -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=some-other-ca" + ca_ext + "\n"
        "openssl req" + ec + " -keyout server.key -out server.csr -subj /CN=127.0.0.1\n"
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 -extfile server.ext -out server.pem\n"
        "openssl req" + ec + " -keyout client.key -out client.csr -subj /CN=switchboard-router\n"
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial 3 -days 2 -extfile client.ext -out client.pem\n";
    write_file(path("make-certs.sh"), script);
    if (std::system(("sh '" + path("make-certs.sh") + "'").c_str()) != 0) {
      error_ = "openssl failed to make the test certificates:\n" + read_file(path("openssl.log"));
    }
  }
  ~TestCertificates() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  TestCertificates(const TestCertificates&) = delete;
  TestCertificates& operator=(const TestCertificates&) = delete;

  // Empty when every file is there; otherwise why not.
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // A nats-server `tls` block with the server certificate, trusting this CA for client
  // certificates, which it demands when `verify_clients`.
  std::string nats_tls_block(bool verify_clients) const {
    return "tls {\n  cert_file: \"" + path("server.pem") + "\"\n  key_file: \"" + path("server.key") +
           "\"\n  ca_file: \"" + path("ca.pem") + "\"\n  verify: " + (verify_clients ? "true" : "false") +
           "\n  timeout: 3\n}\n";
  }

 private:
  std::string dir_;
  std::string error_;
};

}  // namespace switchboard::testing
