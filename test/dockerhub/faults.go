package hubemu

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// FaultKind is a kind of injected failure.
type FaultKind int

const (
	// FaultStatus answers Status (default 503) with a JSON error body.
	FaultStatus FaultKind = iota
	// FaultHTML answers Status (default 502) with an HTML error page, as a gateway does.
	FaultHTML
	// FaultRateLimit answers 429 with Retry-After (seconds), or with the older
	// X-Retry-After (a unix timestamp) when LegacyRetryHeader is set.
	FaultRateLimit
	// FaultDrop hijacks the connection and closes it without an answer; with
	// AfterHandling the request is carried out first (the change happens, the answer
	// is lost).
	FaultDrop
	// FaultLatency waits Latency (or until the client gives up), then answers normally.
	FaultLatency
	// FaultHold holds the request until Until is closed (or the client gives up), then
	// answers normally: a backend that stalls exactly as long as a test wants.
	FaultHold
)

func (k FaultKind) String() string {
	switch k {
	case FaultHTML:
		return "html"
	case FaultRateLimit:
		return "ratelimit"
	case FaultDrop:
		return "drop"
	case FaultLatency:
		return "latency"
	case FaultHold:
		return "hold"
	default:
		return "status"
	}
}

// FaultHeader marks responses produced by an injected fault, so Contract.Middleware
// does not hold them to the OpenAPI file (it strips the header before the client sees it).
const FaultHeader = "X-Hubemu-Fault"

// Fault is one injected failure rule. Rules apply in the order injected; the first rule
// that matches a request and has uses left is applied.
type Fault struct {
	Kind              FaultKind
	Status            int
	RetryAfter        time.Duration
	LegacyRetryHeader bool
	Latency           time.Duration
	// Until releases the requests a FaultHold holds.
	Until         <-chan struct{}
	AfterHandling bool
	// Method limits the rule to one HTTP method ("" for any).
	Method string
	// Path limits the rule to paths with this prefix (trailing slash ignored; "" for any).
	Path string
	// Exact limits the rule to Path itself, not the paths under it (with an empty Path,
	// to the root).
	Exact bool
	// Count is how many times the rule fires (0 means 1; negative means unlimited).
	Count int
	// Every makes the rule fire on every Nth matching request only (0 or 1: each).
	Every int
}

type faultRule struct {
	Fault
	seen, fired int
}

// Inject adds a fault rule.
func (e *Emulator) Inject(f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f.Count == 0 {
		f.Count = 1
	}
	e.faults = append(e.faults, &faultRule{Fault: f})
}

// ClearFaults removes every fault rule.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
}

// pickFaultLocked returns the fault for this request, if any.
func (e *Emulator) pickFaultLocked(method, path string) *Fault {
	for i := 0; i < len(e.faults); i++ {
		r := e.faults[i]
		if r.Method != "" && !strings.EqualFold(r.Method, method) {
			continue
		}
		if r.Path != "" && !strings.HasPrefix(path, strings.TrimSuffix(r.Path, "/")) {
			continue
		}
		if r.Exact && strings.TrimSuffix(path, "/") != strings.TrimSuffix(r.Path, "/") {
			continue
		}
		if r.Count >= 0 && r.fired >= r.Count {
			continue
		}
		r.seen++
		if r.Every > 1 && r.seen%r.Every != 0 {
			continue
		}
		r.fired++
		f := r.Fault
		if r.Count >= 0 && r.fired >= r.Count {
			e.faults = append(e.faults[:i], e.faults[i+1:]...)
		}
		return &f
	}
	return nil
}

// applyFault writes the fault's answer. It returns handled=false when the request
// should still be served normally (latency), and dropped=true when the connection was
// closed without an answer.
func (e *Emulator) applyFault(w http.ResponseWriter, r *http.Request, f *Fault, serve http.HandlerFunc) (handled, dropped bool) {
	switch f.Kind {
	case FaultLatency:
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		return false, false
	case FaultHold:
		select {
		case <-f.Until:
		case <-r.Context().Done():
		}
		return false, false
	case FaultRateLimit:
		after := f.RetryAfter
		if after <= 0 {
			after = time.Second
		}
		w.Header().Set(FaultHeader, f.Kind.String())
		if f.LegacyRetryHeader {
			w.Header().Set("X-Retry-After", strconv.FormatInt(e.now().Add(after).Unix(), 10))
		} else {
			w.Header().Set("Retry-After", strconv.Itoa(int((after+time.Second-1)/time.Second)))
		}
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"detail": "Rate limit exceeded", "error": false})
		return true, false
	case FaultHTML:
		status := f.Status
		if status == 0 {
			status = http.StatusBadGateway
		}
		w.Header().Set(FaultHeader, f.Kind.String())
		writeHTML(w, status, http.StatusText(status))
		return true, false
	case FaultDrop:
		if f.AfterHandling {
			serve(httptest.NewRecorder(), r)
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			w.Header().Set(FaultHeader, f.Kind.String())
			writeHTML(w, http.StatusBadGateway, "Bad Gateway")
			return true, false
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return true, true
	default:
		status := f.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set(FaultHeader, f.Kind.String())
		// The real service's 5xx bodies vary; rotate through the shapes seen.
		var body any
		switch status % 3 {
		case 0:
			body = map[string]any{"detail": "Service temporarily unavailable"}
		case 1:
			body = map[string]any{"message": "internal server error"}
		default:
			body = map[string]any{"errinfo": map[string]any{}, "detail": "upstream error", "message": "upstream error"}
		}
		writeJSON(w, status, body)
		return true, false
	}
}
