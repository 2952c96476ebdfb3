package trigger

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Selector matches process labels, e.g. {service="api",version=~"1\\..*"}.
// The agent parses it itself: Prometheus's parser would pull the server's
// dependencies into the node agent.
type Selector []matcher

type matcher struct {
	name  string
	op    string // =, !=, =~, !~
	value string
	re    *regexp.Regexp
}

// ParseSelector parses `{name op "value", ...}`; "" and "{}" match all.
func ParseSelector(s string) (Selector, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "{}" {
		return nil, nil
	}
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("selector %q: want {name=\"value\", ...}", s)
	}
	rest := strings.TrimSpace(s[1 : len(s)-1])
	var sel Selector
	for rest != "" {
		m, r, err := parseMatcher(rest)
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", s, err)
		}
		sel = append(sel, m)
		rest = strings.TrimSpace(r)
		if rest != "" {
			if rest[0] != ',' {
				return nil, fmt.Errorf("selector %q: expected , before %q", s, rest)
			}
			rest = strings.TrimSpace(rest[1:])
		}
	}
	return sel, nil
}

func parseMatcher(s string) (matcher, string, error) {
	i := 0
	for i < len(s) && (s[i] == '_' || ('a' <= s[i] && s[i] <= 'z') || ('A' <= s[i] && s[i] <= 'Z') || (i > 0 && '0' <= s[i] && s[i] <= '9')) {
		i++
	}
	m := matcher{name: s[:i]}
	if m.name == "" {
		return m, "", fmt.Errorf("expected a label name at %q", s)
	}
	s = strings.TrimSpace(s[i:])
	for _, op := range []string{"=~", "!~", "!=", "="} {
		if strings.HasPrefix(s, op) {
			m.op, s = op, strings.TrimSpace(s[len(op):])
			break
		}
	}
	if m.op == "" {
		return m, "", fmt.Errorf("expected =, !=, =~ or !~ after %s", m.name)
	}
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return m, "", fmt.Errorf("expected a quoted value for %s", m.name)
	}
	if m.value, err = strconv.Unquote(q); err != nil {
		return m, "", err
	}
	if m.op == "=~" || m.op == "!~" {
		if m.re, err = regexp.Compile("^(?:" + m.value + ")$"); err != nil {
			return m, "", fmt.Errorf("bad regexp for %s: %w", m.name, err)
		}
	}
	return m, s[len(q):], nil
}

// Matches reports whether labels satisfy every matcher; a missing label is "".
func (sel Selector) Matches(labels map[string]string) bool {
	for _, m := range sel {
		v := labels[m.name]
		var ok bool
		switch m.op {
		case "=":
			ok = v == m.value
		case "!=":
			ok = v != m.value
		case "=~":
			ok = m.re.MatchString(v)
		case "!~":
			ok = !m.re.MatchString(v)
		}
		if !ok {
			return false
		}
	}
	return true
}
