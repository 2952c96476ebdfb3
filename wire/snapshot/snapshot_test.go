package snapshot

import (
	"bytes"
	"compress/gzip"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sample() *Snapshot {
	three := 3
	return &Snapshot{
		Version: Version, ID: "n1-1795630000-ab12", Node: "n1",
		Trigger: Trigger{Kind: "alert", Reason: "APIErrorBudgetBurn", TimeNS: 2e9, Labels: map[string]string{"service": "api"}, Fingerprint: "f00"},
		StartNS: 1e9, EndNS: 3e9,
		Processes: []Process{{PID: 42, Labels: map[string]string{"service": "api"}}},
		Frames:    []Frame{{Function: "main.work", File: "main.go", Line: 3}, {Function: "main.main"}, {Mapping: "/lib/libc.so.6", BuildID: "ab", Address: 0x1234}},
		Stacks:    [][]int32{{0, 1}, {2, 1}},
		Samples:   Samples{PeriodNS: 10101010, TimeNS: []int64{1.5e9, 1.6e9}, PID: []uint32{42, 42}, TID: []uint32{42, 43}, CPU: []uint16{0, 1}, Stack: []int32{0, 1}},
		OffCPU:    OffCPU{StartNS: []int64{1.2e9}, DurationNS: []int64{5e7}, PID: []uint32{42}, TID: []uint32{43}, Stack: []int32{-1}, State: []string{"sleep"}},
		Events:    []Event{{TimeNS: 2e9, Kind: "exit", PID: 42, ExitCode: &three, Stack: -1}},
		Stats:     Stats{RingStartNS: 5e8},
	}
}

func TestRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := Encode(&b, sample()); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b.Bytes(), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sample()) {
		t.Errorf("round trip changed the snapshot:\n got %+v\nwant %+v", got, sample())
	}
}

func TestDecodeRejects(t *testing.T) {
	enc := func(mut func(*Snapshot)) []byte {
		s := sample()
		mut(s)
		var b bytes.Buffer
		Encode(&b, s)
		return b.Bytes()
	}
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(bytes.Repeat([]byte(" "), 2<<20))
	zw.Close()
	good := enc(func(*Snapshot) {})
	tests := []struct {
		name string
		body []byte
		want error
		says string
	}{
		{"not gzip json", []byte("{nope"), ErrMalformed, ""},
		{"truncated gzip", good[:len(good)/2], ErrMalformed, "gzip"},
		{"bomb", bomb.Bytes(), ErrTooLarge, "decompressed"},
		{"unknown field", []byte(`{"version":1,"id":"x","node":"n","colour":"red"}`), ErrMalformed, "colour"},
		{"wrong version", enc(func(s *Snapshot) { s.Version = 9 }), ErrMalformed, "version"},
		{"bad id", enc(func(s *Snapshot) { s.ID = "../../etc/passwd" }), ErrMalformed, "id"},
		{"empty window", enc(func(s *Snapshot) { s.EndNS = s.StartNS }), ErrMalformed, "window"},
		{"frame out of range", enc(func(s *Snapshot) { s.Stacks[0][0] = 9 }), ErrMalformed, "frame"},
		{"sample stack out of range", enc(func(s *Snapshot) { s.Samples.Stack[1] = 5 }), ErrMalformed, "stack"},
		{"ragged samples", enc(func(s *Snapshot) { s.Samples.PID = s.Samples.PID[:1] }), ErrMalformed, "length"},
		{"negative duration", enc(func(s *Snapshot) { s.OffCPU.DurationNS[0] = -1 }), ErrMalformed, "negative"},
		{"event stack out of range", enc(func(s *Snapshot) { s.Events[0].Stack = 7 }), ErrMalformed, "event"},
	}
	lim := Limits{MaxCompressed: 1 << 20, MaxDecompressed: 1 << 20}
	for _, tt := range tests {
		_, err := Decode(tt.body, lim)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: %v, want %v mentioning %q", tt.name, err, tt.want, tt.says)
		}
	}
	if _, err := Decode(make([]byte, 2<<20), lim); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized body: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	var b bytes.Buffer
	Encode(&b, sample())
	f.Add(b.Bytes())
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := Decode(body, Limits{MaxCompressed: 1 << 20, MaxDecompressed: 4 << 20})
		if err == nil && s.Validate() != nil {
			t.Fatal("Decode returned an invalid snapshot")
		}
	})
}
