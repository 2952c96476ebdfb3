// Package auth checks bearer tokens: tokens that may ingest, tokens that may
// read, loaded from a file; without a token file every request is allowed.
package auth

import (
	"bufio"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Scope is what a token allows.
type Scope string

// Scopes.
const (
	Ingest Scope = "ingest" // send profiles
	Read   Scope = "read"   // query, UI
	All    Scope = "all"    // both
)

// Tokens maps tokens to their scope. The zero value (nil) allows everything.
type Tokens struct {
	scopes map[string]Scope
}

// Load reads a token file: one "<scope> <token>" per line, scope being
// ingest, read or all; blank lines and lines starting with # are ignored.
func Load(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open token file: %w", err)
	}
	defer f.Close()
	t := &Tokens{scopes: map[string]Scope{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"<scope> <token>\"", path, n)
		}
		scope := Scope(fields[0])
		if scope != Ingest && scope != Read && scope != All {
			return nil, fmt.Errorf("%s:%d: unknown scope %q (want ingest, read or all)", path, n, fields[0])
		}
		if len(fields[1]) < 16 {
			return nil, fmt.Errorf("%s:%d: token is shorter than 16 characters", path, n)
		}
		t.scopes[fields[1]] = scope
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	if len(t.scopes) == 0 {
		return nil, fmt.Errorf("%s holds no tokens", path)
	}
	return t, nil
}

// Enabled reports whether tokens are checked at all.
func (t *Tokens) Enabled() bool { return t != nil }

// Errors of Allow.
var (
	ErrUnauthenticated = errors.New("missing or unknown token: send Authorization: Bearer <token>")
	ErrForbidden       = errors.New("token not allowed")
)

// Allow checks that tok may do scope: ErrUnauthenticated for no or an
// unknown token, an error wrapping ErrForbidden for the other scope.
func (t *Tokens) Allow(tok string, scope Scope) error {
	if t == nil {
		return nil
	}
	got, ok := t.lookup(tok)
	switch {
	case !ok:
		return ErrUnauthenticated
	case got != All && got != scope:
		return fmt.Errorf("%w: this token may %s, not %s", ErrForbidden, got, scope)
	}
	return nil
}

// Require wraps next so that it runs only for a token allowing scope:
// 401 without a known token, 403 with a token of the other scope.
func (t *Tokens) Require(scope Scope, next http.Handler) http.Handler {
	if t == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch err := t.Allow(Token(r.Header.Get("Authorization"), r), scope); {
		case err == nil:
			next.ServeHTTP(w, r)
		case errors.Is(err, ErrForbidden):
			writeError(w, http.StatusForbidden, err.Error())
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="flightrec"`)
			writeError(w, http.StatusUnauthorized, err.Error())
		}
	})
}

// lookup compares in constant time per candidate so response timing does
// not reveal how much of a token was right.
func (t *Tokens) lookup(tok string) (Scope, bool) {
	if tok == "" {
		return "", false
	}
	var found Scope
	for k, s := range t.scopes {
		if subtle.ConstantTimeCompare([]byte(k), []byte(tok)) == 1 {
			found = s
		}
	}
	return found, found != ""
}

// Token takes a bearer token from an Authorization value, or the password
// of basic auth from r (if r is not nil), which is how Pyroscope and OTLP
// clients that only know basic auth can send one.
func Token(authorization string, r *http.Request) string {
	if v, ok := strings.CutPrefix(authorization, "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	if r != nil {
		if _, pass, ok := r.BasicAuth(); ok {
			return pass
		}
	}
	return ""
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
