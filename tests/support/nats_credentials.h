// Test support: NATS NKeys and JWTs made with OpenSSL, so that tests can run nats-server in
// operator mode (decentralised JWT authentication) without nsc or any other NATS tool.
//
// An NKey is an Ed25519 key in base32 (RFC 4648, no padding) with a one-byte type prefix
// and a CRC-16/XMODEM (little-endian) over prefix and key. A seed packs the seed type
// (18<<3, 'S') and the key's type into two bytes, followed by the 32-byte Ed25519 seed.
//
// A NATS JWT (version 2) is base64url(header) "." base64url(claims) "." base64url(signature),
// where the header is {"typ":"JWT","alg":"ed25519-nkey"}, the signature is the issuer's
// Ed25519 signature over the first two parts with their dot, and the claims hold jti, iat,
// iss, name, sub and a "nats" object with the type ("operator", "account", "user"), the
// version 2 and the type's own fields. jti is the unpadded base32 of a SHA-512/256 hash of
// the standard claims without jti.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::testing {

enum class NKeyType : uint8_t {
  Operator = 14 << 3,  // 'O'
  Account = 0,         // 'A'
  User = 20 << 3,      // 'U'
};

struct NKey {
  NKeyType type = NKeyType::User;
  std::string seed;        // S<type>...
  std::string public_key;  // O..., A..., U...
  std::vector<uint8_t> raw_seed, raw_public;
  bool ok() const { return !seed.empty(); }
};

// A fresh key; !ok() when OpenSSL could not make one.
NKey make_nkey(NKeyType type);

std::string base32(const std::vector<uint8_t>& data);
std::string base64url(std::string_view data);
// An Ed25519 signature by the key (empty on failure).
std::string ed25519_sign(const NKey& key, std::string_view data);

// A signed JWT for `subject_public_key` issued by `issuer`. `nats_fields` are the type's own
// fields as JSON members without braces ("" for none), e.g. "\"subs\":-1,\"data\":-1".
std::string make_jwt(const NKey& issuer, const std::string& subject_public_key, const std::string& name,
                     const std::string& type, const std::string& nats_fields, int64_t issued_at = 0);

// The three claims of an operator-mode setup. Accounts and users have no limits.
std::string operator_jwt(const NKey& op, const std::string& name);
std::string account_jwt(const NKey& op, const NKey& account, const std::string& name);
std::string user_jwt(const NKey& account, const NKey& user, const std::string& name);

// A creds file as nsc writes it: the decorated user JWT, then the decorated user seed.
std::string creds_file(const std::string& user_jwt, const std::string& user_seed);

// nats-server configuration for operator mode with a memory resolver that knows
// `accounts` (public key and JWT each); `operator_jwt_path` is a file holding the
// operator's JWT.
std::string operator_mode_config(const std::string& operator_jwt_path,
                                 const std::vector<std::pair<std::string, std::string>>& accounts);

}  // namespace switchboard::testing
