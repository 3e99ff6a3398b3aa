package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
)

// answerer writes the one JSON answer. The watchdog and the main path may race to answer; the first wins.
type answerer struct {
	mu      sync.Mutex
	out     *os.File
	written bool
}

func newAnswerer(out *os.File) *answerer { return &answerer{out: out} }

// success is the answer of the lifecycle actions, whose output CloudStack only shows.
type success struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

type failure struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// write encodes v as compact JSON with a trailing newline and writes it, making room for it in the pipe
// first: CloudStack reads the pipe only after the process exits.
func (a *answerer) write(v any) error {
	data, err := encode(v)
	if err != nil {
		return err
	}
	if err := fitPipe(a.out, len(data)); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.written {
		return errAnswered
	}
	a.written = true
	_, err = a.out.Write(data)
	return err
}

// encode is v as one line of JSON. It escapes no HTML: the answer is read by CloudStack and people, never
// embedded in a page, and "\u003c" for "<" only hides what a message says.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding the answer: %w", err)
	}
	return b.Bytes(), nil
}

// errAnswered: the process has already answered; a second answer would break CloudStack's parsing.
var errAnswered = errors.New("already answered")

// fail answers {"status":"error","message":...} and returns code.
func (a *answerer) fail(code int, err error) int {
	_ = a.write(failure{Status: "error", Message: err.Error()})
	return code
}
