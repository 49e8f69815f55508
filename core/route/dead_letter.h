// The envelope a failed event is dead-lettered in: what failed, where, how often, and the
// original event whole, so that it can be inspected and replayed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/route/processor.h"

namespace switchboard::route {

// {"route":..,"reason":..,"step":..,"error":..,"attempts":N,"subject":..,"headers":{..},
//  "data":<payload> | "raw":"<text>" | "base64":"<bytes>", "time":"<RFC 3339>"}
// The payload goes in "data" when it is JSON, "raw" when it is other UTF-8 text and
// "base64" otherwise.
std::string dead_letter_envelope(std::string_view route_name, const Result& result, const Message& msg,
                                 int64_t attempts, std::string_view time_rfc3339);

}  // namespace switchboard::route
