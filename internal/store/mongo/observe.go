package mongo

import (
	"context"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

// commandMonitor reports every command the driver sends to observe, named by
// the command and its collection ("find users", "getMore changes"), or by the
// command alone when it names none ("ping"). The finish events carry the
// duration but not the command document, so the name is kept by request id
// from the start event until the command finishes.
func commandMonitor(observe func(op string, took time.Duration)) *event.CommandMonitor {
	var names sync.Map // request id → op
	finished := func(e *event.CommandFinishedEvent) {
		op := e.CommandName
		if v, ok := names.LoadAndDelete(e.RequestID); ok {
			op = v.(string)
		}
		observe(op, e.Duration)
	}
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			names.Store(e.RequestID, commandOp(e.CommandName, e.Command))
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { finished(&e.CommandFinishedEvent) },
		Failed:    func(_ context.Context, e *event.CommandFailedEvent) { finished(&e.CommandFinishedEvent) },
	}
}

// commandOp names a command by its name and collection. A command's first
// element is {<command>: <collection>} for the commands on a collection;
// getMore carries the collection in "collection".
func commandOp(name string, cmd bson.Raw) string {
	var coll string
	if name == "getMore" {
		coll, _ = cmd.Lookup("collection").StringValueOK()
	} else if first, err := cmd.IndexErr(0); err == nil {
		coll, _ = first.Value().StringValueOK()
	}
	if coll == "" {
		return name
	}
	return name + " " + coll
}

// joinMonitors is a command monitor that reports to a, then to b (either may
// be nil): the metrics observer and a test's monitor both see every command.
func joinMonitors(a, b *event.CommandMonitor) *event.CommandMonitor {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			if a.Started != nil {
				a.Started(ctx, e)
			}
			if b.Started != nil {
				b.Started(ctx, e)
			}
		},
		Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
			if a.Succeeded != nil {
				a.Succeeded(ctx, e)
			}
			if b.Succeeded != nil {
				b.Succeeded(ctx, e)
			}
		},
		Failed: func(ctx context.Context, e *event.CommandFailedEvent) {
			if a.Failed != nil {
				a.Failed(ctx, e)
			}
			if b.Failed != nil {
				b.Failed(ctx, e)
			}
		},
	}
}
