package kivuli

import (
	"fmt"
	"time"
)

// Trigger says what started a refresh.
type Trigger int

const (
	// TriggerInitial is the first fetch, made by [New].
	TriggerInitial Trigger = iota
	// TriggerBackground is a refresh made ahead of the deadline.
	TriggerBackground
	// TriggerOnDemand is a refresh made because a caller found the
	// credentials past their refresh deadline, or invalidated.
	TriggerOnDemand
)

// String returns "initial", "background" or "on-demand".
func (t Trigger) String() string {
	switch t {
	case TriggerInitial:
		return "initial"
	case TriggerBackground:
		return "background"
	case TriggerOnDemand:
		return "on-demand"
	}
	return fmt.Sprintf("Trigger(%d)", int(t))
}

// A RefreshEvent reports one refresh, successful or not. It never holds
// secrets.
type RefreshEvent struct {
	Trigger Trigger   // what started the refresh
	Start   time.Time // when the fetch started
	End     time.Time // when it ended
	// Expires is when the credentials served from now on expire: the new
	// ones after a success, the previous ones after a failure.
	Expires time.Time
	// Changed reports new credentials (a different key or token) rather
	// than the same set served again.
	Changed bool
	// Extended reports that the source served credentials that had
	// expired already (or would within RefreshDeadline) and that there was
	// nothing better: the newest set, the one in hand or the one served, is
	// served for 5 to 15 more minutes. While the credentials in hand are
	// valid, such a refresh fails instead, with [ErrStaleCredentials].
	Extended bool
	// Err is the reason the refresh failed; nil on success.
	Err error
	// Missed counts the events dropped for this subscriber, because its
	// channel was full, since the event delivered before this one.
	Missed int
}

const subscriberBuffer = 16

type subscriber struct {
	ch     chan RefreshEvent
	missed int
}

// Subscribe returns a channel that receives an event after every refresh,
// and a function that ends the subscription and closes the channel. The
// channel holds 16 events; when it is full, events are dropped (and counted
// in the next one's Missed) rather than delaying a refresh. Close also
// closes the channel.
func (c *Credentials) Subscribe() (<-chan RefreshEvent, func()) {
	s := &subscriber{ch: make(chan RefreshEvent, subscriberBuffer)}
	c.subsMu.Lock()
	if c.subs == nil {
		close(s.ch)
	} else {
		c.subs[s] = struct{}{}
	}
	c.subsMu.Unlock()
	return s.ch, func() {
		c.subsMu.Lock()
		defer c.subsMu.Unlock()
		if _, ok := c.subs[s]; ok {
			delete(c.subs, s)
			close(s.ch)
		}
	}
}

// publish delivers ev to every subscriber without blocking.
func (c *Credentials) publish(ev RefreshEvent) {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	for s := range c.subs {
		e := ev
		e.Missed = s.missed
		select {
		case s.ch <- e:
			s.missed = 0
		default:
			s.missed++
		}
	}
}
