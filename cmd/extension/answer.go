package main

import (
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

// write marshals v as compact JSON and writes it with a trailing newline, making room for it in the pipe
// first: CloudStack reads the pipe only after the process exits.
func (a *answerer) write(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the answer: %w", err)
	}
	data = append(data, '\n')
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

// errAnswered: the process has already answered; a second answer would break CloudStack's parsing.
var errAnswered = errors.New("already answered")

// fail answers {"status":"error","message":...} and returns code.
func (a *answerer) fail(code int, err error) int {
	_ = a.write(failure{Status: "error", Message: err.Error()})
	return code
}
