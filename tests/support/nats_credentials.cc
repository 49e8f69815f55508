#include "tests/support/nats_credentials.h"

#include <openssl/evp.h>

#include <chrono>

namespace switchboard::testing {

namespace {

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

std::string nkey_encode(std::vector<uint8_t> prefix, const std::vector<uint8_t>& key) {
  prefix.insert(prefix.end(), key.begin(), key.end());
  uint16_t crc = crc16_xmodem(prefix);
  prefix.push_back(static_cast<uint8_t>(crc & 0xff));
  prefix.push_back(static_cast<uint8_t>(crc >> 8));
  return base32(prefix);
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

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

std::string base64url(std::string_view data) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : data) {
    buffer = (buffer << 8) | static_cast<uint8_t>(c);
    bits += 8;
    while (bits >= 6) {
      out += kAlphabet[(buffer >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 63];
  return out;
}

NKey make_nkey(NKeyType type) {
  NKey out;
  out.type = type;
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &key) != 1) {
    EVP_PKEY_CTX_free(ctx);
    return out;
  }
  EVP_PKEY_CTX_free(ctx);
  std::vector<uint8_t> seed(32), pub(32);
  size_t seed_len = seed.size(), pub_len = pub.size();
  bool ok = EVP_PKEY_get_raw_private_key(key, seed.data(), &seed_len) == 1 &&
            EVP_PKEY_get_raw_public_key(key, pub.data(), &pub_len) == 1 && seed_len == 32 && pub_len == 32;
  EVP_PKEY_free(key);
  if (!ok) return out;
  constexpr uint8_t kSeed = 18 << 3;
  const auto t = static_cast<uint8_t>(type);
  out.public_key = nkey_encode({t}, pub);
  out.seed = nkey_encode({static_cast<uint8_t>(kSeed | (t >> 5)), static_cast<uint8_t>((t & 31) << 3)}, seed);
  out.raw_seed = std::move(seed);
  out.raw_public = std::move(pub);
  return out;
}

std::string ed25519_sign(const NKey& key, std::string_view data) {
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, key.raw_seed.data(), key.raw_seed.size());
  if (pkey == nullptr) return "";
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  std::string sig(64, '\0');
  size_t len = sig.size();
  bool ok = md != nullptr && EVP_DigestSignInit(md, nullptr, nullptr, nullptr, pkey) == 1 &&
            EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(pkey);
  if (!ok) return "";
  sig.resize(len);
  return sig;
}

std::string make_jwt(const NKey& issuer, const std::string& subject_public_key, const std::string& name,
                     const std::string& type, const std::string& nats_fields, int64_t issued_at) {
  if (issued_at == 0) {
    issued_at = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  }
  // The standard claims in the order the reference implementation writes them, first
  // without jti: their hash is the jti.
  const std::string standard = "\"iat\":" + std::to_string(issued_at) + ",\"iss\":" + quoted(issuer.public_key) +
                               ",\"name\":" + quoted(name) + ",\"sub\":" + quoted(subject_public_key);
  const std::string for_hash = "{" + standard + "}";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EVP_Digest(for_hash.data(), for_hash.size(), digest, &digest_len, EVP_sha512_256(), nullptr);
  const std::string jti = base32(std::vector<uint8_t>(digest, digest + digest_len));
  std::string nats = "{" + nats_fields + (nats_fields.empty() ? "" : ",") + "\"type\":" + quoted(type) +
                     ",\"version\":2}";
  const std::string claims = "{\"jti\":" + quoted(jti) + "," + standard + ",\"nats\":" + nats + "}";
  const std::string signing_input =
      base64url(R"({"typ":"JWT","alg":"ed25519-nkey"})") + "." + base64url(claims);
  const std::string sig = ed25519_sign(issuer, signing_input);
  if (sig.empty()) return "";
  return signing_input + "." + base64url(sig);
}

std::string operator_jwt(const NKey& op, const std::string& name) {
  return make_jwt(op, op.public_key, name, "operator", "");
}

std::string account_jwt(const NKey& op, const NKey& account, const std::string& name) {
  // -1 is "no limit"; a limit left out would be 0, which allows nothing.
  return make_jwt(op, account.public_key, name, "account",
                  R"("limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,)"
                  R"("conn":-1,"leaf":-1},"default_permissions":{"pub":{},"sub":{}})");
}

std::string user_jwt(const NKey& account, const NKey& user, const std::string& name) {
  return make_jwt(account, user.public_key, name, "user", R"("pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1)");
}

std::string creds_file(const std::string& user_jwt, const std::string& user_seed) {
  return "-----BEGIN NATS USER JWT-----\n" + user_jwt +
         "\n------END NATS USER JWT------\n\n"
         "************************* IMPORTANT *************************\n"
         "NKEY Seed printed below can be used to sign and prove identity.\n"
         "NKEYs are sensitive and should be treated as secrets.\n\n"
         "-----BEGIN USER NKEY SEED-----\n" +
         user_seed +
         "\n------END USER NKEY SEED------\n\n"
         "*************************************************************\n";
}

std::string operator_mode_config(const std::string& operator_jwt_path,
                                 const std::vector<std::pair<std::string, std::string>>& accounts) {
  std::string out = "operator: \"" + operator_jwt_path + "\"\nresolver: MEMORY\nresolver_preload: {\n";
  for (const auto& [pub, jwt] : accounts) out += "  " + pub + ": \"" + jwt + "\"\n";
  return out + "}\n";
}

}  // namespace switchboard::testing
