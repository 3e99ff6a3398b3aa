package cloudstacksim

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCustomActionMessage(t *testing.T) {
	a := CustomAction{Name: "check", ExtensionName: "KubeVirt", ResourceName: "web-1",
		SuccessMessage: "{{actionName}} of {{resourceName}} with {{extensionName}} done", ErrorMessage: " "}
	assert.Equal(t, "check of web-1 with KubeVirt done", a.Message(true))
	assert.Equal(t, "Failed to complete check", a.Message(false), "a blank message falls back to the default")
	assert.Equal(t, "Successfully completed check", CustomAction{Name: "check"}.Message(true))
}

func TestCustomActionResult(t *testing.T) {
	a := CustomAction{ID: "a-1", Name: "check", SuccessMessage: "ran", ErrorMessage: "broke"}
	tests := []struct {
		name    string
		run     Result
		success bool
		message string
		details string
	}{
		{"exit 0", Result{Output: `{"a":1}`}, true, "ran", `{"a":1}`},
		{"exit 1", Result{ExitCode: 1, Output: `{"status":"error"}`}, false, "broke", `Exit code: 1, Output: {"status":"error"}`},
		{"killed at the timeout", Result{TimedOut: true, ExitCode: -1}, false, "broke", "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.Result(tt.run)
			assert.Equal(t, tt.success, r.Success)
			assert.Equal(t, tt.message, r.Result["message"])
			assert.Equal(t, tt.details, r.Result["details"])
		})
	}
}

func TestRender(t *testing.T) {
	table := `{"status":"success","printmessage":"true","message":[{"check":"details","result":"ok","detail":"x"},{"check":"kubeconfig","result":"FAIL","detail":"y"}]}`
	tests := []struct {
		name    string
		result  CustomActionResult
		kind    string
		message string
		headers []string
		rows    [][]string
	}{
		{"a table from a successful answer", ok("done", table), "success", "done",
			[]string{"check", "result", "detail"}, [][]string{{"details", "ok", "x"}, {"kubeconfig", "FAIL", "y"}}},
		{"the same table behind a failed exit: details do not parse", failed("broke", "Exit code: 1, Output: "+table), "error", "broke", nil, nil},
		{"printmessage false", ok("done", `{"printmessage":"false","message":[{"a":1}]}`), "success", "done", nil, nil},
		{"printmessage a boolean", ok("done", `{"printmessage":true,"message":[{"a":1}]}`), "success", "done", []string{"a"}, [][]string{{"1"}}},
		{"one object is one row", ok("done", `{"printmessage":"TRUE","message":{"b":"x","a":null}}`), "success", "done", []string{"b", "a"}, [][]string{{"x", "null"}}},
		{"a text message is never drawn", ok("done", `{"printmessage":"true","message":"hello"}`), "success", "done", nil, nil},
		{"an empty table is not drawn", ok("done", `{"printmessage":"true","message":[]}`), "success", "done", nil, nil},
		{"JavaScript's key order and String()", ok("done", `{"printmessage":"true","message":[{"z":1.50,"10":[1,"a"],"2":{"k":1},"ok":false,"big":1e21}]}`),
			"success", "done", []string{"2", "10", "z", "ok", "big"}, [][]string{{"[object Object]", "1,a", "1.5", "false", "1e+21"}}},
		{"no message at all", CustomActionResult{Success: true}, "success", "Success", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Render(tt.result)
			assert.Equal(t, tt.kind, d.Kind)
			assert.Equal(t, tt.message, d.Message)
			assert.Equal(t, tt.headers, d.Headers)
			assert.Equal(t, tt.rows, d.Rows)
			assert.Equal(t, tt.headers != nil, d.HasTable())
		})
	}
}

func ok(message, details string) CustomActionResult {
	return CustomActionResult{Success: true, Result: map[string]string{"message": message, "details": details}}
}

func failed(message, details string) CustomActionResult {
	return CustomActionResult{Result: map[string]string{"message": message, "details": details}}
}
