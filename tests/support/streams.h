// Test support: JetStream streams on a test's nats-server, made and counted through a
// JetStream context (NatsClient::jetstream() of a test's own client).
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <string>

namespace switchboard::testing {

// A file-store stream named `name` over `subject`. With max_msgs > 0 the stream holds at
// most that many messages and refuses a publish beyond them. Returns the error, or "".
inline std::string add_stream(jsCtx* js, const char* name, const char* subject, int64_t max_msgs = -1) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  const char* subjects[] = {subject};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  if (max_msgs > 0) {
    cfg.MaxMsgs = max_msgs;
    cfg.Discard = js_DiscardNew;
  }
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&si, js, &cfg, nullptr, &code);
  jsStreamInfo_Destroy(si);
  if (s == NATS_OK) return "";
  return std::string("stream ") + name + ": " + natsStatus_GetText(s) + " (JetStream error " +
         std::to_string(static_cast<int>(code)) + ")";
}

// How many messages the stream holds (0 when it cannot be read).
inline uint64_t stream_messages(jsCtx* js, const char* stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  if (js_GetStreamInfo(&si, js, stream, nullptr, &code) != NATS_OK) return 0;
  uint64_t n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

// True when the stream has a consumer named `durable` (false also when it cannot be asked).
inline bool consumer_exists(jsCtx* js, const char* stream, const char* durable) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&ci, js, stream, durable, nullptr, &code);
  jsConsumerInfo_Destroy(ci);
  return s == NATS_OK;
}

}  // namespace switchboard::testing
