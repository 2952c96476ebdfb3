package query

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Times before MinYear or more than MaxFuture after now are rejected: they
// are typos (seconds where milliseconds were meant, a wrong year) rather
// than queries that could match data.
const (
	// MinYear is the earliest year ParseTime accepts.
	MinYear = 2000
	// MaxFuture is how far after now ParseTime accepts a time: enough for
	// clock skew and for "to" a little ahead, not for a mistyped year.
	MaxFuture = 24 * time.Hour
)

// unixMillisFrom is the smallest number ParseTime reads as Unix
// milliseconds: as seconds it would be in the year 5138, as milliseconds
// 1973, so no time in range is ambiguous.
const unixMillisFrom = 1e11

const timeForms = `want RFC 3339 (2026-11-20T10:00:00Z), a date (2026-11-20), Unix seconds or milliseconds, "now", "now-1h" or "-1h"`

// ParseTime parses an absolute or relative time:
//   - RFC 3339 with optional fractional seconds: 2026-11-20T10:00:00Z;
//   - a date, meaning its midnight UTC: 2026-11-20;
//   - Unix seconds, integer or fractional: 1795168800, 1795168800.5;
//     numbers of 1e11 and more are Unix milliseconds: 1795168800000;
//   - "now", "now-1h", "now+5m", and "-1h" for now-1h, with units ms, s, m,
//     h, d (24h) and w (7d), combinable: -1h30m.
//
// The result must lie between the start of MinYear and MaxFuture after now.
func ParseTime(s string, now time.Time) (time.Time, error) {
	t, err := parseTime(strings.TrimSpace(s), now)
	if err != nil {
		return time.Time{}, err
	}
	if t.UTC().Year() < MinYear || t.After(now.Add(MaxFuture)) {
		return time.Time{}, fmt.Errorf("time %q (%s) is out of range: must be between %d-01-01 and a day from now",
			s, t.UTC().Format(time.RFC3339), MinYear)
	}
	return t, nil
}

func parseTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "":
		return time.Time{}, fmt.Errorf("empty time: %s", timeForms)
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "now+"), strings.HasPrefix(s, "now-"):
		return relative(s, s[3:], now)
	case s[0] == '-':
		return relative(s, s, now)
	case s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T"):
		return parseUnix(s)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("bad time %q: %s", s, timeForms)
}

// relative parses a signed duration (-1h, +5m) as an offset from now.
func relative(s, offset string, now time.Time) (time.Time, error) {
	d, err := ParseDuration(offset[1:])
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: %w", s, err)
	}
	if offset[0] == '-' {
		d = -d
	}
	return now.Add(d), nil
}

// parseUnix parses Unix seconds or milliseconds without going through a
// float, so that 1795168800.123 is exact.
func parseUnix(s string) (time.Time, error) {
	whole, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || strings.Trim(frac, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("bad time %q: %s", s, timeForms)
	}
	// frac as nanoseconds of one unit, truncated to 9 digits.
	frac = (frac + "000000000")[:9]
	nanos, _ := strconv.ParseInt(frac, 10, 64)
	if n >= unixMillisFrom {
		return time.UnixMilli(n).Add(time.Duration(nanos / 1e3)), nil
	}
	return time.Unix(n, nanos), nil
}

var durationPart = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)(ms|us|µs|ns|s|m|h|d|w)`)

// ParseDuration parses a duration like Go's time.ParseDuration, without a
// sign, and with d (24h) and w (7d) units as in Prometheus: 90s, 1h30m, 2d.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	for rest := s; rest != ""; {
		m := durationPart.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("bad duration %q: want e.g. 90s, 30m, 1h30m, 2d", s)
		}
		rest = rest[len(m[0]):]
		num, unit := m[1], m[2]
		if unit == "d" || unit == "w" {
			days, _ := strconv.ParseFloat(num, 64)
			if unit == "w" {
				days *= 7
			}
			num, unit = strconv.FormatFloat(days*24, 'f', -1, 64), "h"
		}
		d, err := time.ParseDuration(num + unit)
		if err != nil || total+d < total {
			return 0, fmt.Errorf("bad duration %q: out of range", s)
		}
		total += d
	}
	return total, nil
}
