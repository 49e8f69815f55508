// The benchmark's event: a small order in JSON, padded to an exact size, that carries its
// sequence number and send time so that the receiver can tell how far a relay has got and
// how long the event took, whatever the relay did to the rest of it.
//
//   {"id":"ord-000000000042","ts":81234567890123,"customer":{"tier":"gold","region":"eu-west"},
//    "amount":120.5,"currency":"EUR","items":[{"sku":"A-1","qty":2}],"debug":true,"pad":"xx…"}
//
// Even sequence numbers carry amount 120.5 and odd ones 80.25, so the benchmark filter
// `amount >= 100 && customer.tier == "gold"` keeps exactly half. `ts` is CLOCK_MONOTONIC in
// nanoseconds: below 2^53, so relays that read numbers as doubles (Go, Node.js) keep it exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace switchboard::bench {

// Smallest size the event can be padded to (with the widest ts).
size_t min_event_size();

// Appends the event `seq` sent at `ts_ns`, exactly `size` bytes long (size >= min_event_size()).
void append_event(std::string& out, uint64_t seq, int64_t ts_ns, size_t size);

// Reads "id" and "ts" back from an event a relay forwarded (any key order, any other
// change). False when either is missing.
bool read_event(std::string_view payload, uint64_t& seq, int64_t& ts_ns);

// Whether the benchmark filter keeps event `seq`.
inline bool passes_filter(uint64_t seq) { return seq % 2 == 0; }

int64_t monotonic_ns();

}  // namespace switchboard::bench
