package discovery

import (
	"net/netip"
	"time"
)

// bucket is a token bucket: burst tokens, one more every per.
type bucket struct {
	tokens float64
	at     time.Time
}

// limiter is a set of token buckets keyed by source. Not safe for
// concurrent use: it belongs to the Pairing's Run goroutine.
type limiter struct {
	burst float64
	per   time.Duration
	max   int // keys kept; beyond it, full buckets are forgotten first
	m     map[string]*bucket
}

func newLimiter(burst int, per time.Duration, max int) *limiter {
	return &limiter{burst: float64(burst), per: per, max: max, m: map[string]*bucket{}}
}

func (l *limiter) get(key string, now time.Time) *bucket {
	b, ok := l.m[key]
	if !ok {
		if len(l.m) >= l.max {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		if len(l.m) < l.max {
			l.m[key] = b
		}
		return b
	}
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(l.burst, b.tokens+float64(el)/float64(l.per))
		b.at = now
	}
	return b
}

// allow takes a token if there is one.
func (l *limiter) allow(key string, now time.Time) bool {
	b := l.get(key, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// has reports whether a token is available without taking it.
func (l *limiter) has(key string, now time.Time) bool { return l.get(key, now).tokens >= 1 }

// take takes a token, going negative is not allowed (floor at zero).
func (l *limiter) take(key string, now time.Time) {
	b := l.get(key, now)
	b.tokens = max(0, b.tokens-1)
}

// retryAfter is how long until key has a token.
func (l *limiter) retryAfter(key string, now time.Time) time.Duration {
	b := l.get(key, now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.per))
}

// prune forgets buckets that have refilled (they equal a new one).
func (l *limiter) prune(now time.Time) {
	for k, b := range l.m {
		if b.tokens+float64(now.Sub(b.at))/float64(l.per) >= l.burst {
			delete(l.m, k)
		}
	}
}

// sourceKey is the rate-limit key of a client address: the address for
// IPv4, its /64 for IPv6 (one host easily owns a whole /64).
func sourceKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, err := a.WithZone("").Prefix(64)
		if err == nil {
			return p.String()
		}
	}
	return a.String()
}
