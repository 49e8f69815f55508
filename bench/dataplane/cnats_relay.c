/* switchboard-bench-cnats-relay: the limit for a relay on cnats. It forwards every message
 * from one subject to another with the same client library and the same connection
 * options Switchboard uses, and does nothing else: no parsing, no metrics, no copies.
 *
 *   switchboard-bench-cnats-relay --nats URL --in SUBJECT --out SUBJECT [--send-asap]
 *
 * --send-asap writes every publish to the socket at once (natsOptions_SetSendAsap) instead
 * of leaving it to cnats' flusher thread, which waits up to a millisecond for more to send.
 * Runs until SIGTERM or SIGINT, then drains its subscription and exits 0. */
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void forward(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
  (void)sub;
  natsConnection_Publish(nc, (const char *)closure, natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
  natsMsg_Destroy(msg);
}

int main(int argc, char **argv) {
  const char *url = NULL, *in = NULL, *out = NULL;
  bool send_asap = false, bad = false;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--send-asap") == 0) send_asap = true;
    else if (i + 1 < argc && strcmp(argv[i], "--nats") == 0) url = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "--in") == 0) in = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "--out") == 0) out = argv[++i];
    else bad = true;
  }
  if (url == NULL || in == NULL || out == NULL || bad) {
    fprintf(stderr, "usage: switchboard-bench-cnats-relay --nats URL --in SUBJECT --out SUBJECT [--send-asap]\n");
    return 2;
  }
  /* Signals are taken by sigwait below, so every thread cnats starts must block them. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  natsOptions *opts = NULL;
  natsConnection *nc = NULL;
  natsSubscription *sub = NULL;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, url);
  if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, send_asap);
  if (s == NATS_OK) s = natsConnection_Connect(&nc, opts);
  if (s == NATS_OK) s = natsConnection_Subscribe(&sub, nc, in, forward, (void *)out);
  /* The same bound Switchboard sets on its subscriptions. */
  if (s == NATS_OK) s = natsSubscription_SetPendingLimits(sub, 65536, 64 * 1024 * 1024);
  if (s == NATS_OK) s = natsConnection_Flush(nc);
  if (s != NATS_OK) {
    fprintf(stderr, "cnats-relay: %s\n", natsStatus_GetText(s));
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  natsSubscription_Drain(sub);
  natsSubscription_WaitForDrainCompletion(sub, 5000);
  natsConnection_FlushTimeout(nc, 5000);
  natsSubscription_Destroy(sub);
  natsConnection_Destroy(nc);
  natsOptions_Destroy(opts);
  nats_Close();
  return 0;
}
