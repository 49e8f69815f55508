// A measurement by hand, not a test: how many events a second the real router binary moves
// through a JetStream-to-JetStream route on a loopback nats-server (file storage).
//
//   switchboard-jetstream-throughput ROUTER_BINARY [EVENTS=20000] [BATCH=64] [ROUTER FLAGS...]
//
// It fills a source stream with EVENTS small JSON events first, then starts the router and
// times from the first event stored in the destination stream to the last, by polling the
// stream's message count every 20 ms. Everything it starts it stops.
#include <nats/nats.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/streams.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace t = switchboard::testing;

bool add_stream(jsCtx* js, const char* name, const char* subject) { return t::add_stream(js, name, subject).empty(); }

uint64_t messages(jsCtx* js, const char* stream) { return t::stream_messages(js, stream); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s ROUTER_BINARY [EVENTS] [BATCH] [ROUTER FLAGS...]\n", argv[0]);
    return 2;
  }
  const std::string router = argv[1];
  const uint64_t events = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20000;
  const int batch = argc > 3 ? std::atoi(argv[3]) : 64;
  std::vector<std::string> extra(argv + std::min(argc, 4), argv + argc);

  t::NatsServer server(true);
  if (!server.ok()) return 1;
  natsConnection* nc = nullptr;
  if (natsConnection_ConnectTo(&nc, server.url().c_str()) != NATS_OK) return 1;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 4096;
  jsCtx* js = nullptr;
  natsConnection_JetStream(&js, nc, &jo);
  if (!add_stream(js, "SRC", "src.>") || !add_stream(js, "DST", "dst.>")) return 1;
  const std::string payload =
      R"({"id":12345,"amount":250.5,"region":"eu","customer":{"name":"Ada","tier":"gold"},"items":[1,2,3]})";
  for (uint64_t i = 0; i < events; ++i) {
    js_PublishAsync(js, "src.orders", payload.data(), static_cast<int>(payload.size()), nullptr);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60000;
  js_PublishAsyncComplete(js, &po);

  char tmpl[] = "/tmp/switchboard-js-throughput-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  std::ofstream(dir + "/routes.yaml") << "routes:\n  - name: bench\n    source:\n      subject: src.>\n"
                                      << "      jetstream: {stream: SRC, durable: bench, batch: " << batch
                                      << ", maxAckPending: 100000}\n"
                                      << "    transform:\n      - set: {tier: '\"large\"'}\n"
                                      << "    destinations:\n      - subject: 'dst.{{ event.region }}'\n"
                                      << "        jetstream: true\n";
  std::vector<std::string> args = {router, "run", "--routes", dir + "/routes.yaml", "--nats", server.url(),
                                   "--metrics-addr", "127.0.0.1:" + std::to_string(t::free_port()),
                                   "--log-level", "warn"};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto started = Clock::now();
  t::Process p(args, {}, dir + "/router.log");
  Clock::time_point first{};
  uint64_t first_count = 0, count = 0;
  while ((count = messages(js, "DST")) < events) {
    if (count > 0 && first_count == 0) {
      first = Clock::now();
      first_count = count;
    }
    if (Clock::now() - started > std::chrono::minutes(5) || !p.running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto end = Clock::now();
  p.stop(10000);
  if (first_count == 0) first = started;
  const double seconds = std::chrono::duration<double>(end - first).count();
  std::printf("events=%llu batch=%d stored=%llu: %.0f events/s (%llu in %.3f s after the first)\n",
              static_cast<unsigned long long>(events), batch, static_cast<unsigned long long>(count),
              static_cast<double>(count - first_count) / seconds,
              static_cast<unsigned long long>(count - first_count), seconds);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return count == events ? 0 : 1;
}
