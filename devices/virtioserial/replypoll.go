package virtioserial

import "time"

// Reply polling. A request-and-answer peer (an echo, a shell, an
// agent's command) costs the event loop two wake-ups a round trip: the
// host's bytes, then the guest's kick for its answer. Once a port's
// guest has answered within the reply window (replyWindow; a device's
// own, for tests) of its input, the loop, having delivered the next
// input and raised its interrupt, watches the port's TX ring for up to
// that window with kicks suppressed, and writes the
// answer out without sleeping. A watch that sees no answer turns the
// port's polling off until the guest again answers within the window:
// bulk input, or a guest slower than the window, costs one watch, not
// one per input.
const replyWindow = 30 * time.Microsecond

// noteTXKick records a kick on p's TX queue; an answer this soon after
// input turns polling on. Caller holds mu.
func (p *Port) noteTXKick() {
	if !p.rxPushedAt.IsZero() && time.Since(p.rxPushedAt) < p.d.replyWindow {
		p.replyPoll = true
	}
}

// pollReply watches p's TX ring after an event that delivered input to
// it (runs on the loop, without mu: the vCPUs may take it meanwhile).
func (d *Device) pollReply(p *Port) {
	txq := rxQueueIndex(p.id) + 1
	d.mu.Lock()
	armed := p.replyPoll && p.rxPushed && p.txHeld == nil && !p.throttled && d.queue(txq) != nil
	p.rxPushed = false
	window := d.replyWindow
	if armed {
		d.queue(txq).SuppressNotifications()
	}
	d.mu.Unlock()
	if !armed {
		return
	}
	answered := false
	for end := time.Now().Add(window); !answered && time.Now().Before(end); {
		d.mu.Lock()
		q := d.queue(txq)
		answered = q == nil || q.HasAvailable()
		d.mu.Unlock()
	}
	d.locked(func() {
		if !answered {
			p.replyPoll = false
		}
		p.pump() // writes the answer, or turns kicks back on with a last look
	})
}
