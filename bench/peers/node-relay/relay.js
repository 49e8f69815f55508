// node-relay: the filter and transform of bench/dataplane/routes/transform.yaml, written
// the way most articles show it: the `nats` package, an async iterator over the
// subscription, JSON.parse and JSON.stringify.
//
//   node relay.js --nats URL --in SUBJECT --out-prefix PREFIX
//
// Keeps events with amount >= 100 and customer.tier == "gold", sets total = amount * 1.2,
// upper-cases customer.region, removes debug, and publishes to PREFIX.<region>. Runs until
// SIGTERM or SIGINT, then drains and exits 0.
"use strict";
const { connect, StringCodec } = require("nats");

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

async function main() {
  const nc = await connect({ servers: option("--nats", "nats://127.0.0.1:4222"), name: "node-relay" });
  const prefix = option("--out-prefix", "bench.out");
  const sc = StringCodec();
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => nc.drain());
  }
  const sub = nc.subscribe(option("--in", "bench.in"));
  await nc.flush();
  for await (const m of sub) {
    let event;
    try {
      event = JSON.parse(sc.decode(m.data));
    } catch {
      continue;
    }
    if (!(event.amount >= 100 && event.customer && event.customer.tier === "gold")) continue;
    event.customer.region = String(event.customer.region).toUpperCase();
    event.total = event.amount * 1.2;
    delete event.debug;
    nc.publish(`${prefix}.${event.customer.region}`, sc.encode(JSON.stringify(event)));
  }
  await nc.closed();
}

main().catch((err) => {
  console.error("node-relay:", err.message);
  process.exit(1);
});
