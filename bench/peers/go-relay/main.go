// go-relay: the filter and transform of bench/dataplane/routes/transform.yaml, written the
// way a Go team would write it by hand: nats.go, a callback subscription, encoding/json
// into map[string]any (the event's other fields must survive, so no struct).
//
//	go-relay --nats URL --in SUBJECT --out-prefix PREFIX
//
// Keeps events with amount >= 100 and customer.tier == "gold", sets total = amount * 1.2,
// upper-cases customer.region, removes debug, and publishes to PREFIX.<region>. Runs
// until SIGTERM or SIGINT, then drains and exits 0.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
)

func main() {
	url := flag.String("nats", nats.DefaultURL, "NATS server URL")
	in := flag.String("in", "bench.in", "subject to consume")
	prefix := flag.String("out-prefix", "bench.out", "output subject prefix")
	flag.Parse()

	closed := make(chan struct{})
	nc, err := nats.Connect(*url, nats.Name("go-relay"), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-relay:", err)
		os.Exit(1)
	}
	_, err = nc.Subscribe(*in, func(m *nats.Msg) {
		var event map[string]any
		if err := json.Unmarshal(m.Data, &event); err != nil {
			return
		}
		amount, _ := event["amount"].(float64)
		customer, _ := event["customer"].(map[string]any)
		if customer == nil || amount < 100 || customer["tier"] != "gold" {
			return
		}
		region, _ := customer["region"].(string)
		region = strings.ToUpper(region)
		customer["region"] = region
		event["total"] = amount * 1.2
		delete(event, "debug")
		out, err := json.Marshal(event)
		if err != nil {
			return
		}
		nc.Publish(*prefix+"."+region, out)
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-relay:", err)
		os.Exit(1)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	nc.Drain()
	<-closed
}
